"""``python -m bench.crash --cycles 1000``: the crash loop of testkit/crashloop.py, run long (by
default 4 rooms, 8 writers, versions saved over HTTP, compaction every few updates); writes
bench/results/crash.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path

from testkit.crashloop import Cycle, RoomCheck, Settings, failures, run_cycles, summarise

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit() -> dict[str, object]:
    """The commit the run's code comes from, and whether the server's code differs from it
    (the loop itself may be newer than the commit: it is not what is tested)."""
    return {
        "commit": git("rev-parse", "HEAD"),
        "server_changed_since_commit": bool(git("status", "--porcelain", "--", "server")),
    }


# A cycle's rooms are written as rows of these (rooms that could not be read back are in
# "failures"; the final check's rooms only in the summary and, if broken, in "failures").
ROOM_FIELDS = [f.name for f in fields(RoomCheck) if f.name not in ("room", "error")]


def compact(cycle: Cycle) -> dict[str, object]:
    record = asdict(cycle)
    record["rooms"] = [[getattr(r, name) for name in ROOM_FIELDS] for r in cycle.rooms]
    return record


def progress(cycle: Cycle) -> None:
    acked = sum(r.acked_edits for r in cycle.rooms)
    print(
        f"[crash {time.strftime('%H:%M:%S')}] cycle {cycle.cycle}: {acked} acked, "
        f"{cycle.lost} lost, ordered {cycle.ordered}, integrity {cycle.integrity}, "
        f"{cycle.compactions} compactions, {cycle.versions_committed} versions, "
        f"killed during {cycle.killed_during}",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8, help="writers, spread over the rooms")
    parser.add_argument("--rate", type=float, default=300.0, help="edits/s, all writers")
    parser.add_argument("--versions-per-s", type=float, default=8.0)
    parser.add_argument("--compact-updates", type=int, default=10)
    parser.add_argument("--compact-bytes", type=int, default=256)
    parser.add_argument("--out", type=Path, default=RESULTS / "crash.json")
    args = parser.parse_args()
    settings = Settings(
        rooms=args.rooms,
        clients=args.clients,
        rate=args.rate,
        versions_per_s=args.versions_per_s,
        compact_updates=args.compact_updates,
        compact_bytes=args.compact_bytes,
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        run = asyncio.run(
            run_cycles(Path(tmp) / "crash.db", args.cycles, args.seed, settings, progress)
        )
        seconds = round(time.time() - started, 1)
    summary = {
        **commit(),
        "settings": asdict(settings),
        "seed": args.seed,
        **summarise(run),
        "seconds": seconds,
    }
    broken = failures(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "summary": summary,
                "failures": broken,
                "room_fields": ROOM_FIELDS,
                "cycles": [compact(c) for c in run.cycles],
            }
        )
    )
    print(json.dumps(summary, indent=2))
    for line in broken:
        print("FAILED:", line, file=sys.stderr)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
