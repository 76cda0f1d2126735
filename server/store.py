"""SQLite persistence: the only module that speaks SQL.

One aiosqlite connection, one writer task. Appends are queued without waiting; the writer
takes everything queued so far and commits it in one transaction (group commit), then runs
the callbacks of those appends (the "saved" acks). A failed commit keeps its batch in memory
and is retried: an append is never dropped and never acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from pycrdt import get_update

from . import metrics
from .config import Synchronous
from .integrate import load_doc

log = logging.getLogger("tandem.store")

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
)
SCHEMA_VERSION = len(MIGRATIONS)
_AUTO_VACUUM_INCREMENTAL = 2
# Reads map the file instead of a read() per page: a cold load of a large snapshot reads
# hundreds of overflow pages.
READ_MMAP_BYTES = 256 * 1024 * 1024
# Documents whose tail counters are kept in memory (cleared and re-read beyond that).
_TAILS_CACHED = 10_000
# Bounds of one group commit.
MAX_BATCH_APPENDS = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024
# The WAL file is cut back to this after a checkpoint (SQLite otherwise keeps its peak size).
WAL_SIZE_LIMIT = 16 * 1024 * 1024
# zlib level 1: nearly all of level 9's gain on Yjs states (3.1x vs 3.5x), a tenth of the time.
_VERSION_ZLIB_LEVEL = 1


class StoreError(RuntimeError):
    """The database could not be read or written."""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str
    size_bytes: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document's log as committed: the snapshot first, then the tail."""

    updates: list[bytes]
    # The snapshot's state vector when the log is exactly one compacted snapshot.
    snapshot_state: bytes | None = None
    # The state vector of what was deleted under this name before, if anything was.
    tombstone: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewestVersion:
    id: int
    digest: bytes | None
    auto: bool


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: int
    created_at: float
    label: str | None
    size_bytes: int
    auto: bool


AckCallback = Callable[[], None]


WriteOp = Callable[[aiosqlite.Connection], Awaitable[Any]]


@dataclass(slots=True)
class _Job:
    doc: str | None
    data: bytes | None
    on_commit: AckCallback | None = None
    done: asyncio.Future[Any] | None = None
    # A write of its own (versions, compaction, deletion): run in its own transaction, in order.
    op: WriteOp | None = None
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Health:
    ok: bool = True
    error: str | None = None
    failures: int = 0
    since: float | None = None
    last_commit_ms: float = 0.0
    batches: int = 0
    appended: int = 0
    compactions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """The document store over one SQLite file."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        path: Path,
        *,
        compact_updates: int,
        compact_bytes: int,
        retry_delay: float = 0.5,
    ) -> None:
        self._conn = conn
        # Reads use their own connection: under WAL it sees only committed transactions,
        # never the writer's half-done one.
        self._reader = reader
        self.path = path
        self.compact_updates = compact_updates
        self.compact_bytes = compact_bytes
        self._retry_delay = retry_delay
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # Per document as committed: [tail_count, tail_bytes, size_bytes] (compaction's input).
        self._tails: dict[str, list[int]] = {}
        # Set by a compaction: see whether the pages it freed are worth giving back.
        self._vacuum_due = False
        self.health = _Health()

    # --- life cycle ----------------------------------------------------------------------

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
    ) -> Store:
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
            await _enable_incremental_vacuum(conn)  # before WAL mode writes the file's header
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
            await _migrate(conn, schema_version)
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
            compact_updates=compact_updates,
            compact_bytes=compact_bytes,
            retry_delay=retry_delay,
        )
        store._writer = asyncio.create_task(store._write_loop(), name="tandem-store-writer")
        return store

    async def close(self) -> None:
        """Commit everything queued, then close the database."""
        if self._writer is None:
            return
        await self.flush()
        self._closing = True
        self._wakeup.set()
        await self._writer
        self._writer = None
        await self._conn.close()
        await self._reader.close()

    # --- writes --------------------------------------------------------------------------

    def append(self, doc: str, data: bytes | None, on_commit: AckCallback | None = None) -> None:
        """Queue an update for ``doc``; ``on_commit`` runs once it is durable.

        ``data`` None appends nothing but still orders ``on_commit`` after every earlier append
        (an empty update is acknowledged like any other).
        """
        self._queue.append(_Job(doc, data, on_commit))
        self._wakeup.set()

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(None, None, None, done))
        self._wakeup.set()
        await done

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _submit(self, op: WriteOp) -> Any:
        """Run ``op`` on the writer connection inside one transaction, after every earlier
        append; return its result or raise its exception."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(None, None, None, done, op))
        self._wakeup.set()
        return await done

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._queue[0].op is not None:
                await self._run_op(self._queue.popleft())
                continue
            batch = self._next_batch()
            try:
                touched = await self._commit(batch)
            except Exception as exc:  # any failure keeps the batch and retries
                self._note_failure(exc)
                await asyncio.sleep(min(self._retry_delay * self.health.failures, 5.0))
                continue
            # Only now are these appends durable: drop them from the queue and acknowledge.
            for _ in range(len(batch)):
                self._queue.popleft()
            self._note_success()
            committed = time.monotonic()
            for job in batch:
                if job.on_commit is not None:
                    metrics.ACK_SECONDS.observe(committed - job.queued_at)
                    job.on_commit()
            # Acks go out first; a flush also waits for the compaction its batch triggered.
            for doc in touched:
                await self._maybe_compact(doc)
            for job in batch:
                if job.done is not None and not job.done.done():
                    job.done.set_result(None)

    def _next_batch(self) -> list[_Job]:
        """The appends at the head of the queue, up to the batch bounds: one transaction's
        pages must all sit in the WAL until it commits, so an unbounded batch (a client
        replaying a long log) would balloon the WAL and delay every ack to the very end."""
        batch: list[_Job] = []
        size = 0
        for job in self._queue:
            if job.op is not None or len(batch) >= MAX_BATCH_APPENDS or size >= MAX_BATCH_BYTES:
                break
            batch.append(job)
            size += len(job.data or b"")
        return batch

    async def _run_op(self, job: _Job) -> None:
        assert job.op is not None and job.done is not None
        conn = self._conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                result = await job.op(conn)
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise
        except Exception as exc:
            if not job.done.done():
                job.done.set_exception(exc)
            return
        if self._vacuum_due:
            self._vacuum_due = False
            await self._vacuum()
        if not job.done.done():
            job.done.set_result(result)

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

    async def _commit(self, batch: list[_Job]) -> list[str]:
        started = time.perf_counter()
        now = time.time()
        rows = [(job.doc, job.data, now) for job in batch if job.data is not None]
        per_doc: dict[str, list[int]] = {}
        for job in batch:
            if job.data is not None and job.doc is not None:
                totals = per_doc.setdefault(job.doc, [0, 0])
                totals[0] += 1
                totals[1] += len(job.data)
        conn = self._conn
        # BEGIN IMMEDIATE takes the write lock up front, so even an empty batch (a flush)
        # proves the file is writable.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                await conn.executemany(
                    "INSERT INTO updates (doc, data, created_at) VALUES (?, ?, ?)", rows
                )
                await conn.executemany(
                    """INSERT INTO documents
                         (name, created_at, updated_at, size_bytes, tail_count, tail_bytes)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (name) DO UPDATE SET
                         updated_at = excluded.updated_at,
                         size_bytes = size_bytes + excluded.size_bytes,
                         tail_count = tail_count + excluded.tail_count,
                         tail_bytes = tail_bytes + excluded.tail_bytes""",
                    [(doc, now, now, b, n, b) for doc, (n, b) in per_doc.items()],
                )
            await conn.execute("COMMIT")
        except BaseException:
            await _rollback(conn)
            raise
        for doc, (count, size) in per_doc.items():
            tail = self._tails.get(doc)
            if tail is not None:
                tail[0] += count
                tail[1] += size
                tail[2] += size
        elapsed = time.perf_counter() - started
        self.health.last_commit_ms = elapsed * 1000
        metrics.COMMIT_SECONDS.observe(elapsed)
        metrics.COMMIT_BATCH.observe(len(rows))
        self.health.batches += 1
        self.health.appended += len(rows)
        return list(per_doc)

    def _note_failure(self, exc: BaseException) -> None:
        health = self.health
        health.failures += 1
        if health.ok:
            health.since = time.time()
        health.ok = False
        health.error = f"{type(exc).__name__}: {exc}"
        log.error(
            "commit failed (%d in a row, %d appends kept in memory, retrying): %s",
            health.failures,
            len(self._queue),
            health.error,
        )

    def _note_success(self) -> None:
        health = self.health
        if not health.ok:
            log.warning("store writable again after %d failed commits", health.failures)
        health.ok = True
        health.error = None
        health.failures = 0
        health.since = None

    # --- compaction ----------------------------------------------------------------------

    async def _maybe_compact(self, doc: str) -> None:
        tail = self._tails.get(doc)
        if tail is None:
            # Read once per document; then kept up to date by each commit (a SELECT per
            # touched document per commit was most of the writer's CPU with many rooms).
            if len(self._tails) >= _TAILS_CACHED:
                self._tails.clear()
            async with self._conn.execute(
                "SELECT tail_count, tail_bytes, size_bytes FROM documents WHERE name = ?", (doc,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return
            tail = self._tails[doc] = [int(row[0]), int(row[1]), int(row[2])]
        if self.should_compact(*tail):
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await self._run_op(_Job(None, None, None, done, self._compact_op(doc)))
            if done.exception() is not None:
                log.error("compaction of %r failed, log kept: %s", doc, done.exception())

    def should_compact(self, tail_count: int, tail_bytes: int, size_bytes: int) -> bool:
        """Past either threshold — but a merge costs the whole snapshot, so a large document
        also waits until its tail is a quarter of it: the cost per appended byte stays
        constant and the file stays within 1.25x the merged state plus one tail."""
        if tail_bytes >= self.compact_bytes:
            return True
        snapshot = size_bytes - tail_bytes
        return tail_count >= self.compact_updates and tail_bytes * 4 >= snapshot

    async def compact(self, doc: str) -> bool:
        """Replace the document's log by one merged update, in one transaction.

        Runs in the writer's turn, so no append of this document can slip in between the read
        and the delete. Returns whether it compacted; a failure leaves the log as it was.
        """
        return bool(await self._submit(self._compact_op(doc)))

    def _compact_op(self, doc: str) -> WriteOp:
        async def op(conn: aiosqlite.Connection) -> bool:
            # Re-read from the table after this transaction, whatever its outcome.
            size = self._tails.pop(doc, [0, 0, 0])[2]
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
                self._tails[doc] = [0, 0, size]
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
            return True

        return op

    async def compact_all(self) -> int:
        """Compact every document with a tail (shutdown: the next start loads one row each)."""
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
        """A consistent copy of the whole database (SQLite's online backup), taken live."""
        await self.flush()
        target = await aiosqlite.connect(dest)
        try:
            await self._reader.backup(target)
        finally:
            await target.close()

    # --- versions ------------------------------------------------------------------------

    async def save_version(
        self,
        doc: str,
        state: bytes,
        label: str | None = None,
        auto: bool = False,
        digest: bytes | None = None,
    ) -> int:
        """``digest``: what identifies the state (see :func:`server.jobs.state_digest`)."""
        # Versions are read rarely and a state compresses ~3x; zlib releases the GIL.
        packed = await asyncio.to_thread(zlib.compress, state, _VERSION_ZLIB_LEVEL)

        async def op(conn: aiosqlite.Connection) -> int:
            cur = await conn.execute(
                "INSERT INTO versions "
                "(doc, created_at, label, auto, data, codec, state_bytes, state_digest) "
                "VALUES (?, ?, ?, ?, ?, 'zlib', ?, ?)",
                (doc, time.time(), label, int(auto), packed, len(state), digest),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return int(await self._submit(op))

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

    async def name_version(self, doc: str, version_id: int, label: str | None) -> None:
        """Make a version a named one (kept, counted against the cap)."""

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE versions SET auto = 0, label = COALESCE(?, label) WHERE doc = ? AND id = ?",
                (label, doc, version_id),
            )

        await self._submit(op)

    async def list_versions(self, doc: str) -> list[VersionInfo]:
        """Newest first."""
        async with self._reader.execute(
            "SELECT id, created_at, label, COALESCE(state_bytes, LENGTH(data)), auto "
            "FROM versions WHERE doc = ? "
            "ORDER BY created_at DESC, id DESC",
            (doc,),
        ) as cur:
            return [VersionInfo(r[0], r[1], r[2], r[3], bool(r[4])) for r in await cur.fetchall()]

    async def version(self, doc: str, version_id: int) -> tuple[VersionInfo, bytes] | None:
        async with self._reader.execute(
            "SELECT id, created_at, label, COALESCE(state_bytes, LENGTH(data)), auto, data, "
            "codec FROM versions WHERE doc = ? AND id = ?",
            (doc, version_id),
        ) as cur:
            r = await cur.fetchone()
        if r is None:
            return None
        data = bytes(r[5])
        if r[6] == "zlib":
            data = await asyncio.to_thread(zlib.decompress, data)
        elif r[6] != "none":
            raise StoreError(f"version {version_id} of {doc!r} uses an unknown codec {r[6]!r}")
        return VersionInfo(r[0], r[1], r[2], r[3], bool(r[4])), data

    async def delete_versions(self, doc: str, ids: Iterable[int]) -> int:
        wanted = [(doc, i) for i in ids]
        if not wanted:
            return 0

        async def op(conn: aiosqlite.Connection) -> int:
            deleted = 0
            for doc_name, version_id in wanted:
                cur = await conn.execute(
                    "DELETE FROM versions WHERE doc = ? AND id = ?", (doc_name, version_id)
                )
                deleted += max(cur.rowcount, 0)
            return deleted

        return int(await self._submit(op))

    async def delete_document(self, doc: str, tombstone: bytes | None = None) -> bool:
        """Remove a document, its log and its versions, in one transaction, leaving
        ``tombstone`` (the state vector of all it ever held) in its place. Returns whether it
        existed."""

        async def op(conn: aiosqlite.Connection) -> bool:
            self._tails.pop(doc, None)
            cur = await conn.execute("DELETE FROM documents WHERE name = ?", (doc,))
            existed = cur.rowcount > 0
            await conn.execute("DELETE FROM updates WHERE doc = ?", (doc,))
            await conn.execute("DELETE FROM versions WHERE doc = ?", (doc,))
            if tombstone is not None:
                await conn.execute(
                    "INSERT INTO tombstones (name, deleted_at, state_vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at, "
                    "state_vector = excluded.state_vector",
                    (doc, time.time(), tombstone),
                )
            return existed

        return bool(await self._submit(op))

    # --- reads ---------------------------------------------------------------------------

    async def load(self, doc: str) -> list[bytes]:
        """Every stored update of ``doc`` (snapshot first), as committed."""
        return (await self.load_document(doc)).updates

    async def load_document(self, doc: str) -> StoredDocument:
        """Like :meth:`load`, with the snapshot's state vector when the log is only that."""
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
        """The state vector of everything deleted under this name (None if nothing was)."""
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

    async def schema_version(self) -> int:
        async with self._reader.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def integrity_check(self) -> str:
        async with self._reader.execute("PRAGMA integrity_check") as cur:
            rows = await cur.fetchall()
        return "; ".join(str(r[0]) for r in rows)


def compact_updates(updates: list[bytes]) -> list[bytes]:
    """The smallest updates that hold everything ``updates`` hold.

    The rows are integrated into a Doc (see :mod:`server.integrate`; pycrdt's
    ``merge_updates`` grows quadratically with the number of updates and keeps every deleted
    item) and encoded again. Rows the Doc could not integrate yet (missing dependencies) are
    kept beside the snapshot, unchanged.
    """
    return compact_updates_with_state(updates)[0]


def compact_updates_with_state(updates: list[bytes]) -> tuple[list[bytes], bytes]:
    """:func:`compact_updates`, and the state vector of the snapshot (its first part)."""
    doc = load_doc(updates)
    state = doc.get_state()
    waiting = [u for u in updates if get_update(u, state)[0] != 0]
    return [doc.get_update(), *waiting], state


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except Exception as exc:  # the goal is only no open transaction
        log.debug("rollback after a failed transaction: %s", exc)


async def _enable_incremental_vacuum(conn: aiosqlite.Connection) -> None:
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


async def _migrate(conn: aiosqlite.Connection, target: int) -> None:
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
            await _rollback(conn)
            raise
        log.info("database migrated to schema version %d", version)
