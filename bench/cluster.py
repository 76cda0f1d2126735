"""``make bench-cluster``: Tandem on real PostgreSQL and Redis, one to three instances.

1. One instance on PostgreSQL against one on SQLite, taking turns: W1 (bench's trace replay,
   one trace) and W2 (bench's human load).
2. 1, 2 and 3 instances on one PostgreSQL and one Redis:
   - W1 on one document (W1's blocks, readers and clock), writer w on instance w % n and the 5
     readers dealt round-robin: every update crosses Redis to reach some reader, and a writer
     starts its turn once a reader on its own instance holds the other's block (so the turns
     cross instances through the store and Redis, as a real editor's would);
   - W1 on several documents at once, each document's clients all on one instance, the
     documents dealt over the instances (sharded: what more instances add when rooms differ);
   - W2 with each room's users dealt over the instances, delivery latency to receivers on the
     sender's instance and on another measured separately in the same run.
3. Updates per commit: the store's own counters (tandem_commit_batch_appends) and PostgreSQL's
   xact_commit for the run's database (which also counts the instances' read transactions).
4. Kill loop: an acking writer on one instance, that instance SIGKILLed mid-stream, the writer
   reconnected through the next one while the killed one restarts; at the end every acked edit
   must be in the document every instance exports.

``--only verbatim`` (opt-in, minutes) runs W1's own code with its clients dealt round-robin:
both writers paced by a reader on instance 0, which no real editor does; it shows what updates
that reach an instance before what they build on cost there.

Every run gets fresh instances on a fresh database. Writes bench/results/cluster-<UTC>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from testkit.crashloop import EDIT
from testkit.services import Postgres, Redis
from testkit.yclient import YClient

from . import loadgen, procstat, report, servers, traces, wire
from .loadgen import WSClient
from .servers import TANDEM, Server
from .workloads import w1_throughput, w2_latency
from .workloads import w1_throughput as w1
from .workloads.w2_latency import CLIENT_ID_BASE, User, _author, _encode_user, _end_clock

RESULTS = Path(__file__).resolve().parent / "results"
SQLITE = "sqlite"
POSTGRES = "postgresql"


@dataclass(frozen=True)
class Plan:
    rounds: int = 2
    w1_trace: str = "rustcode"
    w1_limit: int | None = None
    # The sharded variant replays a shorter prefix per document: several at once on 2 cores.
    shard_docs: int = 3
    shard_limit: int = 10000
    w2_rooms: int = 40  # bench/run.py's default on this machine
    w2_users: int = 5
    w2_rate: float = 5.0
    w2_warmup: float = 2.0
    w2_seconds: float = 10.0
    instances: tuple[int, ...] = (1, 2, 3)
    kill_instances: int = 3
    kill_cycles: int = 30
    w1_timeout: float = 180.0


QUICK = Plan(
    rounds=1,
    w1_limit=10000,
    shard_limit=5000,
    w2_rooms=20,
    w2_seconds=5.0,
    kill_cycles=20,
    w1_timeout=90.0,
)


def log(message: str) -> None:
    print(f"[bench-cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- instances -----------------------------------------------------------------------------


@dataclass(eq=False)
class Instance(Server):
    """bench's Tandem server kind (lifted limits, restartable on its port), on PostgreSQL and
    joined to Redis when given their URLs."""

    store_url: str = ""  # a postgresql:// URL; empty: SQLite in data_dir, as bench/servers.py
    redis_url: str = ""

    def _command(self) -> tuple[list[str], dict[str, str], Path, re.Pattern[str]]:
        cmd, env, cwd, ready = super()._command()
        if self.store_url:
            cmd[cmd.index("--db") + 1] = self.store_url
        if self.redis_url:
            cmd += ["--redis", self.redis_url]
        return cmd, env, cwd, ready

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class Spread:
    """What W1 takes as its server, dealing the clients it opens round-robin over instances
    (one instance: all on it). ``suffix`` renames the room, so several W1 runs can share them."""

    kind = TANDEM

    def __init__(self, instances: list[Instance], suffix: str = "") -> None:
        self.instances = instances
        self.suffix = suffix
        self._next = 0

    @property
    def pid(self) -> int:  # W1 meters this one; the bench meters every instance itself
        return self.instances[0].pid

    def url(self, room: str, *, ack: bool = False) -> str:
        instance = self.instances[self._next % len(self.instances)]
        self._next += 1
        return instance.url(room + self.suffix, ack=ack)


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children, live or reaped: PostgreSQL forks a backend per
    connection, and one that has exited is in the postmaster's cutime."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        own = _stat_fields(pid)
    except OSError:
        return 0.0
    total = sum(int(own[i]) for i in (11, 12, 13, 14))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except (OSError, ValueError):
            continue
        if int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


class Services:
    """The PostgreSQL and Redis every run shares (a fresh database per run)."""

    def __init__(self) -> None:
        self.pg = Postgres().start()
        self.redis = Redis().start()

    def close(self) -> None:
        self.redis.close()
        self.pg.close()

    def pg_pid(self) -> int:
        return int((self.pg.dir / "data" / "postmaster.pid").read_text().split()[0])

    def pg_stats(self, database: str) -> dict[str, int]:
        row = self.pg.psql(
            f"SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = '{database}'"
        )
        commits, inserted = (int(x) for x in row.split("|"))
        return {"xact_commit": commits, "tup_inserted": inserted}


class Meters:
    """CPU of the instances, PostgreSQL, Redis and this load generator over one stretch."""

    def __init__(self, instances: list[Instance], services: Services, uses_pg: bool) -> None:
        self.pids = [i.pid for i in instances]
        self.pg_pid = services.pg_pid() if uses_pg else None
        self.redis_pid = services.redis.proc.pid if services.redis.proc else None
        self.start()

    def _read(self) -> dict[str, float]:
        out = {"instances": sum(procstat.cpu_seconds(p) for p in self.pids)}
        out["loadgen"] = loadgen.cpu_seconds()
        if self.pg_pid:
            out["postgresql"] = tree_cpu(self.pg_pid)
        if self.redis_pid:
            out["redis"] = procstat.cpu_seconds(self.redis_pid)
        return out

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = self._read()

    def shares(self) -> dict[str, float]:
        """Each component's CPU as a share of one core (the machine has os.cpu_count())."""
        wall = time.perf_counter() - self.t0
        now = self._read()
        return {k: round((now[k] - self.cpu0[k]) / wall, 2) for k in now} if wall > 0 else {}


def cpu_figures(meters: Meters) -> dict[str, float]:
    return {f"cpu_{k}": v for k, v in meters.shares().items()}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(http: aiohttp.ClientSession, instance: Instance) -> dict[Any, float]:
    async with http.get(f"{instance.http}/metrics") as resp:
        return _samples(await resp.text())


def _total(samples: list[dict[Any, float]], name: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    return sum(
        v for s in samples for (n, lab), v in s.items() if n == name and (not want or lab == want)
    )


def _bucket_ms(samples: list[dict[Any, float]], name: str, q: float) -> float | str | None:
    """The upper bound (ms) of the histogram bucket holding quantile ``q``, summed over the
    instances: a server-side figure, as coarse as its buckets ("> x" past the last bound)."""
    buckets: dict[float, float] = {}
    for s in samples:
        for (n, lab), v in s.items():
            if n == f"{name}_bucket":
                bound = float(dict(lab)["le"])
                buckets[bound] = buckets.get(bound, 0.0) + v
    count = buckets.get(float("inf"), 0.0)
    if not count:
        return None
    bounds = sorted(buckets)
    for bound in bounds:
        if buckets[bound] >= q * count:
            return round(bound * 1000, 1) if bound != float("inf") else f"> {bounds[-2] * 1000:g}"
    return None


@dataclass
class Run:
    """Fresh instances on a fresh store, and what their counters said when the run ended."""

    services: Services
    workdir: Path
    count: int
    store: str = POSTGRES
    redis: bool = True
    instances: list[Instance] = field(default_factory=list)
    db_name: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> None:
        url = self.services.pg.new_database() if self.store == POSTGRES else ""
        self.db_name = url.rsplit("/", 1)[1] if url else ""
        redis = self.services.redis.url if self.redis else ""
        for i in range(self.count):
            self.instances.append(
                Instance(TANDEM, self.workdir / f"i{i}", store_url=url, redis_url=redis)
            )
        await asyncio.gather(*(asyncio.to_thread(i.start) for i in self.instances))

    def meters(self) -> Meters:
        return Meters(self.instances, self.services, self.store == POSTGRES)

    async def stop(self) -> None:
        live = [i for i in self.instances if i.proc is not None and i.proc.poll() is None]
        if len(live) < self.count:  # a start failed: nothing to count
            for i in self.instances:
                i.kill()
            return
        async with aiohttp.ClientSession() as http:
            samples = [await scrape(http, i) for i in self.instances]
        await asyncio.gather(
            *(asyncio.to_thread(i.stop, servers.STOP_TIMEOUT[TANDEM]) for i in self.instances)
        )
        for i in self.instances:
            i.kill()
        commits = _total(samples, "tandem_commit_batch_appends_count")
        appends = _total(samples, "tandem_commit_batch_appends_sum")
        out: dict[str, Any] = {
            "store_commits": int(commits),
            "store_appends": int(appends),
            "updates_per_commit": round(appends / commits, 2) if commits else None,
        }
        if self.store == POSTGRES:
            await asyncio.sleep(0.5)  # the backends report their statistics as they exit
            pg = self.services.pg_stats(self.db_name)
            out["pg_xact_commit"] = pg["xact_commit"]
            out["pg_tup_inserted"] = pg["tup_inserted"]
            out["updates_per_pg_xact_commit"] = (
                round(appends / pg["xact_commit"], 2) if pg["xact_commit"] else None
            )
        if self.redis and self.count > 1:
            out["cluster_published"] = int(_total(samples, "tandem_cluster_published_total"))
            out["cluster_received_updates"] = int(
                _total(samples, "tandem_cluster_received_total", kind="U")
            )
            out["cluster_repaired_updates"] = int(
                _total(samples, "tandem_cluster_repaired_updates_total")
            )
            out["cluster_duplicates"] = int(
                _total(samples, "tandem_cluster_duplicate_updates_total")
            )
            for q in (0.5, 0.99):
                key = f"cluster_lag_p{int(q * 100)}_bucket_ms"
                out[key] = _bucket_ms(samples, "tandem_cluster_lag_seconds", q)
        for name, short in (("tandem_ack_seconds", "ack"), ("tandem_commit_seconds", "commit")):
            for q in (0.5, 0.99):
                out[f"{short}_p{int(q * 100)}_bucket_ms"] = _bucket_ms(samples, name, q)
        self.figures = out


class Bench:
    def __init__(self, plan: Plan, services: Services, workdir: Path) -> None:
        self.plan = plan
        self.services = services
        self.workdir = workdir
        self.runs: list[dict[str, Any]] = []
        self._n = 0

    @contextlib.asynccontextmanager
    async def run(
        self, label: str, count: int, store: str = POSTGRES, redis: bool = True
    ) -> AsyncIterator[Run]:
        self._n += 1
        run = Run(self.services, self.workdir / f"{self._n:03d}-{label}", count, store, redis)
        try:
            await run.start()
            yield run
        finally:
            await run.stop()
            servers.kill_all()

    def record(self, workload: str, server: str, round_no: int, figures: dict[str, Any]) -> None:
        log(f"{workload} · {server} · round {round_no}: {json.dumps(figures)[:500]}")
        self.runs.append(
            {"workload": workload, "server": server, "round": round_no, "figures": figures}
        )

    # --- 1. PostgreSQL against SQLite, one instance --------------------------------------------

    async def stores(self) -> None:
        p = self.plan
        trace = traces.load(p.w1_trace, p.w1_limit)
        for round_no in range(1, p.rounds + 1):
            for store in (SQLITE, POSTGRES):
                async with self.run(f"w1-{store}", 1, store, redis=False) as run:
                    meters = run.meters()
                    figures = await w1_throughput.run(run.instances[0], trace, timeout=p.w1_timeout)
                    figures |= cpu_figures(meters)
                figures |= run.figures
                self.record("W1", store, round_no, figures)
        for round_no in range(1, p.rounds + 1):
            for store in (SQLITE, POSTGRES):
                for attempt in (1, 2):
                    async with self.run(f"w2-{store}", 1, store, redis=False) as run:
                        meters = run.meters()
                        figures = await w2_latency.run(
                            run.instances[0],
                            rooms=p.w2_rooms,
                            users=p.w2_users,
                            rate=p.w2_rate,
                            warmup=p.w2_warmup,
                            duration=p.w2_seconds,
                        )
                        figures |= cpu_figures(meters)
                    figures |= run.figures | {"attempt": attempt}
                    if not figures["loadgen_starved"]:
                        break
                    log("  load generator starved (other load on the machine?): again")
                self.record("W2", store, round_no, figures)

    # --- 2. one to three instances -------------------------------------------------------------

    async def cluster(self) -> None:
        p = self.plan
        trace = traces.load(p.w1_trace, p.w1_limit)
        shard = traces.load(p.w1_trace, p.shard_limit)
        for round_no in range(1, p.rounds + 1):
            for n in p.instances:
                label = f"n={n}"
                async with self.run(f"w1-one-{n}", n) as run:
                    meters = run.meters()
                    figures = await w1_spread(run.instances, trace, timeout=p.w1_timeout)
                    figures |= cpu_figures(meters)
                figures |= run.figures
                self.record("W1 one document", label, round_no, figures)

                async with self.run(f"w1-shard-{n}", n) as run:
                    figures = await self._sharded(run, shard)
                figures |= run.figures
                self.record("W1 sharded documents", label, round_no, figures)

                for attempt in (1, 2):
                    async with self.run(f"w2-{n}", n) as run:
                        figures = await w2_spread(
                            run,
                            rooms=p.w2_rooms,
                            users=p.w2_users,
                            rate=p.w2_rate,
                            warmup=p.w2_warmup,
                            duration=p.w2_seconds,
                        )
                    figures |= run.figures | {"attempt": attempt}
                    if not figures["loadgen_starved"]:
                        break
                    log("  load generator starved (other load on the machine?): again")
                self.record("W2 spread", label, round_no, figures)

    async def verbatim(self) -> None:
        """W1's own code with its clients dealt round-robin: both writers' turns are paced by
        reader 0 on instance 0, so the second writer's blocks reach its instance before what
        they build on (which comes through the store and Redis) and are held there. No real
        editor does that (it edits on what its own instance gave it): opt-in, to show what
        held updates cost."""
        p = self.plan
        trace = traces.load(p.w1_trace, p.shard_limit)
        for n in p.instances:
            async with self.run(f"w1-verbatim-{n}", n) as run:
                meters = run.meters()
                spread = cast(Server, Spread(run.instances))
                figures = await w1_throughput.run(spread, trace, timeout=p.w1_timeout)
                figures |= cpu_figures(meters)
                for key in ("server_cpu_share", "server_cpu_seconds", "updates_per_cpu_s"):
                    figures.pop(key, None)  # instance 0's alone: cpu_instances has all
            figures |= run.figures
            self.record("W1 verbatim, clients round-robin", f"n={n}", 1, figures)

    async def _sharded(self, run: Run, trace: traces.EncodedTrace) -> dict[str, Any]:
        """W1 on ``shard_docs`` documents at once, document d's clients all on instance d % n.
        Each W1 starts its clock once its clients are in (within milliseconds of the others);
        the aggregate counts every update over the slowest document's time."""
        docs = self.plan.shard_docs
        n = len(run.instances)
        meters = run.meters()
        results = await asyncio.gather(
            *(
                w1_throughput.run(
                    cast(Server, Spread([run.instances[d % n]], f"-d{d}")),
                    trace,
                    timeout=self.plan.w1_timeout,
                )
                for d in range(docs)
            )
        )
        shares = meters.shares()
        complete = all(r["complete"] for r in results)
        slowest = max(r["seconds"] for r in results)
        durable = [r.get("durable_seconds") or 0.0 for r in results]
        total = docs * len(trace.updates)
        return {
            "documents": docs,
            "updates": total,
            "complete": complete,
            "seconds": slowest,
            "updates_per_s": round(total / slowest, 1) if complete else None,
            "durable_updates_per_s": round(total / max(durable), 1) if all(durable) else None,
            "per_document_updates_per_s": [r["updates_per_s"] for r in results],
            **{f"cpu_{k}": v for k, v in shares.items()},
        }

    # --- 4. the kill loop ----------------------------------------------------------------------

    async def kill_loop(self) -> dict[str, Any]:
        p = self.plan
        async with self.run("kill", p.kill_instances) as run:
            # Not merged with run.figures: the restarted instances' counters began again.
            result = await kill_cycles(run.instances, p.kill_cycles)
        log(f"kill loop: {json.dumps(result)[:600]}")
        return result


# --- W1 on one document over the instances ---------------------------------------------------


async def w1_spread(
    instances: list[Instance],
    trace: traces.EncodedTrace,
    *,
    writers: int = 2,
    readers: int = 5,
    timeout: float = 180.0,
) -> dict[str, Any]:
    """W1 (bench/workloads/w1_throughput.py: its blocks, turns, readers and clock) with writer w
    on instance w % n and the readers dealt round-robin over all instances. A writer starts its
    block once a reader on its own instance holds the previous one: what a real editor there
    would have seen, so the other writer's block reaches it through the store and Redis."""
    count = len(instances)
    room = f"w1-spread-{trace.name}-{len(trace.updates)}"
    states = [w1.Reader() for _ in range(readers)]
    home = [r % count for r in range(readers)]
    pacers = [states[home.index(w % count)] for w in range(writers)]
    for state in pacers:
        state.track_clock = True
    reader_clients = await loadgen.open_many(
        [(instances[home[r]].url(room), states[r]) for r in range(readers)], w1._record
    )
    writer_clients = await loadgen.open_many(
        [(instances[w % count].url(room, ack=True), None) for w in range(writers)]
    )
    clients = reader_clients + writer_clients
    frames = [wire.client_frame(wire.update_message(u)) for u in trace.updates]
    block_clocks = w1._block_clocks(trace.updates)
    n = len(trace.updates)
    await asyncio.sleep(0.2)
    received0 = sum(c.received for c in clients)
    for state in states:
        state.recording = True
    t0 = time.perf_counter()
    for block, start in enumerate(range(0, n, w1.BLOCK)):
        writer = writer_clients[block % writers]
        if block:
            await w1._wait_clock(pacers[block % writers], block_clocks[block - 1], timeout)
        for chunk in range(start, min(start + w1.BLOCK, n), w1.CHUNK):
            batch = frames[chunk : min(chunk + w1.CHUNK, start + w1.BLOCK, n)]
            writer.write_frames(b"".join(batch), update_bearing=len(batch))
            await writer.drain()
            await asyncio.sleep(0)
    sent_at = time.perf_counter() - t0
    complete = await w1._wait_readers(states, trace.text, timeout)
    done = max((s.done_at or s.last) for s in states) - t0
    received = sum(c.received for c in clients) - received0
    acked = all([await w.wait_all_acked(timeout) for w in writer_clients])
    durable = max(w.acked_at for w in writer_clients) - t0
    loadgen.close_all(clients)
    await asyncio.sleep(0.3)
    return {
        "updates": n,
        "complete": complete,
        "seconds": round(done, 3),
        "updates_per_s": round(n / done, 1) if complete else None,
        "messages_out_per_s": round(received / done, 1) if complete else None,
        "writers_done_sending_s": round(sent_at, 3),
        "durable_seconds": round(durable, 3) if acked else None,
        "durable_updates_per_s": round(n / durable, 1) if acked else None,
        "readers_incomplete": sum(s.done_at is None for s in states),
        "reader_instances": home,
        "writer_instances": [w % count for w in range(writers)],
    }


# --- W2 with each room spread over the instances -------------------------------------------


@dataclass
class Latencies:
    same: list[float] = field(default_factory=list)
    cross: list[float] = field(default_factory=list)
    measuring_from: float = float("inf")
    deliveries: int = 0
    expected: float = float("inf")
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "samples": len(ordered),
    }


async def w2_spread(
    run: Run,
    *,
    rooms: int,
    users: int,
    rate: float,
    warmup: float,
    duration: float,
    seed: int = 7,
) -> dict[str, Any]:
    """W2 (bench/workloads/w2_latency.py: its users, schedule and arrival rule) with user j of
    room r on instance (r + j) % n, so every room spans the instances; each delivery's latency
    is filed by whether the receiver is on its sender's instance."""
    instances = run.instances
    n = len(instances)
    rng = random.Random(seed)
    edits = int((warmup + duration) * rate) + 1
    people = [
        User(i, i // users, CLIENT_ID_BASE + i, _encode_user(CLIENT_ID_BASE + i, edits))
        for i in range(rooms * users)
    ]
    for u in people:
        u.frames = [wire.client_frame(m) for m in u.messages]
    home = {u.client_id: (u.room + u.index % users) % n for u in people}
    by_client = {u.client_id: u for u in people}
    known = {message: (u.client_id, k + 1) for u in people for k, message in enumerate(u.messages)}
    stats = Latencies()

    def on_message(client: WSClient, message: bytes, now: float) -> None:
        if not wire.is_update_bearing(message):
            return
        me: User = client.tag  # type: ignore[assignment]
        hit = known.get(message)
        if hit is not None:
            author_id, end = hit
        else:  # re-encoded (merged, or relayed from another instance's copy)
            update = wire.sync_payload(message)
            found = _author(update)
            if found is None:
                return
            author_id, end = found, _end_clock(update)
        author = by_client.get(author_id)
        if author_id == me.client_id or author is None:
            return
        into = stats.same if home[author_id] == home[me.client_id] else stats.cross
        start = me.seen.get(author_id, 0)
        for k in range(start, min(end, len(author.sent_at))):
            stats.deliveries += 1
            if author.sent_at[k] >= stats.measuring_from:
                into.append(now - author.sent_at[k])
        if end > start:
            me.seen[author_id] = end
            if stats.deliveries >= stats.expected:
                stats.all_in.set()

    prefix = f"w2-{rng.randrange(1 << 30)}"
    clients = await loadgen.open_many(
        [(instances[home[u.client_id]].url(f"{prefix}-{u.room}", ack=True), u) for u in people],
        on_message,
        concurrency=32,
    )
    await asyncio.sleep(0.5)
    t0 = time.perf_counter() + 0.1
    period = 1.0 / rate
    schedule = [(t0 + rng.uniform(0, period), u.index, 0) for u in people]
    heapq.heapify(schedule)
    stats.measuring_from = t0 + warmup
    end_at = t0 + warmup + duration
    meters: Meters | None = None
    late = 0
    while schedule:
        due, index, k = schedule[0]
        now = time.perf_counter()
        if meters is None and now >= stats.measuring_from:
            meters = run.meters()
        if due > now:
            await asyncio.sleep(min(due - now, 0.005))
            continue
        heapq.heappop(schedule)
        if now - due > 0.05:
            late += 1
        people[index].sent_at.append(time.perf_counter())
        clients[index].write_frames(people[index].frames[k], update_bearing=1)
        if k + 1 < edits and due + period < end_at:
            heapq.heappush(schedule, (due + period, index, k + 1))
    shares = meters.shares() if meters else {}
    sent = sum(len(u.sent_at) for u in people)
    stats.expected = sent * (users - 1)
    if stats.deliveries < stats.expected:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.all_in.wait(), timeout=10)
    loadgen.close_all(clients)
    same, cross = _quantiles(stats.same), _quantiles(stats.cross)
    return {
        "instances": n,
        "rooms": rooms,
        "users_per_room": users,
        "edits_per_user_per_s": rate,
        "edits_sent": sent,
        "deliveries_missing": int(stats.expected - stats.deliveries),
        "sends_late_over_50ms": late,
        "loadgen_starved": late > 0.01 * max(1, sent),
        "all": _quantiles(stats.same + stats.cross),
        "same_instance": same,
        "cross_instance": cross,
        "same_p50_ms": same["p50_ms"],
        "same_p99_ms": same["p99_ms"],
        "cross_p50_ms": cross["p50_ms"],
        "cross_p99_ms": cross["p99_ms"],
        **{f"cpu_{k}": v for k, v in shares.items()},
    }


# --- 4. kill an instance, again and again --------------------------------------------------


def _numbers(text: str) -> list[int]:
    return [int(n) for n in EDIT.findall(text)]


async def kill_cycles(
    instances: list[Instance], cycles: int, seed: int = 1, rate: float = 300.0
) -> dict[str, Any]:
    """testkit/crashloop.py's cycle over a cluster, on one document: numbered edits at ``rate``
    to instance c % n until a random moment in 0.05-1.5 s, SIGKILL it, reconnect the writer
    through the next instance (a fresh client: what it had not got acked is gone with the old
    one, as crashloop drops it) while the killed one restarts on its port. A reader stays on
    every instance, so the document is loaded everywhere and a reconnect meets a warm copy."""
    rng = random.Random(seed)
    n = len(instances)
    room = f"kill-{rng.randrange(1 << 30)}"
    acked: set[int] = set()
    sent = 0
    rows: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        readers = [await YClient(http, i.ws, room, ack=False).connect() for i in instances]
        at = 0
        writer = await YClient(http, instances[at].ws, room).connect()
        for cycle in range(cycles):
            numbered: list[tuple[int, int]] = []  # (message number on this connection, edit)
            kill_at = time.monotonic() + rng.uniform(0.05, 1.5)
            while True:  # the kill comes right after an edit: one is in flight
                sent += 1
                numbered.append((await writer.append(f"[{sent}]"), sent))
                if time.monotonic() >= kill_at:
                    break
                await asyncio.sleep(1 / rate)
            killed_at = time.perf_counter()
            await asyncio.to_thread(instances[at].kill)
            # Every ack that arrived was sent after its commit: those up to the death count too.
            acked_messages = writer.acked
            writer.abandon()
            readers[at].abandon()
            cycle_acked = [e for m, e in numbered if m <= acked_messages]
            acked.update(cycle_acked)
            restarting = asyncio.ensure_future(asyncio.to_thread(instances[at].start))
            at = (at + 1) % n
            writer = await YClient(http, instances[at].ws, room).connect()
            synced_ms = (time.perf_counter() - killed_at) * 1000
            # Acked edits the surviving instance did not serve the reconnecting writer (it may
            # still be reading them from the store: the killed one committed, then died before
            # Redis had them).
            not_served = len(acked - set(_numbers(writer.content())))
            sent += 1
            await writer.wait_acked(await writer.append(f"[{sent}]"), timeout=30)
            acked.add(sent)
            first_ack_ms = (time.perf_counter() - killed_at) * 1000
            await restarting
            killed = (at - 1) % n
            readers[killed] = await YClient(http, instances[killed].ws, room, ack=False).connect()
            rows.append(
                {
                    "cycle": cycle,
                    "killed": killed,
                    "edits_sent": len(numbered),
                    "edits_acked": len(cycle_acked),
                    "acked_not_served_on_reconnect": not_served,
                    "reconnected_synced_ms": round(synced_ms, 1),
                    "first_ack_after_kill_ms": round(first_ack_ms, 1),
                }
            )
        await writer.close()
        for reader in readers:
            await reader.close()
        exports = await _converged_exports(http, instances, room)
        fresh = await YClient(http, instances[0].ws, room, ack=False).connect()
        fresh_numbers = _numbers(fresh.content())
        await fresh.close()
    final = _numbers(exports[0] or "")
    return {
        "instances": n,
        "cycles": cycles,
        "edits_sent": sent,
        "edits_acked": len(acked),
        "acked_edits_lost": len(acked - set(final)),
        "acked_edits_lost_fresh_client": len(acked - set(fresh_numbers)),
        "unacked_edits_that_survived": len(set(final) - acked),
        "duplicated_edits": len(final) - len(set(final)),
        "out_of_order_pairs": sum(a > b for a, b in itertools.pairwise(final)),
        # Each with the unacked edits around it: concurrent with the reconnected writer's.
        "out_of_order_examples": [
            (a, b, a in acked, b in acked) for a, b in itertools.pairwise(final) if a > b
        ][:10],
        "exports_identical_on_every_instance": len(set(exports)) == 1,
        "acked_not_served_on_reconnect": sum(r["acked_not_served_on_reconnect"] for r in rows),
        "reconnected_synced_ms_p50": statistics.median(r["reconnected_synced_ms"] for r in rows),
        "first_ack_after_kill_ms_p50": statistics.median(
            r["first_ack_after_kill_ms"] for r in rows
        ),
        "first_ack_after_kill_ms_max": max(r["first_ack_after_kill_ms"] for r in rows),
        "per_cycle": rows,
    }


async def _converged_exports(
    http: aiohttp.ClientSession, instances: list[Instance], room: str, timeout: float = 15.0
) -> list[str | None]:
    """Every instance's text export, once they agree (or ``timeout`` has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        exports: list[str | None] = []
        for i in instances:
            async with http.get(f"{i.http}/api/docs/{room}/export?format=txt") as resp:
                exports.append(await resp.text() if resp.status == 200 else None)
        if len(set(exports)) == 1 or time.monotonic() > deadline:
            return exports
        await asyncio.sleep(0.5)


# --- report --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    if isinstance(value, list):  # rounds that report no median ("> x" past a last bucket)
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary_text(result: dict[str, Any]) -> str:
    s = result["summary"]
    parts = []
    w1, w2 = s.get("W1", {}), s.get("W2", {})
    if w1 or w2:

        def pair(title: str, group: dict[str, Any], key: str, digits: int = 0) -> list[str]:
            return [title, *(_fmt(group.get(k, {}).get(key), digits) for k in (SQLITE, POSTGRES))]

        ratio = result["ratios"]
        rows = [
            [*pair("W1 updates/s (readers hold the text)", w1, "updates_per_s"),
             _fmt(ratio["w1"], 2)],
            [*pair("W1 durable updates/s (all acked)", w1, "durable_updates_per_s"),
             _fmt(ratio["w1_durable"], 2)],
            [*pair("W1 updates per commit", w1, "updates_per_commit", 1), ""],
            [*pair("W2 p50 (ms)", w2, "p50_ms", 2), ""],
            [*pair("W2 p99 (ms)", w2, "p99_ms", 2), ""],
            [*pair("W2 updates per commit", w2, "updates_per_commit", 1), ""],
            [*pair("W2 server CPU (share of a core)", w2, "server_cpu_share", 2), ""],
        ]  # fmt: skip
        parts.append(
            "One instance, PostgreSQL against SQLite (median of "
            f"{result['plan']['rounds']} round(s)):\n\n"
            + _table(["", "SQLite", "PostgreSQL", "PG / SQLite"], rows)
        )
    one, shard, spread = (
        s.get(w, {}) for w in ("W1 one document", "W1 sharded documents", "W2 spread")
    )
    if one or spread:
        labels = [f"n={n}" for n in result["plan"]["instances"]]
        docs = result["plan"]["shard_docs"]

        def line(title: str, group: dict[str, Any], key: str, digits: int = 0) -> list[str]:
            return [title, *(_fmt(group.get(label, {}).get(key), digits) for label in labels)]

        def cpu(title: str, group: dict[str, Any]) -> list[str]:
            cells = []
            for label in labels:
                c = group.get(label, {})
                keys = ("cpu_instances", "cpu_postgresql", "cpu_redis", "cpu_loadgen")
                cells.append(" / ".join(f"{c.get(k) or 0:.0%}" for k in keys) if c else "–")
            return [title, *cells]

        rows = [
            line("W1 one document: updates/s", one, "updates_per_s"),
            line("W1 one document: durable updates/s", one, "durable_updates_per_s"),
            line("W1 one document: updates per commit", one, "updates_per_commit", 1),
            cpu("W1 one document: CPU inst / pg / redis / loadgen", one),
            line(f"W1 {docs} sharded documents: updates/s", shard, "updates_per_s"),
            line("W1 sharded: durable updates/s", shard, "durable_updates_per_s"),
            cpu("W1 sharded: CPU inst / pg / redis / loadgen", shard),
            line("W2 same-instance p50 (ms)", spread, "same_p50_ms", 2),
            line("W2 same-instance p99 (ms)", spread, "same_p99_ms", 2),
            line("W2 cross-instance p50 (ms)", spread, "cross_p50_ms", 2),
            line("W2 cross-instance p99 (ms)", spread, "cross_p99_ms", 2),
            line("W2 server: Redis lag p50 / p99 ≤ (ms)", spread, "cluster_lag_p50_bucket_ms", 1),
            line("", spread, "cluster_lag_p99_bucket_ms", 1),
            line("W2 server: commit p50 / p99 ≤ (ms)", spread, "commit_p50_bucket_ms", 1),
            line("", spread, "commit_p99_bucket_ms", 1),
            line("W2 server: ack p50 / p99 ≤ (ms)", spread, "ack_p50_bucket_ms", 1),
            line("", spread, "ack_p99_bucket_ms", 1),
            line("W2 updates per commit", spread, "updates_per_commit", 1),
            line("W2 updates per PG xact_commit", spread, "updates_per_pg_xact_commit", 2),
            cpu("W2: CPU inst / pg / redis / loadgen", spread),
        ]  # fmt: skip
        parts.append(
            "PostgreSQL + Redis, 1-3 instances (CPU as shares of one core; the machine has "
            f"{os.cpu_count()}):\n\n" + _table(["", *labels], rows)
        )
    verbatim = s.get("W1 verbatim, clients round-robin", {})
    if verbatim:
        rows = [
            [label, _fmt(f.get("updates_per_s")), _fmt(f.get("seconds"), 1),
             _fmt(f.get("cpu_instances"), 2)]
            for label, f in verbatim.items()
        ]  # fmt: skip
        parts.append(
            "W1 verbatim, clients round-robin (writers paced by instance 0; opt-in):\n\n"
            + _table(["", "updates/s", "seconds", "instances CPU"], rows)
        )
    kill = result.get("kill_loop")
    if kill:
        parts.append(
            f"Kill loop ({kill['instances']} instances, {kill['cycles']} SIGKILLs): "
            f"{kill['edits_sent']:,} edits sent, {kill['edits_acked']:,} acked, "
            f"{kill['acked_edits_lost']} acked edits lost (fresh client: "
            f"{kill['acked_edits_lost_fresh_client']}), {kill['unacked_edits_that_survived']} "
            f"unacked edits survived, {kill['duplicated_edits']} duplicated, "
            f"{kill['out_of_order_pairs']} out-of-order pairs, exports identical on every "
            f"instance: {kill['exports_identical_on_every_instance']}; acked edits the next "
            f"instance had not yet served on reconnect: {kill['acked_not_served_on_reconnect']}; "
            f"kill → first ack on the next instance p50 {kill['first_ack_after_kill_ms_p50']:.0f} "
            f"ms, max {kill['first_ack_after_kill_ms_max']:.0f} ms."
        )
    targets = result["targets"]
    if targets:
        parts.append(
            "Targets:\n\n"
            + "\n".join(
                f"- {t['target']}: {t['value']} → {'met' if t['met'] else 'MISSED'}"
                for t in targets
            )
        )
    return "\n\n".join(parts)


def ratios(summary: report.Summary) -> dict[str, float | None]:
    w1 = summary.get("W1", {})

    def ratio(key: str) -> float | None:
        pg, lite = w1.get(POSTGRES, {}).get(key), w1.get(SQLITE, {}).get(key)
        return round(pg / lite, 3) if pg and lite else None

    return {"w1": ratio("updates_per_s"), "w1_durable": ratio("durable_updates_per_s")}


def targets(
    summary: report.Summary, ratio: dict[str, float | None], kill: dict[str, Any]
) -> list[dict[str, Any]]:
    out = []
    if ratio.get("w1") is not None:
        out.append({"target": "W1 PostgreSQL / SQLite ≥ 0.5", "value": ratio["w1"],
                    "met": ratio["w1"] >= 0.5})  # type: ignore[operator]  # fmt: skip
    for label, figures in summary.get("W2 spread", {}).items():
        same, cross = figures.get("same_p99_ms"), figures.get("cross_p99_ms")
        if same is not None and cross is not None:
            out.append(
                {
                    "target": f"W2 {label}: cross-instance p99 ≤ same-instance p99 + 10 ms",
                    "value": f"{cross} ms vs {same} + 10 ms",
                    "met": cross <= same + 10,
                }
            )
    if kill:
        out.append({"target": "kill loop: acked edits lost = 0",
                    "value": kill["acked_edits_lost"],
                    "met": kill["acked_edits_lost"] == 0
                    and kill["acked_edits_lost_fresh_client"] == 0})  # fmt: skip
    return out


# --- main ----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else Plan()
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    if args.cycles:
        plan = Plan(**{**asdict(plan), "kill_cycles": args.cycles})
    only = set(args.only.split(",")) if args.only else {"stores", "cluster", "kill"}
    nofile = loadgen.raise_nofile_limit(65536)
    started = time.time()
    log("machine check (1 s sample of other processes' CPU use)")
    background_before = procstat.background_load()
    traces.load(plan.w1_trace, plan.w1_limit)
    traces.load(plan.w1_trace, plan.shard_limit)
    log("starting PostgreSQL and redis-server")
    services = Services()
    errors: dict[str, str] = {}
    kill: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-bench-cluster-") as tmp:
            bench = Bench(plan, services, Path(tmp))
            for name in ("stores", "cluster", "verbatim", "kill"):
                if name not in only:
                    continue
                try:  # one part's failure is reported, the others still run
                    if name == "kill":
                        kill = await bench.kill_loop()
                    else:
                        await getattr(bench, name)()
                except Exception as exc:
                    log(f"{name} failed: {exc!r}")
                    errors[name] = repr(exc)
                    servers.kill_all()
    finally:
        services.close()
    summary = report.summarise(bench.runs)
    ratio = ratios(summary)
    result: dict[str, Any] = {
        "started_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "plan": asdict(plan),
        "tandem_extra_args": list(servers.tandem_limit_args()),
        "machine": procstat.machine_info(servers.REPO, servers.PEERS_PYTHON, servers.NODE_DIR)
        | {"open_files_limit": nofile},
        "background_load_before": background_before,
        "background_load_after": procstat.background_load(),
        "runs": bench.runs,
        "summary": summary,
        "ratios": ratio,
        "kill_loop": kill,
        "targets": targets(summary, ratio, kill),
        "errors": errors,
    }
    result["text"] = summary_text(result)
    return result


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (~3 min)")
    parser.add_argument("--rounds", type=int, default=0, help="override the number of rounds")
    parser.add_argument("--cycles", type=int, default=0, help="override the kill-loop cycles")
    parser.add_argument(
        "--only",
        default="",
        help="comma list of stores,cluster,kill (default) and verbatim (opt-in, slow)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        result = asyncio.run(main_async(args))
    finally:
        servers.kill_all()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cluster-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=1))
    print(result["text"])
    if result["errors"]:
        print("\nFailed parts:\n" + "\n".join(f"- {k}: {v}" for k, v in result["errors"].items()))
    log(f"wrote {path} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
