"""Worker processes for CPU-heavy requests (diffs, exports, restores), with time and size caps.

pycrdt and difflib hold the GIL, so a thread would still stall the event loop: the work runs in
separate processes (pebble's pool, which kills a worker past its time limit and starts a new
one). Past ``timeout`` a job fails with :class:`Busy` (the API answers 503); an input over
``max_bytes`` is refused before any work with :class:`TooLarge` (413); when ``max_queued`` jobs
are running or waiting already, a new one is refused with :class:`Busy` at once, so a flood of
heavy requests cannot queue up without bound.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessPool

log = logging.getLogger("tandem.workers")

T = TypeVar("T")


class Busy(RuntimeError):
    """The work took longer than allowed, or too much work is waiting (HTTP 503)."""


class TooLarge(ValueError):
    """The input is larger than the work may take (HTTP 413)."""


class Workers:
    def __init__(
        self,
        processes: int = 1,
        *,
        timeout: float = 10.0,
        max_bytes: int = 16 * 1024 * 1024,
        max_queued: int = 8,
    ) -> None:
        """``processes`` 0 runs the work in this process (the CLI: nothing else to stall)."""
        self.processes = processes
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_queued = max_queued
        self._pool: ProcessPool | None = None
        self._running = 0

    def start(self) -> None:
        if self.processes > 0 and self._pool is None:
            # "spawn": forking a process that runs an event loop and SQLite threads is unsafe.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPool(max_workers=self.processes, context=context)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=10)
            self._pool = None

    def check_size(self, *sizes: int) -> None:
        total = sum(sizes)
        if total > self.max_bytes:
            raise TooLarge(f"{total} bytes is more than this request may take ({self.max_bytes})")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker; raises Busy past the time limit or the queue bound."""
        if self._pool is None:
            return fn(*args)
        if self._running >= self.max_queued:
            raise Busy("the server is busy with other heavy requests; try again later")
        self._running += 1
        try:
            future = self._pool.schedule(fn, args=args, timeout=self.timeout)
            try:
                return await asyncio.wrap_future(future)
            except FutureTimeout as exc:
                log.warning("%s took longer than %ss; stopped", fn.__name__, self.timeout)
                raise Busy(
                    f"this took longer than {self.timeout:g} s and was stopped; try a smaller "
                    "document or version"
                ) from exc
            except asyncio.CancelledError:
                future.cancel()  # the client went away: pebble stops the worker's job too
                raise
        finally:
            self._running -= 1
