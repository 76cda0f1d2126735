"""W2 latency at human speed: R rooms × U users, each typing E edits per second.

Every user has its own document (its own client id) and types one character per edit at the
end of what it has typed, so its updates depend only on its own earlier ones: the users are
concurrent editors of one text, as in a real room where everybody types at once. The updates
are encoded before the clock starts. An edit's latency is the time from writing it to the
socket to its arrival at each of the other users of the room (echoes back to the sender are
ignored). Arrival is recognised by the author's clock in the update, so a server that
re-encodes or merges updates is measured as fairly as a relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text

from .. import loadgen, wire
from ..loadgen import WSClient
from ..servers import Server
from ..typing_schedule import start_times, type_at_rate

CLIENT_ID_BASE = 1_000_000


@dataclass
class User:
    index: int
    room: int
    client_id: int
    messages: list[bytes]  # one sync update per edit
    frames: list[bytes] = field(default_factory=list)  # the same, as client frames
    sent_at: list[float] = field(default_factory=list)
    # What this user has received from each author: the next expected clock.
    seen: dict[int, int] = field(default_factory=dict)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    measuring_from: float = float("inf")
    deliveries: int = 0
    expected: float = float("inf")
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


def _encode_user(client_id: int, edits: int) -> list[bytes]:
    doc = Doc(client_id=client_id)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for k in range(edits):
        text += chr(ord("a") + k % 26)
    doc.unobserve(sub)
    return [wire.update_message(u) for u in updates]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    server: Server,
    *,
    rooms: int = 100,
    users: int = 5,
    rate: float = 5.0,
    warmup: float = 3.0,
    duration: float = 15.0,
    seed: int = 7,
) -> dict[str, Any]:
    rng = random.Random(seed)
    edits = int((warmup + duration) * rate) + 1
    people = [
        User(i, i // users, CLIENT_ID_BASE + i, _encode_user(CLIENT_ID_BASE + i, edits))
        for i in range(rooms * users)
    ]
    for u in people:
        u.frames = [wire.client_frame(m) for m in u.messages]
    by_client = {u.client_id: u for u in people}
    # The message as its author sent it -> (author, clock after it): what a relay delivers.
    known = {message: (u.client_id, k + 1) for u in people for k, message in enumerate(u.messages)}
    stats = Stats()

    def on_message(client: WSClient, message: bytes, now: float) -> None:
        if not wire.is_update_bearing(message):
            return
        me: User = client.tag  # type: ignore[assignment]
        hit = known.get(message)
        if hit is not None:
            author_id, end = hit
        else:  # re-encoded by a CRDT server: read the author and clocks from the update
            update = wire.sync_payload(message)
            author_id = _author(update)
            if author_id is None:
                return
            end = _end_clock(update)
        if author_id == me.client_id:
            return
        author = by_client.get(author_id)
        if author is None:
            return
        # Everything of that author up to the end of this update has now arrived.
        start = me.seen.get(author_id, 0)
        for k in range(start, end):
            if k < len(author.sent_at):
                sent = author.sent_at[k]
                stats.deliveries += 1
                if sent >= stats.measuring_from:
                    stats.latencies.append(now - sent)
        if end > start:
            me.seen[author_id] = end
            if stats.deliveries >= stats.expected:
                stats.all_in.set()

    prefix = f"w2-{rng.randrange(1 << 30)}"
    clients = await loadgen.open_many(
        [(server.url(f"{prefix}-{u.room}", ack=True), u) for u in people],
        on_message,
        concurrency=32,
    )
    await asyncio.sleep(0.5)
    start = start_times(warmup)
    stats.measuring_from = start[1]
    typed = await type_at_rate(
        server.pid, people, clients, rate=rate, edits=edits, start=start, duration=duration, rng=rng
    )
    measured = typed.measured_seconds
    cpu_share, cpu_used = typed.server_cpu_share, typed.server_cpu_seconds
    late, gen_share = typed.late, typed.loadgen_cpu_share
    measured_edits = sum(1 for u in people for t in u.sent_at if t >= stats.measuring_from)
    sent = sum(len(u.sent_at) for u in people)
    expected = sent * (users - 1)
    stats.expected = expected
    if stats.deliveries < expected:  # let the last edits arrive
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.all_in.wait(), timeout=10)
    loadgen.close_all(clients)
    lat = stats.latencies
    return {
        "rooms": rooms,
        "users_per_room": users,
        "edits_per_user_per_s": rate,
        "measured_seconds": round(measured, 2),
        "edits_sent": sent,
        "deliveries_expected": expected,
        "deliveries_missing": expected - stats.deliveries,
        "sends_late_over_50ms": late,
        # More than 1% of sends late: this machine starved the load generator; not a figure.
        "loadgen_starved": late > 0.01 * max(1, sent),
        "latency_samples": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
        "p99_ms": round(_percentile(lat, 0.99) * 1000, 2) if lat else None,
        "max_ms": round(max(lat) * 1000, 2) if lat else None,
        "server_cpu_share": round(cpu_share, 2),
        "server_cpu_ms_per_edit": round(1000 * cpu_used / measured_edits, 3)
        if measured_edits
        else None,
        "loadgen_cpu_share": round(gen_share, 2),
    }


def _author(update: bytes) -> int | None:
    clients, pos = wire.read_var_uint(update, 0)
    if clients == 0:
        return None
    _structs, pos = wire.read_var_uint(update, pos)
    return wire.read_var_uint(update, pos)[0]


def _end_clock(update: bytes) -> int:
    """The author's clock after this update: each edit is one character, one clock tick.

    A relay forwards the author's bytes; a CRDT server may merge consecutive edits into one
    update. Either way the update starts at its first clock and, since these users only ever
    append single characters, its length in clock ticks is the number of edits it carries.
    """
    first = wire.first_clock(update) or 0
    return first + max(1, _struct_length(update))


def _struct_length(update: bytes) -> int:
    """Clock ticks of the first client's structs in a V1 update of appended text."""
    clients, pos = wire.read_var_uint(update, 0)
    if clients == 0:
        return 0
    structs, pos = wire.read_var_uint(update, pos)
    _client, pos = wire.read_var_uint(update, pos)
    _clock, pos = wire.read_var_uint(update, pos)
    total = 0
    for _ in range(structs):
        info = update[pos]
        pos += 1
        if info & 0x80:  # origin (left)
            pos = _skip_id(update, pos)
        if info & 0x40:  # right origin
            pos = _skip_id(update, pos)
        if not info & 0xC0:  # parent: named root type (1) or an ID
            is_key, pos = wire.read_var_uint(update, pos)
            if is_key == 1:
                length, pos = wire.read_var_uint(update, pos)
                pos += length
            else:
                pos = _skip_id(update, pos)
            if info & 0x20:  # parent sub
                length, pos = wire.read_var_uint(update, pos)
                pos += length
        kind = info & 0x1F
        if kind == 4:  # ContentString: varString; its clock length is in UTF-16 units
            length, pos = wire.read_var_uint(update, pos)
            total += len(update[pos : pos + length].decode("utf-8").encode("utf-16-le")) // 2
            pos += length
        else:
            return max(total, 1)
    return total


def _skip_id(update: bytes, pos: int) -> int:
    _client, pos = wire.read_var_uint(update, pos)
    _clock, pos = wire.read_var_uint(update, pos)
    return pos
