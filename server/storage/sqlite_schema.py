"""The SQLite schema: forward migrations under ``PRAGMA user_version``, and the switch to
incremental auto-vacuum. Only the SQLite backend imports this."""

from __future__ import annotations

import logging
import sqlite3

import aiosqlite

from .base import StoreError

log = logging.getLogger("tandem.storage")

# Forward migrations; PRAGMA user_version holds how many have been applied.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the update log.
    (
        """CREATE TABLE updates (
            id INTEGER PRIMARY KEY,
            doc TEXT NOT NULL,
            data BLOB NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX updates_doc_id ON updates (doc, id)",
    ),
    # 2: one row per document with what listing and compaction need, backfilled from the log.
    (
        """CREATE TABLE documents (
            name TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            size_bytes INTEGER NOT NULL DEFAULT 0,
            tail_count INTEGER NOT NULL DEFAULT 0,
            tail_bytes INTEGER NOT NULL DEFAULT 0
        )""",
        """INSERT INTO documents (name, created_at, updated_at, size_bytes, tail_count, tail_bytes)
           SELECT doc, MIN(created_at), MAX(created_at), SUM(LENGTH(data)), COUNT(*),
                  SUM(LENGTH(data))
           FROM updates GROUP BY doc""",
    ),
    # 3: saved versions: full states, named (label) or automatic.
    (
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            doc TEXT NOT NULL,
            created_at REAL NOT NULL,
            label TEXT,
            auto INTEGER NOT NULL DEFAULT 0,
            data BLOB NOT NULL
        )""",
        "CREATE INDEX versions_doc ON versions (doc, created_at)",
    ),
    # 4: the state vector of the compacted snapshot, so a cold room need not decode it;
    # versions stored compressed (codec), with the size of the state they hold.
    (
        "ALTER TABLE documents ADD COLUMN snapshot_state BLOB",
        "ALTER TABLE versions ADD COLUMN codec TEXT NOT NULL DEFAULT 'none'",
        "ALTER TABLE versions ADD COLUMN state_bytes INTEGER",
    ),
    # 5: what was deleted under a name (its state vector), so an old copy never comes back;
    # a digest of each version's state, so an identical state is not saved twice.
    (
        """CREATE TABLE tombstones (
            name TEXT PRIMARY KEY,
            deleted_at REAL NOT NULL,
            state_vector BLOB NOT NULL
        )""",
        "ALTER TABLE versions ADD COLUMN state_digest BLOB",
    ),
    # 6: the webhook outbox (events written with the change they describe, one row per
    # target until delivered) and the changes waiting for their quiet period.
    (
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL,
            target TEXT NOT NULL,
            kind TEXT NOT NULL,
            doc TEXT NOT NULL,
            created_at REAL NOT NULL,
            state_vector BLOB NOT NULL,
            text_length INTEGER,
            version_id INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            leased_until REAL NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX webhook_outbox_next ON webhook_outbox (next_at)",
        """CREATE TABLE webhook_pending (
            doc TEXT PRIMARY KEY,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            gen INTEGER NOT NULL
        )""",
    ),
    # 7: each version's number within its document (1, 2, 3... as saved), backfilled in the
    # order they were saved; the counter row keeps the last one given, so a number is never
    # given twice even after the newest version is deleted.
    (
        "ALTER TABLE versions ADD COLUMN number INTEGER NOT NULL DEFAULT 0",
        """UPDATE versions SET number = (
             SELECT COUNT(*) FROM versions AS earlier
             WHERE earlier.doc = versions.doc
               AND (earlier.created_at < versions.created_at
                    OR (earlier.created_at = versions.created_at
                        AND earlier.id <= versions.id)))""",
        """CREATE TABLE version_counters (
            doc TEXT PRIMARY KEY,
            last_number INTEGER NOT NULL
        )""",
        """INSERT INTO version_counters (doc, last_number)
           SELECT doc, MAX(number) FROM versions GROUP BY doc""",
        "CREATE UNIQUE INDEX versions_doc_number ON versions (doc, number)",
    ),
    # 8: files (images) stored beside their document, each content once per document.
    (
        """CREATE TABLE files (
            id TEXT PRIMARY KEY,
            doc TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            created_at REAL NOT NULL,
            data BLOB NOT NULL
        )""",
        "CREATE UNIQUE INDEX files_doc_sha256 ON files (doc, sha256)",
    ),
    # 9: the search index: each document's title and text as of its last indexing (FTS5, its
    # rowid the state row's id: an FTS5 row is found fast only by rowid), and the state: the
    # title, a digest of what was indexed (the same text is not indexed again) and the
    # document's updated_at that text is as of, so only documents changed since are indexed
    # again.
    (
        """CREATE VIRTUAL TABLE doc_search USING fts5(
            title, body, tokenize = 'unicode61 remove_diacritics 2'
        )""",
        """CREATE TABLE doc_search_state (
            id INTEGER PRIMARY KEY,
            doc TEXT NOT NULL UNIQUE,
            title TEXT,
            digest BLOB NOT NULL,
            indexed_at REAL NOT NULL
        )""",
    ),
    # 10: who wrote what: for each Yjs client id seen in a document's updates, the author who
    # sent them (a token's subject, or in open mode the name the connection showed).
    (
        """CREATE TABLE authors (
            doc TEXT NOT NULL,
            client_id INTEGER NOT NULL,
            author TEXT NOT NULL,
            source TEXT NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            PRIMARY KEY (doc, client_id)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_AUTO_VACUUM_INCREMENTAL = 2


async def rollback(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except Exception as exc:  # the goal is only no open transaction
        log.debug("rollback after a failed transaction: %s", exc)


async def enable_incremental_vacuum(conn: aiosqlite.Connection) -> None:
    """Compaction frees most of a document's pages; incremental auto-vacuum lets the store
    return them to the file system. A new file takes the setting as it is; a file made
    before it needs one VACUUM (a rewrite of the whole file) to switch."""
    async with conn.execute("PRAGMA auto_vacuum") as cur:
        row = await cur.fetchone()
    if row is not None and int(row[0]) == _AUTO_VACUUM_INCREMENTAL:
        return
    await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    async with conn.execute("PRAGMA auto_vacuum") as cur:
        row = await cur.fetchone()
    if row is not None and int(row[0]) == _AUTO_VACUUM_INCREMENTAL:
        return  # a new file takes it as it is
    log.info("switching the database to incremental auto-vacuum (a one-off VACUUM)")
    try:
        await conn.execute("VACUUM")
    except sqlite3.Error as exc:  # e.g. no room for the copy VACUUM writes: run without it
        log.warning("VACUUM failed, free pages stay in the file: %s", exc)


async def migrate(conn: aiosqlite.Connection, target: int) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"database schema version {current} is newer than this server's {SCHEMA_VERSION}"
        )
    for version in range(current + 1, target + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version}")
            await conn.execute("COMMIT")
        except BaseException:
            await rollback(conn)
            raise
        log.info("database migrated to schema version %d", version)
