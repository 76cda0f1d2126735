"""The group-commit writer: one task that commits every append queued so far in one transaction,
then runs their callbacks (the "saved" acks). Backend-neutral: a backend gives it the function that
commits a batch and the one that runs a write of its own in a transaction.

A failed commit keeps its batch in the queue and is retried with a growing delay: an append is
never dropped and never acknowledged before it is durable. A batch is bounded (appends and bytes):
one transaction's pages all wait in the log until it commits, so an unbounded batch (a client
replaying a long history) would swell it and delay every ack to the very end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import metrics
from .base import AckCallback, StoreHealth

log = logging.getLogger("tandem.storage")

MAX_BATCH_APPENDS = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024
# Seconds from one commit's start to the next one's at least. A commit costs about the same
# for one append or fifty (the fsync, the pages written, two thread hand-offs), so under a
# steady trickle of edits (many rooms typing at human speed) waiting this long gathers the
# edits of many rooms into one commit instead of committing nearly each alone; an edit that
# comes after a quiet spell waits for nothing. An ack comes at most this much later.
COMMIT_INTERVAL = 0.01

# A write of its own (a version, a compaction, a deletion): the backend runs it in a transaction.
WriteOp = Callable[[Any], Awaitable[Any]]
# A row of a document's authors map: (client id, author, source).
AuthorRow = tuple[int, str, str]


def bound(work: Callable[..., Awaitable[Any]], *args: Any) -> WriteOp:
    """``work(conn, *args)`` as a write op."""

    async def op(conn: Any) -> Any:
        return await work(conn, *args)

    return op


@dataclass(slots=True)
class Append:
    doc: str | None
    data: bytes | None
    on_commit: AckCallback | None = None
    # Resolved once this job and everything before it is committed (flush, submit).
    done: asyncio.Future[Any] | None = None
    op: WriteOp | None = None
    queued_at: float = field(default_factory=time.monotonic)
    # The document's sequence number the commit gave it (stores that number appends).
    seq: int | None = None
    # An authors-map row, committed with the batch this job is in (``data`` is None then).
    author: AuthorRow | None = None


class GroupCommitWriter:
    def __init__(
        self,
        commit: Callable[[list[Append]], Awaitable[list[str]]],
        transact: Callable[[WriteOp], Awaitable[Any]],
        after_commit: Callable[[list[str]], Awaitable[None]],
        *,
        retry_delay: float = 0.5,
        interval: float = COMMIT_INTERVAL,
    ) -> None:
        """``commit`` writes a batch of appends in one transaction and returns the documents
        it touched; ``transact`` runs one write op in a transaction of its own and returns its
        result; ``after_commit`` runs in the writer's turn once a batch is durable and acked
        (compaction), before the flushes waiting on that batch return."""
        self._commit = commit
        self._transact = transact
        self._after_commit = after_commit
        self._retry_delay = retry_delay
        self._interval = interval
        self._last_start = 0.0
        self._queue: deque[Append] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.health = StoreHealth()
        # Told of each append once it is durable, before its ack: (doc, seq, data) — what a
        # cluster publishes to the other instances (only what is committed).
        self.on_committed: Callable[[str, int, bytes], None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tandem-store-writer")

    async def close(self) -> None:
        """Commit everything queued, then stop."""
        if self._task is None:
            return
        await self.flush()
        self._closing = True
        self._wakeup.set()
        await self._task
        self._task = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def append(self, doc: str, data: bytes | None, on_commit: AckCallback | None = None) -> None:
        self._queue.append(Append(doc, data, on_commit))
        self._wakeup.set()

    def record_author(self, doc: str, row: AuthorRow) -> None:
        """Queue an authors-map row: it commits with the appends of the same batch (in the
        order queued, so never after an append queued later)."""
        self._queue.append(Append(doc, None, author=row))
        self._wakeup.set()

    async def flush(self) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(Append(None, None, None, done))
        self._wakeup.set()
        await done

    async def submit(self, op: WriteOp) -> Any:
        """Run ``op`` in a transaction of its own, after every earlier append; return its
        result or raise its exception."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Append(None, None, None, done, op))
        self._wakeup.set()
        return await done

    async def _loop(self) -> None:
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
            wait = self._last_start + self._interval - time.monotonic()
            if wait > 0 and not self._closing:
                await asyncio.sleep(wait)
            self._last_start = time.monotonic()
            batch = self._next_batch()
            started = time.perf_counter()
            try:
                touched = await self._commit(batch)
            except Exception as exc:  # any failure keeps the batch and retries
                self._note_failure(exc)
                await asyncio.sleep(min(self._retry_delay * self.health.failures, 5.0))
                continue
            # Only now are these appends durable: drop them from the queue and acknowledge.
            for _ in range(len(batch)):
                self._queue.popleft()
            self._note_success(batch, time.perf_counter() - started)
            committed = time.monotonic()
            if self.on_committed is not None:
                for job in batch:
                    if job.data is not None and job.doc is not None and job.seq is not None:
                        self.on_committed(job.doc, job.seq, job.data)
            for job in batch:
                if job.on_commit is not None:
                    metrics.ACK_SECONDS.observe(committed - job.queued_at)
                    job.on_commit()
            # Acks go out first; a flush also waits for the compaction its batch triggered.
            await self._after_commit(touched)
            for job in batch:
                if job.done is not None and not job.done.done():
                    job.done.set_result(None)

    def _next_batch(self) -> list[Append]:
        batch: list[Append] = []
        size = 0
        for job in self._queue:
            if job.op is not None or len(batch) >= MAX_BATCH_APPENDS or size >= MAX_BATCH_BYTES:
                break
            batch.append(job)
            size += len(job.data or b"")
        return batch

    async def _run_op(self, job: Append) -> None:
        assert job.op is not None and job.done is not None
        try:
            result = await self._transact(job.op)
        except Exception as exc:
            if not job.done.done():
                job.done.set_exception(exc)
            return
        if not job.done.done():
            job.done.set_result(result)

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

    def _note_success(self, batch: list[Append], elapsed: float) -> None:
        health = self.health
        if not health.ok:
            log.warning("store writable again after %d failed commits", health.failures)
        health.ok = True
        health.error = None
        health.failures = 0
        health.since = None
        appended = sum(1 for job in batch if job.data is not None)
        health.last_commit_ms = elapsed * 1000
        health.batches += 1
        health.appended += appended
        metrics.COMMIT_SECONDS.observe(elapsed)
        metrics.COMMIT_BATCH.observe(appended)
