"""The PostgreSQL backend (asyncpg): the store several Tandem instances share.

The same model as SQLite, through the same group-commit writer; what differs is what several
writers need: each document's updates are numbered in commit order (the upsert of its
``documents`` row locks it, so commits of one document from different instances queue there and
the numbers stay contiguous), compaction runs once per document cluster-wide (an advisory lock,
and the document row locked while it rewrites the log), and so does an automatic version.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from pycrdt import get_state

from . import postgres_outbox as outbox
from . import postgres_search as search_index
from .base import (
    AckCallback,
    AuthorInfo,
    DocumentInfo,
    NewestVersion,
    SearchHit,
    Store,
    StoredDocument,
    StoredFile,
    StoreError,
    VersionInfo,
    new_file_id,
)
from .compaction import CompactionPolicy, Tail, compact_updates_with_state
from .events import (
    DELETED,
    EMPTY_STATE_VECTOR,
    VERSION_SAVED,
    NewEvent,
    OutboxEvent,
    PendingChange,
    state_vector_of,
)
from .fulltext import Entry
from .postgres_schema import SCHEMA_VERSION, migrate
from .versions_codec import pack, unpack
from .writer import Append, GroupCommitWriter, WriteOp, bound

log = logging.getLogger("tandem.storage")

# An automatic version is saved once per document cluster-wide: not again within this many
# seconds of the last one (every instance that holds the room tries).
AUTO_VERSION_GAP = 30.0
# How long one statement may take before the connection gives up on it.
COMMAND_TIMEOUT = 60.0
# What a lost or refused connection raises (TimeoutError is an OSError): the writer retries on
# any exception; these are the ones a read or a compaction reports instead of crashing on.
DB_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
# Advisory lock classes (the two-key form: apart from the migration's one-key lock and from each
# other, so a document's name never blocks another kind of lock).
_COMPACTION_LOCK = 1
_AUTO_VERSION_LOCK = 2

_UPSERT_DOCUMENTS = """
    INSERT INTO documents AS d
        (name, created_at, updated_at, size_bytes, tail_count, tail_bytes, last_seq)
    SELECT name, $2, $2, size, n, size, n
    FROM unnest($1::text[], $3::bigint[], $4::bigint[]) AS t(name, n, size)
    ON CONFLICT (name) DO UPDATE SET
        updated_at = excluded.updated_at,
        size_bytes = d.size_bytes + excluded.size_bytes,
        tail_count = d.tail_count + excluded.tail_count,
        tail_bytes = d.tail_bytes + excluded.tail_bytes,
        last_seq = d.last_seq + excluded.last_seq
    RETURNING name, last_seq, tail_count, tail_bytes, size_bytes, (xmax = 0) AS inserted
"""


_URL_PASSWORD = re.compile(r"^([^:/?#]+://[^:@/?#]*):[^@/]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL without its password (in the authority or as ``?password=``), for messages and
    logs. Text only, no parsing: a malformed URL is redacted as well as a valid one."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))


def backup_hint(url: str, dest: Path | str) -> str:
    """What to do instead of ``tandem backup`` on PostgreSQL."""
    return (
        "a PostgreSQL store is backed up with PostgreSQL's own tools: "
        f"pg_dump {redacted(url)} > {dest}"
    )


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """The store keeps no session state (no SET, no LISTEN; its advisory locks end with their
    transaction), so a connection back in the pool needs no RESET ALL: the default one is a
    round trip that every commit, and so every ack, waited for."""


class PostgresStore(Store):
    def __init__(
        self, pool: asyncpg.Pool, url: str, *, policy: CompactionPolicy, retry_delay: float
    ) -> None:
        self._pool = pool
        self.url = url
        self.policy = policy
        self._writer = GroupCommitWriter(
            self._commit, self._transact, self._after_commit, retry_delay=retry_delay
        )
        self.health = self._writer.health
        # The tails of the documents the last commit touched, as PostgreSQL returned them.
        self._tails: dict[str, Tail] = {}
        # Documents whose log could not be compacted, with the tail it had then: not tried
        # again until another tail's worth has come in.
        self._uncompactable: dict[str, int] = {}
        # Documents this store appended to since it opened (compacted at shutdown).
        self._written: set[str] = set()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        compact_updates: int = 500,
        compact_bytes: int = 1024 * 1024,
        retry_delay: float = 0.5,
        schema_version: int = SCHEMA_VERSION,
    ) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=4,
                command_timeout=COMMAND_TIMEOUT,
                reset=_nothing_to_reset,
            )
        except (*DB_ERRORS, ValueError) as exc:  # ValueError: a malformed URL
            raise StoreError(f"cannot connect to {redacted(url)}: {_reason(exc)}") from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn, schema_version)
        except (*DB_ERRORS, StoreError) as exc:
            await pool.close()
            raise StoreError(f"cannot prepare {redacted(url)}: {_reason(exc)}") from exc
        store = cls(
            pool,
            url,
            policy=CompactionPolicy(compact_updates, compact_bytes),
            retry_delay=retry_delay,
        )
        store._writer.start()
        return store

    async def close(self) -> None:
        await self._writer.close()
        await self._pool.close()

    @property
    def on_committed(self) -> Callable[[str, int, bytes], None] | None:
        return self._writer.on_committed

    @on_committed.setter
    def on_committed(self, hook: Callable[[str, int, bytes], None] | None) -> None:
        self._writer.on_committed = hook

    # --- writes --------------------------------------------------------------------------------

    def append(self, doc: str, data: bytes | None, on_commit: AckCallback | None = None) -> None:
        self._writer.append(doc, data, on_commit)

    def record_author(self, doc: str, client_id: int, author: str, source: str) -> None:
        self._writer.record_author(doc, (client_id, author, source))

    async def flush(self) -> None:
        await self._writer.flush()

    @property
    def pending(self) -> int:
        return self._writer.pending

    async def _commit(self, batch: list[Append]) -> list[str]:
        now = time.time()
        per_doc: dict[str, list[Append]] = {}
        for job in batch:
            if job.data is not None and job.doc is not None:
                per_doc.setdefault(job.doc, []).append(job)
        # Documents in one order in every commit, so two instances never lock them crosswise
        # (author rows too: sorted, and always after the documents rows, as a deletion takes
        # them; the sort is stable, so two rows of one client id keep their order).
        names = sorted(per_doc)
        authors = sorted(
            ((job.doc, *job.author, now, now) for job in batch if job.author is not None),
            key=lambda row: (row[0], row[1]),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if not names:
                if authors:
                    await conn.executemany(_UPSERT_AUTHOR, authors)
                else:  # an empty batch (a flush) proves the server is up
                    await conn.execute("SELECT 1")
                return []
            rows = await conn.fetch(
                _UPSERT_DOCUMENTS,
                names,
                now,
                [len(per_doc[n]) for n in names],
                [sum(len(job.data or b"") for job in per_doc[n]) for n in names],
            )
            records = []
            for row in rows:
                jobs = per_doc[row["name"]]
                first = int(row["last_seq"]) - len(jobs) + 1
                for offset, job in enumerate(jobs):
                    job.seq = first + offset
                    records.append((job.doc, job.seq, job.data, now))
                self._written.add(row["name"])
                self._tails[row["name"]] = Tail(
                    int(row["tail_count"]), int(row["tail_bytes"]), int(row["size_bytes"])
                )
            await conn.copy_records_to_table(
                "updates", records=records, columns=["doc", "seq", "data", "created_at"]
            )
            if authors:
                await conn.executemany(_UPSERT_AUTHOR, authors)
            if self.webhook_targets:
                created = {
                    row["name"]: state_vector_of(
                        [job.data for job in per_doc[row["name"]] if job.data is not None]
                    )
                    for row in rows
                    if row["inserted"]
                }
                await outbox.note_commit(conn, self.webhook_targets, created, names, now)
        return names

    @contextlib.asynccontextmanager
    async def _reading(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a read: a lost or refused server is a StoreError (the rooms, the
        cluster's catch-up and the CLI report it), never a raw driver exception."""
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise StoreError(f"cannot {what}: {_reason(exc)}") from exc

    async def _transact(self, op: WriteOp) -> Any:
        async with self._pool.acquire() as conn, conn.transaction():
            return await op(conn)

    # --- compaction ----------------------------------------------------------------------------

    async def _after_commit(self, touched: list[str]) -> None:
        for doc in touched:
            tail = self._tails.pop(doc, None)
            failed_at = self._uncompactable.get(doc)
            if tail is not None and failed_at is not None:
                if tail.count < failed_at + self.policy.max_updates:
                    continue
                del self._uncompactable[doc]
            if tail is not None and self.policy.due(tail):
                try:
                    if await self._transact(self._compact_op(doc, when_due=True)):
                        self.health.compactions += 1
                except DB_ERRORS as exc:  # in the writer's turn: report, never stop the writer
                    log.error("compaction of %r failed, log kept: %s", doc, exc)
        self._tails.clear()

    async def compact(self, doc: str) -> bool:
        done = bool(await self._writer.submit(self._compact_op(doc)))
        if done:  # counted once committed, not when the transaction merely got that far
            self.health.compactions += 1
        return done

    def _compact_op(self, doc: str, *, when_due: bool = False) -> WriteOp:
        """``when_due``: only if the tail, read under the lock, is still due — another
        instance may have compacted it since this one saw it pass the threshold."""

        async def op(conn: asyncpg.Connection) -> bool:
            # Once per document cluster-wide: whoever holds the lock compacts, the others skip.
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", _COMPACTION_LOCK, doc
            ):
                return False
            # The row lock holds every instance's appends to this document until the log is
            # rewritten: the tail counters stay exact and no row slips in between.
            meta = await conn.fetchrow(
                "SELECT tail_count, tail_bytes, size_bytes, snapshot_state FROM documents "
                "WHERE name = $1 FOR UPDATE",
                doc,
            )
            if meta is None:
                return False
            tail = Tail(int(meta["tail_count"]), int(meta["tail_bytes"]), int(meta["size_bytes"]))
            if when_due and not self.policy.due(tail):
                return False
            rows = await conn.fetch(
                "SELECT seq, data FROM updates WHERE doc = $1 ORDER BY seq", doc
            )
            if not rows or (
                len(rows) == 1 and meta["tail_count"] == 0 and meta["snapshot_state"] is not None
            ):
                return False
            try:
                parts, state = compact_updates_with_state([bytes(r["data"]) for r in rows])
            except Exception as exc:  # a row pycrdt cannot merge: keep the log as it is
                log.error("compaction of %r skipped, log kept as it is: %s", doc, exc)
                self._uncompactable[doc] = int(meta["tail_count"])
                return False
            snapshot, waiting = parts[0], set(parts[1:])
            # What still waits for its dependencies keeps its row; the snapshot takes the
            # number of the last row it replaces, so a reader asking for what came after an
            # older number gets it.
            kept = {r["seq"] for r in rows if bytes(r["data"]) in waiting}
            replaced = [r["seq"] for r in rows if r["seq"] not in kept]
            if not replaced:  # every row still waits for its dependencies: nothing to merge
                self._uncompactable[doc] = int(meta["tail_count"])
                return False
            await conn.execute(
                "DELETE FROM updates WHERE doc = $1 AND seq = ANY($2::bigint[])", doc, replaced
            )
            await conn.execute(
                "INSERT INTO updates (doc, seq, data, created_at) VALUES ($1, $2, $3, $4)",
                doc,
                max(replaced),
                snapshot,
                time.time(),
            )
            size = len(snapshot) + sum(len(p) for p in parts[1:])
            await conn.execute(
                "UPDATE documents SET size_bytes = $2, tail_count = 0, tail_bytes = 0, "
                "snapshot_state = $3 WHERE name = $1",
                doc,
                size,
                state if len(parts) == 1 else None,
            )
            if self.on_compacted is not None:
                self.on_compacted(doc)
            return True

        return op

    async def compact_all(self) -> int:
        try:
            async with self._reading("list the documents to compact") as conn:
                # Only what this instance wrote: the database is shared, and an instance that
                # stops must not compact every other instance's documents on its way out.
                names = [
                    r["name"]
                    for r in await conn.fetch(
                        "SELECT name FROM documents WHERE tail_count > 0 AND name = ANY($1::text[])"
                        " ORDER BY name",
                        sorted(self._written),
                    )
                ]
        except StoreError as exc:  # an optimisation: shutdown goes on to flush and close
            log.error("no compaction at shutdown: %s", exc)
            return 0
        done = 0
        for name in names:
            try:
                done += await self.compact(name)
            except DB_ERRORS as exc:
                log.error("compaction of %r failed: %s", name, exc)
        return done

    async def backup(self, dest: Path | str) -> None:
        raise StoreError(backup_hint(self.url, dest))

    # --- versions ------------------------------------------------------------------------------

    async def save_version(
        self,
        doc: str,
        state: bytes,
        label: str | None = None,
        auto: bool = False,
        digest: bytes | None = None,
    ) -> int:
        codec, packed = await pack(state)
        state_vector = get_state(state) if self.webhook_targets else b""

        async def op(conn: asyncpg.Connection) -> int:
            if auto:
                # Every instance holding the room saves automatic versions: once is enough.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))", _AUTO_VERSION_LOCK, doc
                )
                recent = await conn.fetchval(
                    "SELECT id FROM versions WHERE doc = $1 AND auto AND created_at > $2 "
                    "ORDER BY created_at DESC LIMIT 1",
                    doc,
                    time.time() - AUTO_VERSION_GAP,
                )
                if recent is not None:
                    return int(recent)
            # The upsert locks the document's counter row until this transaction ends: another
            # instance saving a version of it waits there and takes the next number.
            number = await conn.fetchval(
                "INSERT INTO version_counters AS c (doc, last_number) VALUES ($1, 1) "
                "ON CONFLICT (doc) DO UPDATE SET last_number = c.last_number + 1 "
                "RETURNING last_number",
                doc,
            )
            now = time.time()
            version_id = int(
                await conn.fetchval(
                    "INSERT INTO versions "
                    "(doc, created_at, label, auto, data, codec, state_bytes, state_digest, "
                    "number) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    doc,
                    now,
                    label,
                    auto,
                    packed,
                    codec,
                    len(state),
                    digest,
                    number,
                )
            )
            if self.webhook_targets:
                saved = NewEvent(VERSION_SAVED, doc, now, state_vector, version_id=version_id)
                await outbox.add(conn, self.webhook_targets, saved)
            return version_id

        return int(await self._writer.submit(op))

    async def name_version(self, doc: str, version_id: int, label: str | None) -> None:
        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE versions SET auto = false, label = COALESCE($3, label) "
                "WHERE doc = $1 AND id = $2",
                doc,
                version_id,
                label,
            )

        await self._writer.submit(op)

    async def delete_versions(self, doc: str, ids: Iterable[int]) -> int:
        wanted = list(ids)
        if not wanted:
            return 0

        async def op(conn: asyncpg.Connection) -> int:
            deleted = await conn.fetch(
                "DELETE FROM versions WHERE doc = $1 AND id = ANY($2::bigint[]) RETURNING id",
                doc,
                wanted,
            )
            return len(deleted)

        return int(await self._writer.submit(op))

    async def list_versions(self, doc: str) -> list[VersionInfo]:
        async with self._reading(f"list the versions of {doc!r}") as conn:
            rows = await conn.fetch(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE doc = $1 "
                "ORDER BY created_at DESC, id DESC",
                doc,
            )
        return [_version_info(r) for r in rows]

    async def version(self, doc: str, version_id: int) -> tuple[VersionInfo, bytes] | None:
        async with self._reading(f"read version {version_id} of {doc!r}") as conn:
            r = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS}, data, codec FROM versions WHERE doc = $1 AND id = $2",
                doc,
                version_id,
            )
        if r is None:
            return None
        data = await unpack(r["codec"], bytes(r["data"]), f"version {version_id} of {doc!r}")
        return _version_info(r), data

    async def version_info(self, doc: str, version_id: int) -> VersionInfo | None:
        async with self._reading(f"read version {version_id} of {doc!r}") as conn:
            r = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE doc = $1 AND id = $2",
                doc,
                version_id,
            )
        return None if r is None else _version_info(r)

    async def newest_version(self, doc: str) -> NewestVersion | None:
        async with self._reading(f"read the newest version of {doc!r}") as conn:
            r = await conn.fetchrow(
                "SELECT id, state_digest, auto FROM versions WHERE doc = $1 "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                doc,
            )
        if r is None:
            return None
        digest = None if r["state_digest"] is None else bytes(r["state_digest"])
        return NewestVersion(r["id"], digest, r["auto"])

    async def count_named_versions(self, doc: str) -> int:
        async with self._reading(f"count the versions of {doc!r}") as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM versions WHERE doc = $1 AND NOT auto", doc
            )
        return int(count)

    # --- documents -----------------------------------------------------------------------------

    async def delete_document(self, doc: str, tombstone: bytes | None = None) -> bool:
        async def op(conn: asyncpg.Connection) -> bool:
            deleted = await conn.fetchval(
                "DELETE FROM documents WHERE name = $1 RETURNING name", doc
            )
            await conn.execute("DELETE FROM updates WHERE doc = $1", doc)
            await conn.execute("DELETE FROM versions WHERE doc = $1", doc)
            await conn.execute("DELETE FROM version_counters WHERE doc = $1", doc)
            await conn.execute("DELETE FROM files WHERE doc = $1", doc)
            await search_index.forget(conn, doc)
            await conn.execute("DELETE FROM authors WHERE doc = $1", doc)
            if tombstone is not None:
                await conn.execute(
                    "INSERT INTO tombstones (name, deleted_at, state_vector) VALUES ($1, $2, $3) "
                    "ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at, "
                    "state_vector = excluded.state_vector",
                    doc,
                    time.time(),
                    tombstone,
                )
            if self.webhook_targets:
                await outbox.forget_changes(conn, doc)
                if deleted is not None:
                    gone = NewEvent(DELETED, doc, time.time(), tombstone or EMPTY_STATE_VECTOR)
                    await outbox.add(conn, self.webhook_targets, gone)
            return deleted is not None

        return bool(await self._writer.submit(op))

    # --- files -------------------------------------------------------------------------------

    async def save_file(self, doc: str, content_type: str, data: bytes) -> tuple[StoredFile, bool]:
        digest = hashlib.sha256(data).hexdigest()

        async def op(conn: asyncpg.Connection) -> tuple[StoredFile, bool]:
            stored = StoredFile(new_file_id(), doc, content_type, len(data), digest, time.time())
            # Two instances storing the same bytes at once: the unique index keeps one row.
            inserted = await conn.fetchval(
                "INSERT INTO files (id, doc, content_type, size, sha256, created_at, data) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (doc, sha256) DO NOTHING RETURNING id",
                stored.id,
                doc,
                content_type,
                stored.size,
                digest,
                stored.created_at,
                data,
            )
            if inserted is not None:
                return stored, True
            row = await conn.fetchrow(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE doc = $1 AND sha256 = $2", doc, digest
            )
            return _stored_file(row), False

        found, new = await self._writer.submit(op)
        return found, new

    async def file(self, doc: str, file_id: str, *, data: bool = True) -> StoredFile | None:
        columns = f"{_FILE_COLUMNS}, data" if data else _FILE_COLUMNS
        async with self._reading(f"read a file of {doc!r}") as conn:
            row = await conn.fetchrow(
                f"SELECT {columns} FROM files WHERE doc = $1 AND id = $2", doc, file_id
            )
        return None if row is None else _stored_file(row)

    # --- the authors map -----------------------------------------------------------------------

    async def authors(self, doc: str) -> list[AuthorInfo]:
        async with self._reading(f"read the authors of {doc!r}") as conn:
            rows = await conn.fetch(
                "SELECT client_id, author, source, first_at, last_at FROM authors "
                "WHERE doc = $1 ORDER BY first_at, client_id",
                doc,
            )
        return [
            AuthorInfo(r["client_id"], r["author"], r["source"], r["first_at"], r["last_at"])
            for r in rows
        ]

    async def copy_authors(
        self, src: str, dst: str, clients: Mapping[int, int] | None = None
    ) -> int:
        async def op(conn: asyncpg.Connection) -> int:
            if clients is not None:
                renamed = await conn.fetch(
                    "INSERT INTO authors (doc, client_id, author, source, first_at, last_at) "
                    "SELECT $1, m.new, a.author, a.source, a.first_at, a.last_at FROM authors a "
                    "JOIN unnest($3::bigint[], $4::bigint[]) AS m(old, new) "
                    "ON a.client_id = m.old WHERE a.doc = $2 "
                    "ON CONFLICT (doc, client_id) DO NOTHING RETURNING client_id",
                    dst,
                    src,
                    list(clients),
                    list(clients.values()),
                )
                return len(renamed)
            copied = await conn.fetch(
                "INSERT INTO authors (doc, client_id, author, source, first_at, last_at) "
                "SELECT $1, client_id, author, source, first_at, last_at FROM authors "
                "WHERE doc = $2 ON CONFLICT (doc, client_id) DO NOTHING RETURNING client_id",
                dst,
                src,
            )
            return len(copied)

        return int(await self._writer.submit(op))

    async def load_document(self, doc: str) -> StoredDocument:
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                meta = await conn.fetchrow(
                    "SELECT last_seq, tail_count, snapshot_state FROM documents WHERE name = $1",
                    doc,
                )
                rows = await conn.fetch("SELECT data FROM updates WHERE doc = $1 ORDER BY seq", doc)
                tombstone = await conn.fetchval(
                    "SELECT state_vector FROM tombstones WHERE name = $1", doc
                )
        except DB_ERRORS as exc:
            raise StoreError(f"cannot load {doc!r}: {_reason(exc)}") from exc
        updates = [bytes(r["data"]) for r in rows]
        state = None
        if meta is not None and len(updates) == 1 and meta["tail_count"] == 0:
            state = meta["snapshot_state"]
        return StoredDocument(
            updates,
            None if state is None else bytes(state),
            None if tombstone is None else bytes(tombstone),
            int(meta["last_seq"]) if meta is not None else 0,
        )

    async def load_after(self, doc: str, seq: int) -> list[tuple[int, bytes]]:
        """The updates of ``doc`` numbered after ``seq`` (a snapshot stands for those it
        replaced), in order: what an instance that missed them reads back."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT seq, data FROM updates WHERE doc = $1 AND seq > $2 ORDER BY seq",
                    doc,
                    seq,
                )
        except DB_ERRORS as exc:
            raise StoreError(f"cannot read {doc!r} after {seq}: {_reason(exc)}") from exc
        return [(int(r["seq"]), bytes(r["data"])) for r in rows]

    async def last_seqs(self, docs: list[str]) -> dict[str, int]:
        """The last number each of ``docs`` has given (documents not stored are left out)."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT name, last_seq FROM documents WHERE name = ANY($1::text[])", docs
                )
        except DB_ERRORS as exc:
            raise StoreError(f"cannot read the documents' last numbers: {_reason(exc)}") from exc
        return {r["name"]: int(r["last_seq"]) for r in rows}

    async def tombstone(self, doc: str) -> bytes | None:
        async with self._reading(f"read the tombstone of {doc!r}") as conn:
            value = await conn.fetchval("SELECT state_vector FROM tombstones WHERE name = $1", doc)
        return None if value is None else bytes(value)

    async def list_documents(self) -> list[DocumentInfo]:
        async with self._reading("list the documents") as conn:
            rows = await conn.fetch(
                "SELECT name, size_bytes, created_at, updated_at FROM documents ORDER BY name"
            )
        return [
            DocumentInfo(r["name"], r["size_bytes"], r["created_at"], r["updated_at"]) for r in rows
        ]

    async def document(self, name: str) -> DocumentInfo | None:
        async with self._reading(f"read {name!r}") as conn:
            r = await conn.fetchrow(
                "SELECT name, size_bytes, created_at, updated_at FROM documents WHERE name = $1",
                name,
            )
        return (
            None
            if r is None
            else DocumentInfo(r["name"], r["size_bytes"], r["created_at"], r["updated_at"])
        )

    async def log_length(self, doc: str) -> int:
        async with self._reading(f"read the log of {doc!r}") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM updates WHERE doc = $1", doc))

    # --- the search index (see .postgres_search) ----------------------------------------------

    async def index_document(
        self, doc: str, title: str | None, body: str, *, source_at: float | None = None
    ) -> bool:
        op = bound(search_index.index, doc, Entry.of(title, body), source_at)
        return bool(await self._writer.submit(op))

    async def search(self, query: str, scopes: Iterable[str], limit: int) -> list[SearchHit]:
        async with self._reading("search") as conn:
            return await search_index.search(conn, query, scopes, limit)

    async def titles(self, names: Iterable[str] | None = None) -> dict[str, str]:
        async with self._reading("read the titles") as conn:
            return await search_index.titles(conn, names)

    async def stale_documents(self, after: str, before: float, limit: int) -> list[DocumentInfo]:
        async with self._reading("list the documents to index") as conn:
            return await search_index.stale(conn, after, before, limit)

    async def indexed_through(self, scopes: Iterable[str]) -> float | None:
        async with self._reading("read how far the index is") as conn:
            return await search_index.indexed_through(conn, scopes)

    # --- the webhook outbox --------------------------------------------------------------------

    async def quiet_changes(self, now: float, quiet: float, max_wait: float) -> list[PendingChange]:
        async with self._reading("read the changes to report") as conn:
            return await outbox.quiet_changes(conn, now, quiet, max_wait)

    async def consume_change(self, change: PendingChange, event: NewEvent) -> bool:
        op = bound(outbox.consume_change, self.webhook_targets, change, event, time.time())
        return bool(await self._writer.submit(op))

    async def events_due(self, now: float) -> bool:
        async with self._reading("read the webhook outbox") as conn:
            return await outbox.due(conn, now)

    async def claim_events(self, now: float, lease: float, limit: int) -> list[OutboxEvent]:
        return list(await self._writer.submit(bound(outbox.claim, now, lease, limit)))

    async def event_delivered(self, row: int) -> None:
        await self._writer.submit(bound(outbox.delivered, row))

    async def retry_event(self, row: int, at: float) -> None:
        await self._writer.submit(bound(outbox.retry, row, at))

    async def schema_version(self) -> int:
        async with self._reading("read the schema version") as conn:
            return int(await conn.fetchval("SELECT version FROM tandem_schema"))


_VERSION_COLUMNS = (
    "id, created_at, label, COALESCE(state_bytes, length(data)) AS size, auto, number"
)
_FILE_COLUMNS = "id, doc, content_type, size, sha256, created_at"
# As SQLite's: a new row, or a name-sourced one renamed by a name; last_at moves on either way.
_UPSERT_AUTHOR = """
    INSERT INTO authors AS a (doc, client_id, author, source, first_at, last_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (doc, client_id) DO UPDATE SET
        author = CASE WHEN a.source = 'name' AND excluded.source = 'name'
                      THEN excluded.author ELSE a.author END,
        last_at = GREATEST(a.last_at, excluded.last_at)
"""


def _version_info(r: asyncpg.Record) -> VersionInfo:
    return VersionInfo(r["id"], r["created_at"], r["label"], r["size"], r["auto"], r["number"])


def _stored_file(r: asyncpg.Record) -> StoredFile:
    data = r.get("data")
    return StoredFile(
        r["id"],
        r["doc"],
        r["content_type"],
        r["size"],
        r["sha256"],
        r["created_at"],
        None if data is None else bytes(data),
    )


def _reason(exc: BaseException) -> str:
    """One line for a message: asyncpg's own, or the exception's kind when it has none."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
