"""SQLite persistence: the only module that speaks SQL.

One aiosqlite connection, one writer task. Appends are queued without waiting; the writer
takes everything queued so far and commits it in one transaction (group commit), then runs
the callbacks of those appends (the "saved" acks). A failed commit keeps its batch in memory
and is retried: an append is never dropped and never acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from pycrdt import merge_updates

from .config import Synchronous

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
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The database could not be read or written."""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str
    size_bytes: int
    created_at: float
    updated_at: float


AckCallback = Callable[[], None]


@dataclass(slots=True)
class _Job:
    doc: str | None
    data: bytes | None
    on_commit: AckCallback | None = None
    done: asyncio.Future[None] | None = None


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
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
            await _migrate(conn, schema_version)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout = 5000")
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

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = list(self._queue)
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
            for job in batch:
                if job.on_commit is not None:
                    job.on_commit()
            # Acks go out first; a flush also waits for the compaction its batch triggered.
            for doc in touched:
                await self._maybe_compact(doc)
            for job in batch:
                if job.done is not None and not job.done.done():
                    job.done.set_result(None)

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
        self.health.last_commit_ms = (time.perf_counter() - started) * 1000
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
        async with self._conn.execute(
            "SELECT tail_count, tail_bytes FROM documents WHERE name = ?", (doc,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return
        if row[0] >= self.compact_updates or row[1] >= self.compact_bytes:
            await self.compact(doc)

    async def compact(self, doc: str) -> bool:
        """Replace the document's log by one merged update, in one transaction.

        Runs in the writer's turn (or on a store with nothing queued), so no append of this
        document can slip in between the read and the delete. Returns whether it compacted.
        """
        conn = self._conn
        try:
            async with conn.execute(
                "SELECT id, data FROM updates WHERE doc = ? ORDER BY id", (doc,)
            ) as cur:
                rows = list(await cur.fetchall())
            if len(rows) < 2:
                return False
            merged = _merge([data for _, data in rows])
            last_id = rows[-1][0]
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(
                    "INSERT INTO updates (doc, data, created_at) VALUES (?, ?, ?)",
                    (doc, merged, time.time()),
                )
                await conn.execute("DELETE FROM updates WHERE doc = ? AND id <= ?", (doc, last_id))
                await conn.execute(
                    """UPDATE documents SET size_bytes = ?, tail_count = 0, tail_bytes = 0
                       WHERE name = ?""",
                    (len(merged), doc),
                )
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise
        except Exception as exc:  # an optimisation only: the log stays
            log.error("compaction of %r failed, log kept as it is: %s", doc, exc)
            return False
        self.health.compactions += 1
        return True

    async def compact_all(self) -> int:
        """Compact every document with a tail (shutdown: the next start loads one row each)."""
        await self.flush()
        async with self._conn.execute(
            "SELECT name FROM documents WHERE tail_count > 1 ORDER BY name"
        ) as cur:
            names = [row[0] for row in await cur.fetchall()]
        done = 0
        for name in names:
            done += await self.compact(name)
        return done

    async def backup(self, dest: Path | str) -> None:
        """A consistent copy of the whole database (SQLite's online backup), taken live."""
        await self.flush()
        target = await aiosqlite.connect(dest)
        try:
            await self._reader.backup(target)
        finally:
            await target.close()

    # --- reads ---------------------------------------------------------------------------

    async def load(self, doc: str) -> list[bytes]:
        """Every stored update of ``doc`` (snapshot first), as committed."""
        try:
            async with self._reader.execute(
                "SELECT data FROM updates WHERE doc = ? ORDER BY id", (doc,)
            ) as cur:
                return [bytes(row[0]) for row in await cur.fetchall()]
        except Exception as exc:
            raise StoreError(f"cannot load {doc!r}: {exc}") from exc

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


def _merge(updates: Iterable[bytes]) -> bytes:
    items = list(updates)
    return items[0] if len(items) == 1 else merge_updates(*items)


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except Exception as exc:  # the goal is only no open transaction
        log.debug("rollback after a failed transaction: %s", exc)


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
