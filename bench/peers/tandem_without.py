"""`tandem serve` with parts of the edit path switched off, for ``bench/decompose.py`` only: what
each part costs per edit is the difference it makes. Never a server to use: with ``sql`` or
``handoff`` off, edits are acknowledged without being stored.

TANDEM_WITHOUT: comma-separated, of
- ``compaction``: no compaction (the writer's after-commit check returns at once);
- ``sql``: the commit hands its batch to SQLite's thread, which writes nothing;
- ``handoff``: no hand-off either (the commit returns at once; implies ``sql``);
- ``integrate``: updates are read, ordered, relayed and stored, never applied to the Doc.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# The checkout whose server package this runs: the current directory (as `-m server` would).
sys.path.insert(0, os.getcwd())

from server import room as room_module
from server.cli import main
from server.storage import sqlite as sqlite_store

WITHOUT = {part for part in os.environ.get("TANDEM_WITHOUT", "").split(",") if part}
PARTS = {"compaction", "sql", "handoff", "integrate"}


def switch_off(parts: set[str]) -> None:
    unknown = parts - PARTS
    if unknown:
        raise SystemExit(f"TANDEM_WITHOUT: unknown parts {sorted(unknown)}; known: {sorted(PARTS)}")
    if parts & {"compaction", "sql", "handoff"}:
        # Without rows stored, the compaction check would query for every document each commit.
        async def no_compaction(self: Any, doc: str) -> None:
            return None

        sqlite_store.SQLiteStore._maybe_compact = no_compaction  # type: ignore[method-assign]
    if "sql" in parts:

        def write_nothing(
            db: Any, rows: Any, docs: Any, authors: Any, *, begun: bool = False
        ) -> None:
            if begun:  # the webhook outbox began it: end it
                db.execute("COMMIT")

        sqlite_store._write_batch = write_nothing  # type: ignore[assignment]
    if "handoff" in parts:
        original = sqlite_store.in_thread

        def no_handoff(conn: Any, work: Any) -> Any:
            if getattr(work, "__name__", "") == "set_policy":
                return original(conn, work)
            return _done()

        async def _done() -> None:
            return None

        sqlite_store.in_thread = no_handoff  # type: ignore[assignment]
    if "integrate" in parts:

        def no_integrate(
            self: Any, update: bytes, summary: Any, sender: Any, on_commit: Any
        ) -> None:
            self._order.taken(summary)
            self._changed(update, sender, on_commit)

        room_module.Room._integrate = no_integrate  # type: ignore[method-assign]


if __name__ == "__main__":
    switch_off(WITHOUT)
    print(f"tandem without {sorted(WITHOUT) or 'nothing'}", file=sys.stderr, flush=True)
    sys.argv = ["tandem", *sys.argv[1:]]
    main()
