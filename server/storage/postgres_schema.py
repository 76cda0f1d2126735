"""The PostgreSQL schema: forward migrations under a one-row ``tandem_schema`` table. The model
is SQLite's (update log, snapshots, versions, tombstones), plus a sequence number per update:
each document's updates are numbered 1, 2, 3... in commit order (``documents.last_seq`` is the
last one given), so an instance can tell a gap from a duplicate."""

from __future__ import annotations

import logging

import asyncpg

from .base import StoreError

log = logging.getLogger("tandem.storage")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: everything SQLite reached at its schema 5.
    (
        """CREATE TABLE documents (
            name text PRIMARY KEY,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL,
            size_bytes bigint NOT NULL DEFAULT 0,
            tail_count bigint NOT NULL DEFAULT 0,
            tail_bytes bigint NOT NULL DEFAULT 0,
            snapshot_state bytea,
            last_seq bigint NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE updates (
            doc text NOT NULL,
            seq bigint NOT NULL,
            data bytea NOT NULL,
            created_at double precision NOT NULL,
            PRIMARY KEY (doc, seq)
        )""",
        """CREATE TABLE versions (
            id bigserial PRIMARY KEY,
            doc text NOT NULL,
            created_at double precision NOT NULL,
            label text,
            auto boolean NOT NULL DEFAULT false,
            data bytea NOT NULL,
            codec text NOT NULL,
            state_bytes bigint,
            state_digest bytea
        )""",
        "CREATE INDEX versions_doc ON versions (doc, created_at)",
        """CREATE TABLE tombstones (
            name text PRIMARY KEY,
            deleted_at double precision NOT NULL,
            state_vector bytea NOT NULL
        )""",
    ),
    # 2: the webhook outbox and the changes waiting for their quiet period (as SQLite's 6).
    (
        """CREATE TABLE webhook_outbox (
            id bigserial PRIMARY KEY,
            event_id text NOT NULL,
            target text NOT NULL,
            kind text NOT NULL,
            doc text NOT NULL,
            created_at double precision NOT NULL,
            state_vector bytea NOT NULL,
            text_length bigint,
            version_id bigint,
            attempts integer NOT NULL DEFAULT 0,
            next_at double precision NOT NULL,
            leased_until double precision NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX webhook_outbox_next ON webhook_outbox (next_at)",
        """CREATE TABLE webhook_pending (
            doc text PRIMARY KEY,
            first_at double precision NOT NULL,
            last_at double precision NOT NULL,
            gen bigint NOT NULL
        )""",
    ),
    # 3: version numbers per document (as SQLite's 7). The counter row is taken with an upsert,
    # which locks it: instances saving versions of one document at once queue there.
    (
        "ALTER TABLE versions ADD COLUMN number bigint NOT NULL DEFAULT 0",
        """UPDATE versions AS v SET number = ranked.n
           FROM (SELECT id, row_number() OVER (PARTITION BY doc ORDER BY created_at, id) AS n
                 FROM versions) AS ranked
           WHERE v.id = ranked.id""",
        """CREATE TABLE version_counters (
            doc text PRIMARY KEY,
            last_number bigint NOT NULL
        )""",
        """INSERT INTO version_counters (doc, last_number)
           SELECT doc, max(number) FROM versions GROUP BY doc""",
        # An instance still at schema 2 (a rolling upgrade) saves versions numbered 0.
        "CREATE UNIQUE INDEX versions_doc_number ON versions (doc, number) WHERE number > 0",
    ),
    # 4: files (images) beside their document (as SQLite's 8).
    (
        """CREATE TABLE files (
            id text PRIMARY KEY,
            doc text NOT NULL,
            content_type text NOT NULL,
            size bigint NOT NULL,
            sha256 text NOT NULL,
            created_at double precision NOT NULL,
            data bytea NOT NULL
        )""",
        "CREATE UNIQUE INDEX files_doc_sha256 ON files (doc, sha256)",
    ),
    # 5: the search index (as SQLite's 9), with PostgreSQL's full-text search: 'simple' (no
    # stemming, any language), over the words as the search cuts a query into them
    # (tandem_search_words: accents and the punctuation that joins paths, addresses and
    # identifiers into one token taken out, as SQLite's unicode61 does), the title weighted
    # above the text. A digest of what was indexed: the same text is not indexed again.
    (
        r"""CREATE FUNCTION tandem_search_words(value text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT translate(
                regexp_replace(normalize(value, NFKD), '[\u0300-\u036f]+', '', 'g'),
                './-@:_~+=&?#%<>\', '                ') $$""",
        """CREATE TABLE doc_search (
            doc text PRIMARY KEY,
            title text,
            body text NOT NULL,
            digest bytea NOT NULL,
            indexed_at double precision NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('simple', tandem_search_words(coalesce(title, ''))), 'A')
                || setweight(to_tsvector('simple', tandem_search_words(body)), 'B')
            ) STORED
        )""",
        "CREATE INDEX doc_search_tsv ON doc_search USING gin (tsv)",
    ),
    # 6: who wrote what (as SQLite's 10).
    (
        """CREATE TABLE authors (
            doc text NOT NULL,
            client_id bigint NOT NULL,
            author text NOT NULL,
            source text NOT NULL,
            first_at double precision NOT NULL,
            last_at double precision NOT NULL,
            PRIMARY KEY (doc, client_id)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Instances starting at once must not migrate twice: one lock for the whole migration.
_MIGRATION_LOCK = 7_316_001


async def migrate(conn: asyncpg.Connection, target: int = SCHEMA_VERSION) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS tandem_schema (version integer NOT NULL)")
        current = await conn.fetchval("SELECT version FROM tandem_schema")
        if current is None:
            await conn.execute("INSERT INTO tandem_schema (version) VALUES (0)")
            current = 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {current} is newer than this server's {SCHEMA_VERSION}"
            )
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("UPDATE tandem_schema SET version = $1", version)
            log.info("database migrated to schema version %d", version)
