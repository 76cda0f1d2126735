"""The cost of reading every update strictly (``server.updates.check_update``) against the cost
of applying it to pycrdt, per update, on the bench's traces: in-process, best of a few runs.

``python -m bench.reading`` prints it; ``make bench`` records it beside the workloads.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pycrdt import Doc

from server.updates import check_update

from . import traces

REPEATS = 3


def _best_us(fn: Any, updates: list[bytes]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn(updates)
        best = min(best, time.perf_counter() - started)
    return best / len(updates) * 1e6


def _check_all(updates: list[bytes]) -> None:
    for update in updates:
        check_update(update)


def _apply_all(updates: list[bytes]) -> None:
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)


def measure(names: tuple[tuple[str, int | None], ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, limit in names:
        trace = traces.load(name, limit)
        check = _best_us(_check_all, trace.updates)
        apply = _best_us(_apply_all, trace.updates)
        started = time.perf_counter()
        check_update(trace.state)
        whole = (time.perf_counter() - started) * 1e3
        out[name] = {
            "updates": len(trace.updates),
            "check_update_us": round(check, 2),
            "pycrdt_apply_us": round(apply, 2),
            "check_over_apply": round(check / apply, 2),
            "whole_state_bytes": len(trace.state),
            "whole_state_check_ms": round(whole, 1),
        }
    return out


def markdown(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| trace | updates | strict reading (µs/update) | pycrdt apply (µs/update) | ratio |"
        " whole state: bytes, reading (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['updates']:,} | {r['check_update_us']} | {r['pycrdt_apply_us']} | "
            f"{r['check_over_apply']}× | {r['whole_state_bytes']:,} B, "
            f"{r['whole_state_check_ms']} |"
        )
    return "\n".join(lines)


def main() -> None:
    results = measure((("rustcode", None), ("automerge-paper", 10000)))
    print(json.dumps(results, indent=2))
    print(markdown(results))


if __name__ == "__main__":
    main()
