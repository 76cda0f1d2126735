"""``python -m bench.crash --cycles 1000``: the crash loop of testkit/crashloop.py, run long;
writes bench/results/crash.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from testkit.crashloop import run_cycles, summarise

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "crash.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        results = asyncio.run(run_cycles(Path(tmp) / "crash.db", args.cycles, args.seed))
        summary = summarise(results) | {"seconds": round(time.time() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "cycles": [asdict(r) for r in results]}))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
