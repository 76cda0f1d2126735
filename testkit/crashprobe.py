"""``python -m testkit.crashprobe serve ...``: the Tandem server, telling the crash loop on stderr
when each of the store's own transactions (a compaction, a version save...) begins and ends, so
the loop can say which one a SIGKILL interrupted. Nothing else is changed: the same CLI, the same
store; the lines are written (and flushed) before and after the transaction.
"""

from __future__ import annotations

import sys
from typing import Any

import server
from server.cli import main
from server.storage import sqlite
from server.storage.writer import WriteOp

PREFIX = "crashprobe:"
# The store method that makes each op (closures named ``<Class>.<method>.<locals>.op``).
KINDS = {"_compact_op": "compaction", "save_version": "version"}

_transact = sqlite.SQLiteStore._transact


def kind_of(op: WriteOp) -> str:
    parts = getattr(op, "__qualname__", "").split(".")
    method = parts[-3] if len(parts) >= 3 and parts[-2] == "<locals>" else ".".join(parts)
    if method == "bound":  # writer.bound(work, ...): name the work
        works = [c.cell_contents for c in op.__closure__ or () if callable(c.cell_contents)]
        method = getattr(works[0], "__name__", method) if works else method
    return KINDS.get(method, method or "op")


def say(*words: str) -> None:
    # One write of one line: a kill cannot tear it, nor another process's output (the worker
    # pool's resource tracker shares this stderr) land inside it.
    sys.stderr.write(" ".join((PREFIX, *words)) + "\n")
    sys.stderr.flush()


async def probed_transact(self: sqlite.SQLiteStore, op: WriteOp) -> Any:
    kind = kind_of(op)
    say("begin", kind)
    try:
        return await _transact(self, op)
    finally:
        say("end", kind)


if __name__ == "__main__":
    # Before the store exists: its writer takes ``self._transact`` when it is made.
    sqlite.SQLiteStore._transact = probed_transact  # type: ignore[method-assign]
    say("server", server.__file__)
    main(prog_name="python -m testkit.crashprobe")
