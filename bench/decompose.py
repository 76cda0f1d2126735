"""What each part of Tandem's edit path costs in CPU per edit under W6 ("crowd"): Tandem whole,
then with parts switched off one after another (``bench/peers/tandem_without.py``), and the bare
relay, interleaved over rounds; the medians, and what each step removed.

    python -m bench.decompose [--rooms 300] [--users 5] [--rate 2] [--rounds 3]

A diagnostic, not a benchmark of record: the switched-off servers store nothing. One W6 run's
CPU per edit varies by about ±8% on this machine from one run to the next; a step worth less
than that needs several rounds to show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import loadgen, servers
from .workloads import w6_crowd

# Each step switches off one part more than the one before.
STEPS: tuple[tuple[str, str], ...] = (
    ("Tandem", ""),
    ("without compaction", "compaction"),
    ("without SQL (the batch still goes to SQLite's thread)", "compaction,sql"),
    ("without the hand-off to SQLite's thread", "compaction,sql,handoff"),
    ("without integrating into the Doc", "compaction,sql,handoff,integrate"),
)
WITHOUT_SCRIPT = Path(__file__).parent / "peers" / "tandem_without.py"


@dataclass(eq=False)  # hashable by identity, as Server is
class Without(servers.Server):
    """Tandem started through ``tandem_without.py`` with ``TANDEM_WITHOUT=parts``."""

    parts: str = ""

    def _command(self) -> Any:
        cmd, env, repo, ready = super()._command()
        assert cmd[1:3] == ["-m", "server"], cmd
        return (
            [cmd[0], str(WITHOUT_SCRIPT), *cmd[3:]],
            {**env, "TANDEM_WITHOUT": self.parts},
            repo,
            ready,
        )


async def one(kind: str, parts: str, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == servers.TANDEM:
            server: servers.Server = Without(
                kind, Path(tmp), servers.tandem_limit_args(), parts=parts
            )
        else:
            server = servers.Server(kind, Path(tmp))
        server.start()
        try:
            figures = await w6_crowd.run(
                server,
                rooms=args.rooms,
                users=args.users,
                rate=args.rate,
                warmup=args.warmup,
                duration=args.seconds,
            )
        finally:
            server.stop(30)
            server.kill()
    if figures.get("loadgen_starved"):
        print("  (the load generator was starved: this round's figure is suspect)", flush=True)
    return float(figures["server_cpu_ms_per_edit"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=300)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    loadgen.raise_nofile_limit(65536)
    runs: list[tuple[str, str, str]] = [(label, servers.TANDEM, parts) for label, parts in STEPS]
    runs.append(("bare relay", servers.RELAY, ""))
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for round_no in range(1, args.rounds + 1):
        for label, kind, parts in runs:
            value = await one(kind, parts, args)
            cpu[label].append(value)
            print(
                f"round {round_no}/{args.rounds} · {label}: {value:.3f} ms CPU per edit", flush=True
            )
    medians = {label: statistics.median(values) for label, values in cpu.items()}
    relay = medians["bare relay"]
    print(f"\nW6 {args.rooms}×{args.users}×{args.rate:g}, median of {args.rounds} rounds:")
    previous = None
    for label, value in medians.items():
        step = (
            ""
            if previous is None or label == "bare relay"
            else f"  (the part: {previous - value:+.3f})"
        )
        print(f"  {label:58} {value:.3f} ms/edit = {value / relay:.2f}× the relay{step}")
        previous = value
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"out": str(args.out)},
                    "cpu_ms_per_edit": cpu,
                    "medians": medians,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
