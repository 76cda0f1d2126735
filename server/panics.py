"""pycrdt's failures as Python sees them: its Rust panics surface as pyo3's ``PanicException``, a
``BaseException``, so code that feeds pycrdt input it did not make must catch ``BaseException``
too — but never the interpreter's own control flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

CONTROL_FLOW = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


class CrdtFailures:
    """``with CrdtFailures(make_error):`` turns any failure inside the block, pycrdt panics
    included, into ``make_error(exc)``; control flow (cancellation, exit, interrupts) passes
    through untouched. A class, not a generator: it sits on the per-edit path."""

    __slots__ = ("make_error",)

    def __init__(self, make_error: Callable[[BaseException], Exception]) -> None:
        self.make_error = make_error

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None or isinstance(exc, CONTROL_FLOW):
            return False
        raise self.make_error(exc) from exc
