"""The SQLite backend: one file in WAL mode, one writer connection driven by the group-commit
writer, one reader connection (under WAL it sees only committed transactions, never the writer's
half-done one)."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from pycrdt import get_state

from ..config import Synchronous
from . import sqlite_outbox as outbox
from . import sqlite_search as search_index
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
)
from .fulltext import Entry
from .sqlite_schema import SCHEMA_VERSION, enable_incremental_vacuum, migrate, rollback
from .versions_codec import pack, unpack
from .writer import Append, GroupCommitWriter, WriteOp, bound

log = logging.getLogger("tandem.storage")

T = TypeVar("T")

# Reads map the file instead of a read() per page: a cold load of a large snapshot reads
# hundreds of overflow pages.
READ_MMAP_BYTES = 256 * 1024 * 1024
# Documents whose tail counters are kept in memory (cleared and read again beyond that).
_TAILS_CACHED = 10_000
# The WAL file is cut back to this after a checkpoint (SQLite otherwise keeps its peak size).
WAL_SIZE_LIMIT = 16 * 1024 * 1024
# Fault injection for the tests, on every machine (a full disk needs root to mount a small
# tmpfs): while the file this variable names exists, every write fails as a full disk would.
FAULT_FILE_VARIABLE = "TANDEM_TEST_WRITE_FAULT_FILE"


class SQLiteStore(Store):
    """The document store over one SQLite file."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        path: Path,
        *,
        policy: CompactionPolicy,
        retry_delay: float = 0.5,
    ) -> None:
        self._conn = conn
        self._reader = reader
        self.path = path
        self.policy = policy
        self._writer = GroupCommitWriter(
            self._commit, self._transact, self._after_commit, retry_delay=retry_delay
        )
        self.health = self._writer.health
        # Per document as committed (read once, then kept up to date by each commit: a SELECT
        # per touched document per commit was most of the writer's CPU with many rooms).
        self._tails: dict[str, Tail] = {}
        # Set by a compaction: see whether the pages it freed are worth giving back.
        self._vacuum_due = False
        fault_file = os.environ.get(FAULT_FILE_VARIABLE)
        self._fault_file = Path(fault_file) if fault_file else None

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        synchronous: Synchronous = "FULL",
        compact_updates: int = 500,
        compact_bytes: int = 1024 * 1024,
        schema_version: int = SCHEMA_VERSION,
        retry_delay: float = 0.5,
    ) -> SQLiteStore:
        """Open (creating if needed) and migrate the database, and start the writer.

        ``schema_version`` below the current one exists for migration tests.
        """
        path = Path(path)
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")
            await enable_incremental_vacuum(conn)  # before WAL mode writes the file's header
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
            await migrate(conn, schema_version)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout = 5000")
            await reader.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
        except Exception as exc:
            await conn.close()
            raise StoreError(f"cannot prepare database {path}: {exc}") from exc
        store = cls(
            conn,
            reader,
            path,
            policy=CompactionPolicy(compact_updates, compact_bytes),
            retry_delay=retry_delay,
        )
        await _no_wakeup_preemption(conn)
        store._writer.start()
        return store

    async def close(self) -> None:
        await self._writer.close()
        await self._conn.close()
        await self._reader.close()

    # --- writes ------------------------------------------------------------------------------

    def append(self, doc: str, data: bytes | None, on_commit: AckCallback | None = None) -> None:
        self._writer.append(doc, data, on_commit)

    def record_author(self, doc: str, client_id: int, author: str, source: str) -> None:
        self._writer.record_author(doc, (client_id, author, source))

    async def flush(self) -> None:
        await self._writer.flush()

    @property
    def pending(self) -> int:
        return self._writer.pending

    def _check_fault(self) -> None:
        if self._fault_file is not None and self._fault_file.exists():
            raise sqlite3.OperationalError("database or disk is full (injected by the tests)")

    async def _commit(self, batch: list[Append]) -> list[str]:
        self._check_fault()
        now = time.time()
        rows = [(job.doc, job.data, now) for job in batch if job.data is not None]
        authors = [(job.doc, *job.author, now, now) for job in batch if job.author is not None]
        per_doc: dict[str, list[int]] = {}
        for job in batch:
            if job.data is not None and job.doc is not None:
                totals = per_doc.setdefault(job.doc, [0, 0])
                totals[0] += 1
                totals[1] += len(job.data)
        conn = self._conn
        docs = [(doc, now, now, b, n, b) for doc, (n, b) in per_doc.items()]
        begun = False
        if rows and self.webhook_targets:
            await conn.execute("BEGIN IMMEDIATE")
            begun = True
            try:
                updates: dict[str, list[bytes]] = {}
                for job in batch:
                    if job.data is not None and job.doc is not None:
                        updates.setdefault(job.doc, []).append(job.data)
                await outbox.note_commit(conn, self.webhook_targets, updates, now)
            except BaseException:
                await rollback(conn)
                raise
        await in_thread(conn, lambda db: _write_batch(db, rows, docs, authors, begun=begun))
        for doc, (count, size) in per_doc.items():
            tail = self._tails.get(doc)
            if tail is not None:
                tail.grow(count, size)
        return list(per_doc)

    async def _transact(self, op: WriteOp) -> Any:
        self._check_fault()
        conn = self._conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            result = await op(conn)
            await conn.execute("COMMIT")
        except BaseException:
            await rollback(conn)
            raise
        if self._vacuum_due:
            self._vacuum_due = False
            await self._vacuum()
        return result

    async def _vacuum(self) -> None:
        """Give pages freed by compactions back to the file system once they are a quarter
        of the file (below that, new appends reuse them)."""
        conn = self._conn
        try:
            async with conn.execute("PRAGMA freelist_count") as cur:
                free = int((await cur.fetchone() or (0,))[0])
            async with conn.execute("PRAGMA page_count") as cur:
                pages = int((await cur.fetchone() or (0,))[0])
            if free and free * 4 >= pages:
                # executescript steps the pragma to the end; execute() would free one page.
                await conn.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as exc:  # only space is at stake, never data
            log.warning("could not give free pages back to the file system: %s", exc)

    # --- compaction ----------------------------------------------------------------------------

    async def _after_commit(self, touched: list[str]) -> None:
        for doc in touched:
            await self._maybe_compact(doc)

    async def _maybe_compact(self, doc: str) -> None:
        tail = self._tails.get(doc)
        if tail is None:
            if len(self._tails) >= _TAILS_CACHED:
                self._tails.clear()
            async with self._conn.execute(
                "SELECT tail_count, tail_bytes, size_bytes FROM documents WHERE name = ?", (doc,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return
            tail = self._tails[doc] = Tail(int(row[0]), int(row[1]), int(row[2]))
        if self.policy.due(tail):
            try:  # in the writer's turn: no append of this document can slip in meanwhile
                await self._transact(self._compact_op(doc))
            except Exception as exc:
                log.error("compaction of %r failed, log kept: %s", doc, exc)

    async def compact(self, doc: str) -> bool:
        return bool(await self._writer.submit(self._compact_op(doc)))

    def _compact_op(self, doc: str) -> WriteOp:
        async def op(conn: aiosqlite.Connection) -> bool:
            # Read again from the table after this transaction, whatever its outcome.
            size = self._tails.pop(doc, Tail()).size
            async with conn.execute(
                "SELECT id, data FROM updates WHERE doc = ? ORDER BY id", (doc,)
            ) as cur:
                rows = list(await cur.fetchall())
            if len(rows) == 1:
                # One row is compacted only to record its state vector (for cold joins).
                async with conn.execute(
                    "SELECT tail_count = 0 AND snapshot_state IS NOT NULL FROM documents "
                    "WHERE name = ?",
                    (doc,),
                ) as cur:
                    done = await cur.fetchone()
                if done is None or done[0]:
                    return False
            elif not rows:
                return False
            try:
                snapshot, state = compact_updates_with_state([data for _, data in rows])
            except Exception as exc:  # a row pycrdt cannot merge: keep the log as it is
                log.error("compaction of %r skipped, log kept as it is: %s", doc, exc)
                # Not again after every commit: only once another tail's worth has come in.
                self._tails[doc] = Tail(0, 0, size)
                return False
            # Insert first, then delete: a reader never sees the document without its rows.
            now = time.time()
            await conn.executemany(
                "INSERT INTO updates (doc, data, created_at) VALUES (?, ?, ?)",
                [(doc, part, now) for part in snapshot],
            )
            await conn.execute("DELETE FROM updates WHERE doc = ? AND id <= ?", (doc, rows[-1][0]))
            await conn.execute(
                "UPDATE documents SET size_bytes = ?, tail_count = 0, tail_bytes = 0, "
                "snapshot_state = ? WHERE name = ?",
                (sum(len(part) for part in snapshot), state if len(snapshot) == 1 else None, doc),
            )
            self.health.compactions += 1
            self._vacuum_due = True
            if self.on_compacted is not None:
                self.on_compacted(doc)
            return True

        return op

    async def compact_all(self) -> int:
        async with self._reader.execute(
            "SELECT name FROM documents WHERE tail_count > 0 ORDER BY name"
        ) as cur:
            names = [row[0] for row in await cur.fetchall()]
        done = 0
        for name in names:
            try:
                done += await self.compact(name)
            except Exception as exc:  # compaction is an optimisation: log and go on
                log.error("compaction of %r failed: %s", name, exc)
        return done

    async def backup(self, dest: Path | str) -> None:
        await self.flush()
        target = await aiosqlite.connect(dest)
        try:
            await self._reader.backup(target)
        finally:
            await target.close()

    # --- versions ------------------------------------------------------------------------------

    async def save_version(
        self,
        doc: str,
        state: bytes,
        label: str | None = None,
        auto: bool = False,
        digest: bytes | None = None,
    ) -> int:
        """``digest``: what identifies the state (see :func:`server.jobs.state_digest`)."""
        codec, packed = await pack(state)
        state_vector = get_state(state) if self.webhook_targets else b""

        async def op(conn: aiosqlite.Connection) -> int:
            now = time.time()
            number = await _next_version_number(conn, doc)
            cur = await conn.execute(
                "INSERT INTO versions "
                "(doc, created_at, label, auto, data, codec, state_bytes, state_digest, number) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc, now, label, int(auto), packed, codec, len(state), digest, number),
            )
            assert cur.lastrowid is not None
            if self.webhook_targets:
                saved = NewEvent(VERSION_SAVED, doc, now, state_vector, version_id=cur.lastrowid)
                await outbox.add(conn, self.webhook_targets, saved)
            return cur.lastrowid

        return int(await self._writer.submit(op))

    async def name_version(self, doc: str, version_id: int, label: str | None) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE versions SET auto = 0, label = COALESCE(?, label) WHERE doc = ? AND id = ?",
                (label, doc, version_id),
            )

        await self._writer.submit(op)

    async def delete_versions(self, doc: str, ids: Iterable[int]) -> int:
        wanted = list(ids)
        if not wanted:
            return 0

        async def op(conn: aiosqlite.Connection) -> int:
            deleted = 0
            for version_id in wanted:
                cur = await conn.execute(
                    "DELETE FROM versions WHERE doc = ? AND id = ?", (doc, version_id)
                )
                deleted += max(cur.rowcount, 0)
            return deleted

        return int(await self._writer.submit(op))

    async def list_versions(self, doc: str) -> list[VersionInfo]:
        async with self._reader.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE doc = ? "
            "ORDER BY created_at DESC, id DESC",
            (doc,),
        ) as cur:
            return [_version_info(r) for r in await cur.fetchall()]

    async def version(self, doc: str, version_id: int) -> tuple[VersionInfo, bytes] | None:
        async with self._reader.execute(
            f"SELECT {_VERSION_COLUMNS}, data, codec FROM versions WHERE doc = ? AND id = ?",
            (doc, version_id),
        ) as cur:
            r = await cur.fetchone()
        if r is None:
            return None
        data = await unpack(r[7], bytes(r[6]), f"version {version_id} of {doc!r}")
        return _version_info(r), data

    async def version_info(self, doc: str, version_id: int) -> VersionInfo | None:
        async with self._reader.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE doc = ? AND id = ?",
            (doc, version_id),
        ) as cur:
            r = await cur.fetchone()
        return None if r is None else _version_info(r)

    async def newest_version(self, doc: str) -> NewestVersion | None:
        async with self._reader.execute(
            "SELECT id, state_digest, auto FROM versions WHERE doc = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            (doc,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return NewestVersion(row[0], None if row[1] is None else bytes(row[1]), bool(row[2]))

    async def count_named_versions(self, doc: str) -> int:
        async with self._reader.execute(
            "SELECT COUNT(*) FROM versions WHERE doc = ? AND auto = 0", (doc,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- documents -----------------------------------------------------------------------------

    async def delete_document(self, doc: str, tombstone: bytes | None = None) -> bool:
        async def op(conn: aiosqlite.Connection) -> bool:
            self._tails.pop(doc, None)
            cur = await conn.execute("DELETE FROM documents WHERE name = ?", (doc,))
            existed = cur.rowcount > 0
            await conn.execute("DELETE FROM updates WHERE doc = ?", (doc,))
            await conn.execute("DELETE FROM versions WHERE doc = ?", (doc,))
            await conn.execute("DELETE FROM version_counters WHERE doc = ?", (doc,))
            await conn.execute("DELETE FROM files WHERE doc = ?", (doc,))
            await search_index.forget(conn, doc)
            await conn.execute("DELETE FROM authors WHERE doc = ?", (doc,))
            if tombstone is not None:
                await conn.execute(
                    "INSERT INTO tombstones (name, deleted_at, state_vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at, "
                    "state_vector = excluded.state_vector",
                    (doc, time.time(), tombstone),
                )
            if self.webhook_targets:
                await outbox.forget_changes(conn, doc)
                if existed:
                    gone = NewEvent(DELETED, doc, time.time(), tombstone or EMPTY_STATE_VECTOR)
                    await outbox.add(conn, self.webhook_targets, gone)
            return existed

        return bool(await self._writer.submit(op))

    # --- files -------------------------------------------------------------------------------

    async def save_file(self, doc: str, content_type: str, data: bytes) -> tuple[StoredFile, bool]:
        digest = hashlib.sha256(data).hexdigest()

        async def op(conn: aiosqlite.Connection) -> tuple[StoredFile, bool]:
            async with conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE doc = ? AND sha256 = ?", (doc, digest)
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                return _stored_file(row), False
            stored = StoredFile(new_file_id(), doc, content_type, len(data), digest, time.time())
            await conn.execute(
                "INSERT INTO files (id, doc, content_type, size, sha256, created_at, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stored.id, doc, content_type, stored.size, digest, stored.created_at, data),
            )
            return stored, True

        found, new = await self._writer.submit(op)
        return found, new

    async def file(self, doc: str, file_id: str, *, data: bool = True) -> StoredFile | None:
        columns = f"{_FILE_COLUMNS}, data" if data else _FILE_COLUMNS
        async with self._reader.execute(
            f"SELECT {columns} FROM files WHERE doc = ? AND id = ?", (doc, file_id)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else _stored_file(row)

    # --- the authors map -----------------------------------------------------------------------

    async def authors(self, doc: str) -> list[AuthorInfo]:
        async with self._reader.execute(
            "SELECT client_id, author, source, first_at, last_at FROM authors WHERE doc = ? "
            "ORDER BY first_at, client_id",
            (doc,),
        ) as cur:
            return [AuthorInfo(*row) for row in await cur.fetchall()]

    async def copy_authors(
        self, src: str, dst: str, clients: Mapping[int, int] | None = None
    ) -> int:
        async def op(conn: aiosqlite.Connection) -> int:
            if clients is not None:
                copied = 0
                for old, new in clients.items():
                    cur = await conn.execute(
                        "INSERT INTO authors (doc, client_id, author, source, first_at, "
                        "last_at) SELECT ?, ?, author, source, first_at, last_at FROM authors "
                        "WHERE doc = ? AND client_id = ? ON CONFLICT (doc, client_id) DO NOTHING",
                        (dst, new, src, old),
                    )
                    copied += max(cur.rowcount, 0)
                return copied
            cur = await conn.execute(
                "INSERT INTO authors (doc, client_id, author, source, first_at, last_at) "
                "SELECT ?, client_id, author, source, first_at, last_at FROM authors "
                "WHERE doc = ? ON CONFLICT (doc, client_id) DO NOTHING",
                (dst, src),
            )
            return max(cur.rowcount, 0)

        return int(await self._writer.submit(op))

    async def load_document(self, doc: str) -> StoredDocument:
        try:
            async with self._reader.execute(
                """SELECT u.data, CASE WHEN d.tail_count = 0 THEN d.snapshot_state END
                   FROM updates u LEFT JOIN documents d ON d.name = u.doc
                   WHERE u.doc = ? ORDER BY u.id""",
                (doc,),
            ) as cur:
                rows = await cur.fetchall()
            tombstone = await self.tombstone(doc)
        except Exception as exc:
            raise StoreError(f"cannot load {doc!r}: {exc}") from exc
        updates = [bytes(row[0]) for row in rows]
        state = rows[0][1] if len(rows) == 1 else None
        return StoredDocument(updates, None if state is None else bytes(state), tombstone)

    async def tombstone(self, doc: str) -> bytes | None:
        async with self._reader.execute(
            "SELECT state_vector FROM tombstones WHERE name = ?", (doc,)
        ) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def list_documents(self) -> list[DocumentInfo]:
        async with self._reader.execute(
            "SELECT name, size_bytes, created_at, updated_at FROM documents ORDER BY name"
        ) as cur:
            return [DocumentInfo(*row) for row in await cur.fetchall()]

    async def document(self, name: str) -> DocumentInfo | None:
        async with self._reader.execute(
            "SELECT name, size_bytes, created_at, updated_at FROM documents WHERE name = ?",
            (name,),
        ) as cur:
            row = await cur.fetchone()
        return DocumentInfo(*row) if row else None

    async def log_length(self, doc: str) -> int:
        async with self._reader.execute(
            "SELECT COUNT(*) FROM updates WHERE doc = ?", (doc,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- the search index (see .sqlite_search) ------------------------------------------------

    async def index_document(
        self, doc: str, title: str | None, body: str, *, source_at: float | None = None
    ) -> bool:
        op = bound(search_index.index, doc, Entry.of(title, body), source_at)
        return bool(await self._writer.submit(op))

    async def search(self, query: str, scopes: Iterable[str], limit: int) -> list[SearchHit]:
        try:
            return await search_index.search(self._reader, query, scopes, limit)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot search: {exc}") from exc

    async def titles(self, names: Iterable[str] | None = None) -> dict[str, str]:
        return await search_index.titles(self._reader, names)

    async def stale_documents(self, after: str, before: float, limit: int) -> list[DocumentInfo]:
        return await search_index.stale(self._reader, after, before, limit)

    async def indexed_through(self, scopes: Iterable[str]) -> float | None:
        try:
            return await search_index.indexed_through(self._reader, scopes)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read how far the index is: {exc}") from exc

    # --- the webhook outbox --------------------------------------------------------------------

    async def quiet_changes(self, now: float, quiet: float, max_wait: float) -> list[PendingChange]:
        return await outbox.quiet_changes(self._reader, now, quiet, max_wait)

    async def consume_change(self, change: PendingChange, event: NewEvent) -> bool:
        op = bound(outbox.consume_change, self.webhook_targets, change, event, time.time())
        return bool(await self._writer.submit(op))

    async def events_due(self, now: float) -> bool:
        return await outbox.due(self._reader, now)

    async def claim_events(self, now: float, lease: float, limit: int) -> list[OutboxEvent]:
        return list(await self._writer.submit(bound(outbox.claim, now, lease, limit)))

    async def event_delivered(self, row: int) -> None:
        await self._writer.submit(bound(outbox.delivered, row))

    async def retry_event(self, row: int, at: float) -> None:
        await self._writer.submit(bound(outbox.retry, row, at))

    async def schema_version(self) -> int:
        async with self._reader.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _no_wakeup_preemption(conn: aiosqlite.Connection) -> None:
    """Linux: the writer's thread, handed a commit, no longer preempts the event loop that
    handed it over (SCHED_BATCH: the same share of the CPU, no wake-up preemption). It needs
    the GIL the loop holds at that moment anyway, so preempting only cost two context switches
    and a stall of the loop per commit."""
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None or not hasattr(os, "sched_setscheduler"):
        return

    def set_policy(_db: sqlite3.Connection) -> None:
        os.sched_setscheduler(0, batch, os.sched_param(0))

    try:
        await in_thread(conn, set_policy)
    except OSError as exc:  # a sandbox may refuse it: only a little speed is at stake
        log.debug("writer thread keeps the default scheduling policy: %s", exc)


def in_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
    """Run ``work`` on the sqlite3 connection in aiosqlite's own thread, in one hand-off.

    Each aiosqlite call is a round trip (its thread woken, then the event loop woken through
    its self-pipe): the four of a commit cost more CPU than SQLite's own work on a small batch.
    aiosqlite has no public call for this; ``_execute`` is what all its methods use."""
    return conn._execute(lambda: work(conn._conn))


def _write_batch(
    db: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    docs: list[tuple[Any, ...]],
    authors: list[tuple[Any, ...]],
    *,
    begun: bool = False,
) -> None:
    """A batch's transaction, in the connection's thread. BEGIN IMMEDIATE takes the write lock
    up front, so even an empty batch (a flush) proves the file is writable."""
    if not begun:
        db.execute("BEGIN IMMEDIATE")
    try:
        if rows:
            db.executemany(_INSERT_UPDATE, rows)
            db.executemany(_UPSERT_DOCUMENT, docs)
        if authors:
            db.executemany(_UPSERT_AUTHOR, authors)
        db.execute("COMMIT")
    except BaseException:
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:  # the goal is only no open transaction
            log.debug("rollback after a failed commit: %s", exc)
        raise


_INSERT_UPDATE = "INSERT INTO updates (doc, data, created_at) VALUES (?, ?, ?)"
_UPSERT_DOCUMENT = """INSERT INTO documents
      (name, created_at, updated_at, size_bytes, tail_count, tail_bytes)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
      updated_at = excluded.updated_at,
      size_bytes = size_bytes + excluded.size_bytes,
      tail_count = tail_count + excluded.tail_count,
      tail_bytes = tail_bytes + excluded.tail_bytes"""
_VERSION_COLUMNS = "id, created_at, label, COALESCE(state_bytes, LENGTH(data)), auto, number"
# A row of the authors map: a new one, or a rename of a name-sourced one by a name (a subject's
# row keeps its author, and a name never becomes a subject's); last_at moves on either way.
_UPSERT_AUTHOR = """INSERT INTO authors (doc, client_id, author, source, first_at, last_at)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (doc, client_id) DO UPDATE SET
      author = CASE WHEN authors.source = 'name' AND excluded.source = 'name'
                    THEN excluded.author ELSE authors.author END,
      last_at = MAX(authors.last_at, excluded.last_at)"""
_FILE_COLUMNS = "id, doc, content_type, size, sha256, created_at"


def _version_info(r: Any) -> VersionInfo:
    return VersionInfo(r[0], r[1], r[2], r[3], bool(r[4]), r[5])


def _stored_file(r: Any) -> StoredFile:
    return StoredFile(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]) if len(r) > 6 else None)


async def _next_version_number(conn: aiosqlite.Connection, doc: str) -> int:
    """The document's next version number, from its counter row (in the caller's transaction:
    a number given and then rolled back is given again)."""
    await conn.execute(
        "INSERT INTO version_counters (doc, last_number) VALUES (?, 1) "
        "ON CONFLICT (doc) DO UPDATE SET last_number = last_number + 1",
        (doc,),
    )
    async with conn.execute(
        "SELECT last_number FROM version_counters WHERE doc = ?", (doc,)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])
