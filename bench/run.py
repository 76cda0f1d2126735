"""``make bench``: Tandem against its peers, same load generator, same run, interleaved.

Every measurement starts a fresh server (own temporary directory) on 127.0.0.1; within a
workload the servers take turns (Tandem, pycrdt-websocket, y-websocket, relay, then again),
so drift of this shared machine falls on all of them alike. Results: the median over rounds.
Writes bench/results/<timestamp>.json and bench/results/latest.json and prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import loadgen, procstat, reading, report, servers, stored, traces
from .report import Row
from .servers import ALL, BASELINE, BASELINE_REPO, PYCRDT, RELAY, STORES, TANDEM, TANDEMS, Server
from .workloads import (
    w1_throughput,
    w2_latency,
    w3_late_joiner,
    w4_connections,
    w5_storage,
    w6_crowd,
)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    rounds: int = 2
    w1_traces: tuple[tuple[str, int | None], ...] = (("rustcode", None), ("automerge-paper", 10000))
    # 100 rooms (2,500 edits/s in, 10,000 deliveries/s) starve the load generator on 2 shared
    # cores even against the bare relay; 40 rooms is what this machine can generate.
    w2_rooms: int = 40
    w2_users: int = 5
    w2_rate: float = 5.0
    w2_warmup: float = 2.0
    w2_seconds: float = 10.0
    w3_limit: int | None = None
    w3_warm_samples: int = 3
    w3_cold_samples: int = 2
    w4_connections: int = 2000
    w4_rooms: int = 200
    w4_rounds: int = 1
    w5_limit: int | None = None
    w5_cold_timeout: float = 45.0
    w5_replay_timeout: float = 150.0
    w1_timeout: float = 300.0
    # W6: (rooms, users per room, edits per user per second), each without acks (every server)
    # and with acks (Tandem, as the editor connects).
    w6_points: tuple[tuple[int, int, float], ...] = ((300, 5, 2.0), (500, 5, 2.0))
    w6_warmup: float = 3.0
    w6_seconds: float = 10.0


QUICK = Plan(
    rounds=1,
    w1_traces=(("rustcode", 5000), ("automerge-paper", 5000)),
    w2_rooms=20,
    w2_warmup=2.0,
    w2_seconds=5.0,
    w3_limit=30000,
    w3_warm_samples=2,
    w3_cold_samples=1,
    w4_connections=400,
    w4_rooms=40,
    w5_limit=20000,
    w5_cold_timeout=30.0,
    w5_replay_timeout=60.0,
    w1_timeout=120.0,
    w6_points=((300, 5, 2.0),),
    w6_warmup=2.0,
    w6_seconds=6.0,
)


def w6_name(point: tuple[int, int, float], *, acks: bool = False) -> str:
    rooms, users, rate = point
    return f"W6 {rooms}×{users}×{rate:g}" + (" acks" if acks else "")


def w1_name(trace: str, limit: int | None, total: int) -> str:
    return f"W1 {trace}" + (f" (first {limit:,} of {total:,} txns)" if limit else "")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, plan: Plan, kinds: tuple[str, ...], workdir: Path) -> None:
        self.plan = plan
        self.kinds = kinds
        self.workdir = workdir
        self.runs: list[dict[str, Any]] = []
        self._n = 0

    def _dir(self, label: str) -> Path:
        self._n += 1
        return self.workdir / f"{self._n:03d}-{label.replace(' ', '_').replace('/', '_')}"

    async def interleaved(
        self,
        workload: str,
        kinds: tuple[str, ...],
        body: Callable[[Server], Awaitable[dict[str, Any]]],
        rounds: int,
        after_stop: Callable[[Server, dict[str, Any]], None] | None = None,
        retries: int = 0,
    ) -> None:
        """Run ``body`` on each server in turn, ``rounds`` times. A run whose figures say the
        load generator was starved (``loadgen_starved``) is repeated up to ``retries`` times."""
        for round_no in range(1, rounds + 1):
            for kind in kinds:
                for attempt in range(1, retries + 2):
                    figures = await self._one(workload, kind, body, after_stop)
                    figures["attempt"] = attempt
                    log(
                        f"{workload} · round {round_no}/{rounds} · {kind}: "
                        f"{json.dumps(figures)[:400]}"
                    )
                    if not figures.get("loadgen_starved"):
                        break
                    log("  load generator starved (other load on the machine?): measuring again")
                self.runs.append(
                    {"workload": workload, "round": round_no, "server": kind, "figures": figures}
                )

    async def _one(
        self,
        workload: str,
        kind: str,
        body: Callable[[Server], Awaitable[dict[str, Any]]],
        after_stop: Callable[[Server, dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        server = Server(kind, self._dir(f"{workload}-{kind}"))
        started = time.perf_counter()
        server.start()
        try:
            figures = await body(server)
        finally:
            server.stop(timeout=servers.STOP_TIMEOUT[kind])
            server.kill()
        if after_stop is not None:
            after_stop(server, figures)
        figures["wall_seconds"] = round(time.perf_counter() - started, 1)
        return figures

    async def w1(self) -> list[str]:
        names = []
        for name, limit in self.plan.w1_traces:
            trace = traces.load(name, limit)
            total = len(traces.load(name).updates) if limit else len(trace.updates)
            workload = w1_name(name, limit, total)
            names.append(workload)

            async def body(server: Server, trace: traces.EncodedTrace = trace) -> dict[str, Any]:
                return await w1_throughput.run(server, trace, timeout=self.plan.w1_timeout)

            def after_stop(
                server: Server, figures: dict[str, Any], trace: traces.EncodedTrace = trace
            ) -> None:
                if STORES[server.kind]:
                    figures["db_bytes_after_stop"] = server.db_bytes()
                    figures["merged_state_bytes"] = len(trace.state)
                if server.kind in TANDEMS:  # counted in the database, as for the peers
                    figures.update(stored.tandem_stored(server.db, trace))
                if server.kind == PYCRDT:
                    rows = _pycrdt_rows(server.db)
                    figures["stored_rows_after_stop"] = rows
                    figures["stored_percent"] = round(100 * (rows or 0) / len(trace.updates), 1)

            await self.interleaved(workload, self.kinds, body, self.plan.rounds, after_stop)
        return names

    async def w2(self) -> None:
        p = self.plan

        async def body(server: Server) -> dict[str, Any]:
            return await w2_latency.run(
                server,
                rooms=p.w2_rooms,
                users=p.w2_users,
                rate=p.w2_rate,
                warmup=p.w2_warmup,
                duration=p.w2_seconds,
            )

        await self.interleaved("W2", self.kinds, body, p.rounds, retries=1)

    async def w3(self) -> None:
        trace = traces.load("automerge-paper", self.plan.w3_limit)

        async def body(server: Server) -> dict[str, Any]:
            return await w3_late_joiner.seeded(
                server,
                trace,
                warm_samples=self.plan.w3_warm_samples,
                cold_samples=self.plan.w3_cold_samples,
            )

        kinds = tuple(k for k in self.kinds if k != RELAY)  # a relay holds no document
        await self.interleaved("W3", kinds, body, self.plan.rounds)

    async def w4(self) -> None:
        async def body(server: Server) -> dict[str, Any]:
            return await w4_connections.run(
                server, connections=self.plan.w4_connections, rooms=self.plan.w4_rooms
            )

        await self.interleaved("W4", self.kinds, body, self.plan.w4_rounds)

    async def w6(self) -> list[str]:
        """Many rooms at human speed: every server without acks, then Tandem with them."""
        p = self.plan
        names = []
        for point in p.w6_points:
            for acks in (False, True):
                # pycrdt-websocket falls seconds behind at W2's 40 rooms already.
                kinds = tuple(k for k in self.kinds if k != PYCRDT and (not acks or k in TANDEMS))
                if not kinds:
                    continue

                async def body(
                    server: Server, point: tuple[int, int, float] = point, acks: bool = acks
                ) -> dict[str, Any]:
                    rooms, users, rate = point
                    return await w6_crowd.run(
                        server,
                        rooms=rooms,
                        users=users,
                        rate=rate,
                        warmup=p.w6_warmup,
                        duration=p.w6_seconds,
                        ack=acks,
                    )

                name = w6_name(point, acks=acks)
                names.append(name)
                await self.interleaved(name, kinds, body, p.rounds, retries=1)
        return names

    async def w5(self) -> dict[str, Any]:
        if TANDEM not in self.kinds:
            return {}
        trace = traces.load("automerge-paper", self.plan.w5_limit)
        log(f"W5 · Tandem · replaying {len(trace.updates):,} updates twice")
        result = await w5_storage.run(
            self._dir("W5-tandem"),
            trace,
            warm_samples=self.plan.w3_warm_samples,
            cold_samples=self.plan.w3_cold_samples,
            cold_timeout=self.plan.w5_cold_timeout,
            replay_timeout=self.plan.w5_replay_timeout,
        )
        log(f"  {json.dumps(result)[:600]}")
        return result


def _pycrdt_rows(db: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM yupdates").fetchone()[0])
    except sqlite3.Error:
        return None


def w6_rows(w6_names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for w in w6_names:
        rows.append(Row(w, "p50_ms", "p50 latency (ms)", "lower", digits=1))
        rows.append(Row(w, "p99_ms", "p99 latency (ms)", "lower", digits=1))
        if w.endswith(" acks"):
            rows.append(Row(w, "ack_p50_ms", "p50 send → saved ack (ms)", "lower", digits=1))
            rows.append(Row(w, "ack_p99_ms", "p99 send → saved ack (ms)", "lower", digits=1))
        rows.append(Row(w, "all_delivered", "every edit delivered", "higher"))
        rows.append(Row(w, "server_cpu_ms_per_edit", "server CPU per edit (ms)", "lower", digits=3))
        rows.append(Row(w, "server_cpu_share", "server CPU (% of a core)", "lower", scale=100))
        if not w.endswith(" acks"):
            rows.append(
                Row(w, "kib_per_idle_connection", "RSS per idle connection (KiB)", "lower", 1, 1)
            )
    return rows


def table_rows(w1_names: list[str], w6_names: list[str] | None = None) -> list[Row]:
    rows: list[Row] = []
    for w in w1_names:
        rows.append(Row(w, "updates_per_s", "updates/s in", "higher"))
        rows.append(Row(w, "messages_out_per_s", "messages/s out", "higher"))
        rows.append(Row(w, "updates_per_cpu_s", "updates per server CPU-second", "higher"))
    rows += [
        Row("W2", "p50_ms", "p50 latency (ms)", "lower", digits=1),
        Row("W2", "p99_ms", "p99 latency (ms)", "lower", digits=1),
        Row("W2", "server_cpu_share", "server CPU (% of a core)", "lower", scale=100),
        Row("W2", "server_cpu_ms_per_edit", "server CPU per edit (ms)", "lower", digits=3),
        Row("W3", "warm_ms", "late joiner, warm (ms)", "lower", digits=1),
        Row("W3", "cold_ms", "late joiner, cold (ms)", "lower", digits=1),
        Row("W3", "first_request_after_start_ms", "first request after a restart (ms)", "lower"),
        Row("W4", "kib_per_connection", "server RSS per idle connection (KiB)", "lower", digits=1),
    ]
    rows += w6_rows(w6_names or [])
    for w in w1_names:
        rows.append(Row(w, "stored_percent", "updates in the db after the run (%)", "higher", 1, 1))
        rows.append(Row(w, "db_bytes_after_stop", "db bytes after the run", "lower"))
    return rows


def calibration(
    summary: report.Summary, w1_names: list[str], w6_names: list[str] | None = None
) -> dict[str, Any]:
    """How far the load generator is from being the bottleneck, from the bare relay's runs."""
    out: dict[str, Any] = {}
    for w in w1_names:
        relay = summary.get(w, {}).get(RELAY)
        if not relay:
            continue
        us = relay.get("loadgen_us_per_message")
        out[w] = {
            "relay_messages_out_per_s": relay.get("messages_out_per_s"),
            "loadgen_cpu_share_during_relay_run": relay.get("loadgen_cpu_share"),
            "loadgen_us_per_message": us,
            "loadgen_ceiling_messages_per_s": round(1e6 / us) if us else None,
        }
    relay_w2 = summary.get("W2", {}).get(RELAY)
    if relay_w2:
        out["W2"] = {
            "relay_p50_ms": relay_w2.get("p50_ms"),
            "relay_p99_ms": relay_w2.get("p99_ms"),
            "loadgen_cpu_share": relay_w2.get("loadgen_cpu_share"),
            "sends_late_over_50ms": relay_w2.get("sends_late_over_50ms"),
        }
    for w in w6_names or []:
        relay_w6 = summary.get(w, {}).get(RELAY)
        if relay_w6:
            out[w] = {
                "relay_p50_ms": relay_w6.get("p50_ms"),
                "relay_p99_ms": relay_w6.get("p99_ms"),
                "loadgen_cpu_share": relay_w6.get("loadgen_cpu_share"),
                "sends_late_over_50ms": relay_w6.get("sends_late_over_50ms"),
            }
    return out


def calibration_text(cal: dict[str, Any]) -> str:
    lines = []
    for w, c in cal.items():
        if w == "W2" or w.startswith("W6"):
            lines.append(
                f"- {w} floor (bare relay): p50 {c['relay_p50_ms']} ms, p99 {c['relay_p99_ms']} "
                f"ms; load generator at {c['loadgen_cpu_share']:.0%} of a core, "
                f"{c['sends_late_over_50ms']} sends more than 50 ms late."
            )
        else:
            lines.append(
                f"- {w}: the bare relay moved {c['relay_messages_out_per_s']:,.0f} messages/s "
                f"with the load generator at {c['loadgen_cpu_share_during_relay_run']:.0%} of a "
                f"core ({c['loadgen_us_per_message']} µs of its CPU per message, so its ceiling "
                f"is ≈ {c['loadgen_ceiling_messages_per_s']:,} messages/s)."
            )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else Plan()
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    if args.w2_rooms:
        plan = Plan(**{**asdict(plan), "w2_rooms": args.w2_rooms})
    if args.w6:
        points = tuple(_w6_point(p) for p in args.w6.split(","))
        plan = Plan(**{**asdict(plan), "w6_points": points})
    kinds = tuple(k for k in ALL if k in args.servers.split(","))
    only = set(args.only.split(",")) if args.only else {"w1", "w2", "w3", "w4", "w5", "w6"}
    nofile = loadgen.raise_nofile_limit(65536)
    started = time.time()
    log("machine check (1 s sample of other processes' CPU use)")
    background_before = procstat.background_load()
    machine = procstat.machine_info(servers.REPO, servers.PEERS_PYTHON, servers.NODE_DIR)
    log("encoding traces (cached in bench/.cache after the first run)")
    for name, limit in plan.w1_traces:
        traces.load(name, limit)
    traces.load("automerge-paper", plan.w3_limit)
    traces.load("automerge-paper", plan.w5_limit)
    errors: dict[str, str] = {}
    w1_names: list[str] = []
    w6_names: list[str] = []
    storage: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        bench = Bench(plan, kinds, Path(tmp))
        for name in ("w1", "w2", "w3", "w4", "w5", "w6"):
            if name not in only:
                continue
            try:  # one workload's failure is reported, the others still run
                outcome = await getattr(bench, name)()
            except Exception as exc:
                log(f"{name} failed: {exc!r}")
                errors[name] = repr(exc)
                servers.kill_all()
                continue
            if name == "w1":
                w1_names = outcome
            elif name == "w5":
                storage = outcome
            elif name == "w6":
                w6_names = outcome
    log("strict update reading: cost per update, in-process")
    update_reading = reading.measure(plan.w1_traces)
    summary = report.summarise(bench.runs)
    rows = table_rows(w1_names, w6_names)
    cal = calibration(summary, w1_names, w6_names)
    goals = report.targets(summary, storage, w1_names, w6_names)
    background_after = procstat.background_load()
    notes = _notes(plan, w1_names, w6_names)
    markdown = "\n\n".join(
        part
        for part in (
            report.markdown_table(summary, rows),
            report.storage_table(storage),
            "Strict update reading (in-process, best of 3):\n\n" + reading.markdown(update_reading),
            "Targets:\n\n" + report.targets_table(goals),
            "Load generator calibration:\n\n" + calibration_text(cal) if cal else "",
            "Notes:\n\n" + "\n".join(f"- {n}" for n in notes),
            "Failed workloads:\n\n" + "\n".join(f"- {k}: {v}" for k, v in errors.items())
            if errors
            else "",
        )
        if part
    )
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "plan": asdict(plan),
        "servers": {k: servers.LABELS[k] for k in kinds},
        "tandem_extra_args": list(servers.tandem_limit_args()),
        "machine": machine | {"open_files_limit": nofile},
        "background_load_before": background_before,
        "background_load_after": background_after,
        "runs": bench.runs,
        "summary": summary,
        "ratios_tandem_over_peer": report.ratios(summary, rows),
        "storage": storage,
        "update_reading": update_reading,
        "targets": goals,
        "calibration": cal,
        "notes": notes,
        "errors": errors,
        "markdown": markdown,
    }


def _notes(plan: Plan, w1_names: list[str], w6_names: list[str] | None = None) -> list[str]:
    notes = [
        f"Medians over {plan.rounds} interleaved round(s) (W4: {plan.w4_rounds}); "
        "every run on a freshly started server.",
        "W1: the trace's updates in order, in blocks of "
        f"{w1_throughput.BLOCK} sent by the 2 writers in turn; 5 readers; "
        "clock stops when the slowest reader holds the final text.",
        f"W2: {plan.w2_rooms} rooms × {plan.w2_users} users × {plan.w2_rate:g} edits/s "
        f"({plan.w2_rooms * plan.w2_users * plan.w2_rate:,.0f} edits/s in), "
        f"{plan.w2_seconds:g} s measured after {plan.w2_warmup:g} s warm-up; "
        "latency = send to arrival at each other user of the room"
        + (
            "; scaled down from 100 rooms × 5 users: at 100 rooms (2,500 edits/s in, 10,000 "
            "deliveries/s) the load generator fell behind its schedule even against the bare "
            "relay on this 2-core machine"
            if plan.w2_rooms < 100
            else ""
        )
        + ". A run where > 1% of sends left > 50 ms late is measured again once.",
        "W3: seeded with the whole automerge-paper document in one update"
        + (f" (first {plan.w3_limit:,} txns)" if plan.w3_limit else "")
        + "; y-websocket stores nothing, so it has no cold figure; the relay holds no document.",
        "Tandem runs with its per-address connection limit and per-connection message rate "
        "lifted (all load comes from 127.0.0.1; W1 writers replay faster than anyone types).",
        "pycrdt-websocket: WebsocketServer(auto_clean_rooms=True) + YRoom + SQLiteYStore "
        "(defaults) under Hypercorn; y-websocket: bin/server.js, no persistence.",
    ]
    if w6_names:
        notes.append(
            "W6 crowd: R rooms × U users × E edits/s each ("
            + ", ".join(w for w in w6_names if not w.endswith(" acks"))
            + f"), {plan.w6_seconds:g} s measured after {plan.w6_warmup:g} s warm-up, "
            "pre-encoded updates from one raw-socket load generator, every delivery timed "
            "against its send; '… acks': Tandem with ?ack=1 as the editor connects, the saved "
            "ack timed too; RSS per idle connection read after every user joined and the sockets "
            "sat idle for 2 s (rooms included, as W4); pycrdt-websocket not run (it falls "
            "seconds behind at W2's 40 rooms)."
        )
    if any("first" in w for w in w1_names):
        notes.append("automerge-paper is capped in W1 to keep the whole run near 15 minutes.")
    return notes


def _w6_point(text: str) -> tuple[int, int, float]:
    rooms, users, rate = text.lower().split("x")
    return int(rooms), int(users), float(rate)


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    atexit.register(servers.kill_all)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (~3 min)")
    parser.add_argument("--rounds", type=int, default=0, help="override the number of rounds")
    parser.add_argument("--only", default="", help="comma list of w1,w2,w3,w4,w5,w6")
    default_servers = [k for k in ALL if k != BASELINE or BASELINE_REPO is not None]
    parser.add_argument(
        "--servers",
        default=",".join(default_servers),
        help="comma list of servers (tandem-baseline: TANDEM_BENCH_BASELINE=checkout)",
    )
    parser.add_argument("--w2-rooms", type=int, default=0, help="W2 rooms (default 40)")
    parser.add_argument(
        "--w6", default="", help="W6 points as ROOMSxUSERSxRATE, comma-separated (300x5x2,500x5x2)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = json.dumps(result, indent=1)
    (args.out / f"{stamp}.json").write_text(text)
    (args.out / "latest.json").write_text(text)
    print(result["markdown"])
    log(f"wrote {args.out / f'{stamp}.json'} and latest.json ({result['seconds']} s)")


if __name__ == "__main__":
    main()
