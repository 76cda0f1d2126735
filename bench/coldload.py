"""Where a cold load of a never-compacted log goes: ``python -m bench.coldload``.

Builds (once, in a temporary directory) a database holding automerge-paper as 259,778 rows,
one per edit, with compaction off, then loads it the way a room does after a restart and prints
the split between reading the rows and integrating them into the Doc. ``--profile`` runs the
load under py-spy and writes ``bench/results/profiles/w3-uncompacted.{folded,txt}``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server.room import Room
from server.storage.sqlite import SQLiteStore as Store

from . import traces
from .profile import OUT, PY_SPY, summarise

NEVER = {"compact_updates": 10**9, "compact_bytes": 10**12}


async def build(db: Path) -> None:
    trace = traces.load("automerge-paper", None)
    store = await Store.open(db, **NEVER)
    try:
        for start in range(0, len(trace.updates), 2000):
            for update in trace.updates[start : start + 2000]:
                store.append("paper", update)
            await store.flush()
    finally:
        await store.close()  # compact_all runs only at a server's shutdown, not here


async def measure(db: Path) -> dict[str, float]:
    store = await Store.open(db, **NEVER)
    try:
        started = time.perf_counter()
        stored = await store.load_document("paper")
        read = time.perf_counter()
        Room("paper", store).load(stored.updates, stored.snapshot_state)
        done = time.perf_counter()
    finally:
        await store.close()
    return {
        "rows": len(stored.updates),
        "read_seconds": round(read - started, 2),
        "integrate_seconds": round(done - read, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--db", type=Path, help="an existing database from a previous run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tandem-coldload-") as tmp:
        db = args.db or Path(tmp) / "uncompacted.db"
        if not db.exists():
            asyncio.run(build(db))
        if not args.profile:
            print(asyncio.run(measure(db)))
            return
        folded = OUT / "w3-uncompacted.folded"
        cmd = [str(PY_SPY), "record", "--rate", "100", "--format", "raw", "-o", str(folded)]
        cmd += ["--", sys.executable, "-m", "bench.coldload", "--db", str(db)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        figures = next((line for line in out.splitlines() if line.startswith("{")), out.strip())
        text = summarise(folded)
        summary = f"figures under the profiler: {figures}\n\n{text}\n"
        (OUT / "w3-uncompacted.txt").write_text(summary)
        print(figures)
        print(text)


if __name__ == "__main__":
    main()
