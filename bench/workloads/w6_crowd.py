"""W6 crowd: a busy server as it lives — many rooms, a few people in each, typing at human speed.

R rooms × U users, each user typing E edits per second (one character at the end of its own
text, as in W2), from one load generator with raw sockets and updates encoded before the clock
starts. Every frame a user receives is matched to its send time (recognised by the author's
clock, so a CRDT server that re-encodes updates is measured as fairly as a relay); echoes to the
sender are ignored. With ``ack`` (Tandem's ``?ack=1``, as the editor connects) the time from a
send to its "saved" ack is measured too.

Besides latency: server CPU per edit (from /proc), and server RSS per idle connection once every
user has joined and the sockets have sat idle for a moment (W4's figure, at this crowd's scale).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import loadgen, wire
from ..loadgen import WSClient
from ..servers import TANDEMS, Server
from ..typing_schedule import start_times, type_at_rate
from .w2_latency import CLIENT_ID_BASE, _author, _encode_user, _end_clock

# Seconds the sockets sit idle after the last join before the RSS is read.
IDLE_SETTLE = 2.0


@dataclass
class User:
    index: int
    room: int
    client_id: int
    frames: list[bytes]  # one client frame per edit
    sent_at: list[float] = field(default_factory=list)
    # What this user has received from each author: the next expected clock.
    seen: dict[int, int] = field(default_factory=dict)
    # Update-bearing messages sent before typing (the handshake's step 2): acks count them.
    ack_base: int = 0
    acked: int = 0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)
    measuring_from: float = float("inf")
    deliveries: int = 0
    expected: float = float("inf")
    acks: int = 0
    acks_expected: float = float("inf")
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.deliveries >= self.expected and self.acks >= self.acks_expected:
            self.all_in.set()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float], q: float | None) -> float | None:
    if not values:
        return None
    value = statistics.median(values) if q is None else _percentile(values, q)
    return round(value * 1000, 2)


async def run(
    server: Server,
    *,
    rooms: int = 300,
    users: int = 5,
    rate: float = 2.0,
    warmup: float = 3.0,
    duration: float = 10.0,
    ack: bool = False,
    seed: int = 11,
    on_measuring: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``on_measuring`` is called once the measured window starts (a profiler attaches)."""
    rng = random.Random(seed)
    acking = ack and server.kind in TANDEMS
    edits = int((warmup + duration) * rate) + 2
    people = []
    known: dict[bytes, tuple[int, int]] = {}
    for i in range(rooms * users):
        messages = _encode_user(CLIENT_ID_BASE + i, edits)
        people.append(
            User(i, i // users, CLIENT_ID_BASE + i, [wire.client_frame(m) for m in messages])
        )
        # The message as its author sent it -> (author, clock after it): what a relay delivers.
        for k, message in enumerate(messages):
            known[message] = (CLIENT_ID_BASE + i, k + 1)
    by_client = {u.client_id: u for u in people}
    tally = Tally()

    def on_message(client: WSClient, message: bytes, now: float) -> None:
        if not wire.is_update_bearing(message):
            return
        me: User = client.tag  # type: ignore[assignment]
        hit = known.get(message)
        if hit is not None:
            author_id, end = hit
        else:  # re-encoded by a CRDT server: read the author and clocks from the update
            update = wire.sync_payload(message)
            found = _author(update)
            if found is None:
                return
            author_id, end = found, _end_clock(update)
        if author_id == me.client_id:
            return
        author = by_client.get(author_id)
        if author is None:
            return
        start = me.seen.get(author_id, 0)
        if end <= start:
            return
        me.seen[author_id] = end
        sent_at = author.sent_at
        measuring_from = tally.measuring_from
        for k in range(start, min(end, len(sent_at))):
            tally.deliveries += 1
            if sent_at[k] >= measuring_from:
                tally.latencies.append(now - sent_at[k])
        tally.check()

    def on_ack(client: WSClient, count: int, now: float) -> None:
        me: User = client.tag  # type: ignore[assignment]
        done = count - me.ack_base
        sent_at = me.sent_at
        for k in range(me.acked, min(done, len(sent_at))):
            tally.acks += 1
            if sent_at[k] >= tally.measuring_from:
                tally.ack_latencies.append(now - sent_at[k])
        me.acked = max(me.acked, done)
        tally.check()

    loadgen.raise_nofile_limit(len(people) * 2 + 1024)
    await asyncio.sleep(0.5)
    rss0 = server.rss()
    prefix = f"w6-{rng.randrange(1 << 30)}"
    joined = time.perf_counter()
    clients = await loadgen.open_many(
        [(server.url(f"{prefix}-{u.room}", ack=acking), u) for u in people],
        on_message,
        concurrency=64,
    )
    join_seconds = time.perf_counter() - joined
    for client, user in zip(clients, people, strict=True):
        user.ack_base = client.update_bearing_sent
        client.on_ack = on_ack
    await asyncio.sleep(IDLE_SETTLE)
    rss_idle = server.rss()
    start = start_times(warmup)
    tally.measuring_from = start[1]
    typed = await type_at_rate(
        server.pid,
        people,
        clients,
        rate=rate,
        edits=edits,
        start=start,
        duration=duration,
        rng=rng,
        on_measuring=on_measuring,
    )
    measured = typed.measured_seconds
    cpu_share, cpu_used = typed.server_cpu_share, typed.server_cpu_seconds
    late, gen_share = typed.late, typed.loadgen_cpu_share
    measured_edits = sum(1 for u in people for t in u.sent_at if t >= tally.measuring_from)
    sent = sum(len(u.sent_at) for u in people)
    tally.expected = sent * (users - 1)
    tally.acks_expected = sent if acking else 0
    tally.check()
    with contextlib.suppress(TimeoutError):  # let the last edits (and acks) arrive
        await asyncio.wait_for(tally.all_in.wait(), timeout=15)
    rss_after = server.rss()
    alive = sum(not c.closed.is_set() for c in clients)
    loadgen.close_all(clients)
    await asyncio.sleep(0.5)
    lat, acks = tally.latencies, tally.ack_latencies
    connections = len(people)
    figures: dict[str, Any] = {
        "rooms": rooms,
        "users_per_room": users,
        "edits_per_user_per_s": rate,
        "connections": connections,
        "acks": acking,
        "edits_per_s": round(rooms * users * rate),
        "measured_seconds": round(measured, 2),
        "edits_sent": sent,
        "deliveries_expected": tally.expected,
        "deliveries_missing": tally.expected - tally.deliveries,
        "all_delivered": tally.deliveries >= tally.expected,
        "connections_dropped": connections - alive,
        "sends_late_over_50ms": late,
        # More than 1% of sends late: this machine starved the load generator; not a figure.
        "loadgen_starved": late > 0.01 * max(1, sent),
        "latency_samples": len(lat),
        "p50_ms": _ms(lat, None),
        "p90_ms": _ms(lat, 0.9),
        "p99_ms": _ms(lat, 0.99),
        "max_ms": _ms(lat, 1.0),
        "server_cpu_share": round(cpu_share, 3),
        "server_cpu_ms_per_edit": round(1000 * cpu_used / measured_edits, 4)
        if measured_edits
        else None,
        "loadgen_cpu_share": round(gen_share, 2),
        "join_seconds": round(join_seconds, 2),
        "rss_before_mib": round(rss0 / 2**20, 1),
        "rss_idle_mib": round(rss_idle / 2**20, 1),
        "rss_after_typing_mib": round(rss_after / 2**20, 1),
        "kib_per_idle_connection": round((rss_idle - rss0) / connections / 1024, 2),
    }
    if acking:
        figures |= {
            "acks_missing": tally.acks_expected - tally.acks,
            "ack_p50_ms": _ms(acks, None),
            "ack_p99_ms": _ms(acks, 0.99),
        }
    return figures
