"""W1 throughput: a real trace split across 2 writers, 5 readers in the room, full speed.

The trace's updates (one author, in order) are cut into blocks of ``BLOCK`` updates; the two
writers take turns, each sending its block as fast as the socket takes it. A writer starts its
block once the first reader holds the previous one: a real editor only sends edits made on top
of what it has received, so no server ever sees an update before its causal predecessors
(sending the halves blindly in parallel makes every CRDT server park thousands of updates as
"pending", which no real client causes). The wait costs one round trip per block.

Readers record every update-bearing message and when it arrived; a reader is done once what it
received produces the trace's final text. The clock stops at the arrival of the last message
the slowest reader needed; the text check itself runs off the clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from .. import loadgen, procstat, wire
from ..loadgen import WSClient
from ..servers import PYCRDT, TANDEMS, Server
from ..traces import EncodedTrace, text_of

BLOCK = 1000  # updates a writer sends in its turn
CHUNK = 250  # updates written per turn of the event loop


@dataclass
class Reader:
    frames: list[bytes] = field(default_factory=list)
    last: float = 0.0
    recording: bool = False
    checked_at_count: int = -1
    done_at: float | None = None
    # The first reader follows the author's clock, for the writers' turn-taking.
    track_clock: bool = False
    clock: int = 0
    clock_changed: asyncio.Event = field(default_factory=asyncio.Event)


def _record(client: WSClient, message: bytes, now: float) -> None:
    reader = client.tag
    if isinstance(reader, Reader) and reader.recording and wire.is_update_bearing(message):
        reader.frames.append(message)
        reader.last = now
        if reader.track_clock:
            clock = wire.first_clock(wire.sync_payload(message))
            if clock is not None and clock > reader.clock:
                reader.clock = clock
                reader.clock_changed.set()


def _block_clocks(updates: list[bytes]) -> list[int]:
    """For each block, the first clock of its last update that inserts something."""
    clocks = []
    clock = 0
    for start in range(0, len(updates), BLOCK):
        for update in updates[start : start + BLOCK]:
            first = wire.first_clock(update)
            if first is not None:
                clock = first
        clocks.append(clock)
    return clocks


async def _wait_clock(reader: Reader, clock: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while reader.clock < clock:
            reader.clock_changed.clear()
            await reader.clock_changed.wait()


def _holds_final_text(frames: list[bytes], final: str) -> bool:
    return text_of([wire.sync_payload(f) for f in frames]) == final


async def _wait_readers(
    readers: list[Reader], final: str, timeout: float, quiet: float = 0.3
) -> bool:
    """Wait until every reader holds the final text; False on timeout."""
    deadline = time.perf_counter() + timeout
    verified: list[list[bytes]] = []
    while True:
        now = time.perf_counter()
        pending = [r for r in readers if r.done_at is None]
        if not pending:
            return True
        if now > deadline:
            return False
        for r in pending:
            count = len(r.frames)
            if count == 0 or count == r.checked_at_count or now - r.last < quiet:
                continue
            r.checked_at_count = count
            frames = r.frames[:count]
            last = r.last
            # Readers of a relay get identical streams: compare before replaying.
            if any(frames == v for v in verified) or _holds_final_text(frames, final):
                verified.append(frames)
                r.done_at = last
        await asyncio.sleep(0.05)


def _stored_rows(server: Server) -> int | None:
    if server.kind != PYCRDT or not server.db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM yupdates").fetchone()[0])
    except sqlite3.Error:
        return None


async def run(
    server: Server,
    trace: EncodedTrace,
    *,
    writers: int = 2,
    readers: int = 5,
    timeout: float = 240,
) -> dict[str, Any]:
    room = f"w1-{trace.name}-{len(trace.updates)}"
    states = [Reader() for _ in range(readers)]
    states[0].track_clock = True
    reader_clients = await loadgen.open_many(
        [(server.url(room), state) for state in states], _record
    )
    writer_clients = await loadgen.open_many(
        [(server.url(room, ack=True), None) for _ in range(writers)]
    )
    clients = reader_clients + writer_clients
    # Encoded once, before the clock starts.
    frames = [wire.client_frame(wire.update_message(u)) for u in trace.updates]
    block_clocks = _block_clocks(trace.updates)
    n = len(trace.updates)
    await asyncio.sleep(0.2)
    received0 = sum(c.received for c in clients)
    for state in states:
        state.recording = True
    server_cpu = procstat.CpuMeter(server.pid)
    gen_cpu0 = loadgen.cpu_seconds()
    t0 = time.perf_counter()
    for block, start in enumerate(range(0, n, BLOCK)):
        writer = writer_clients[block % writers]
        if block:
            await _wait_clock(states[0], block_clocks[block - 1], timeout)
        for chunk in range(start, min(start + BLOCK, n), CHUNK):
            batch = frames[chunk : min(chunk + CHUNK, start + BLOCK, n)]
            writer.write_frames(b"".join(batch), update_bearing=len(batch))
            await writer.drain()
            await asyncio.sleep(0)
    sent_at = time.perf_counter() - t0
    complete = await _wait_readers(states, trace.text, timeout)
    done = max((s.done_at or s.last) for s in states) - t0
    received = sum(c.received for c in clients) - received0
    server_cpu_share = server_cpu.share()
    server_cpu_seconds = server_cpu.seconds()
    gen_cpu = loadgen.cpu_seconds() - gen_cpu0
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "updates": n,
        "complete": complete,
        "seconds": round(done, 3),
        "updates_per_s": round(n / done, 1) if complete else None,
        "messages_out_per_s": round(received / done, 1) if complete else None,
        "messages_out": received,
        "writers_done_sending_s": round(sent_at, 3),
        "server_cpu_share": round(server_cpu_share, 2),
        "server_cpu_seconds": round(server_cpu_seconds, 2),
        # Robust to a busy machine: what one dedicated core would sustain, at this efficiency.
        "updates_per_cpu_s": round(n / server_cpu_seconds, 1) if server_cpu_seconds else None,
        "loadgen_cpu_share": round(gen_cpu / wall, 2),
        "loadgen_us_per_message": round(gen_cpu / max(1, received + n) * 1e6, 2),
        "readers_incomplete": sum(s.done_at is None for s in states),
    }
    if server.kind in TANDEMS:
        # Durable: every update acked (after its commit). Step 2 of the handshake counts too.
        acked = [await w.wait_all_acked(timeout) for w in writer_clients]
        acked_all = all(acked)
        durable = max(w.acked_at for w in writer_clients) - t0
        result["durable_seconds"] = round(durable, 3) if acked_all else None
        result["durable_updates_per_s"] = round(n / durable, 1) if acked_all else None
    if server.kind == PYCRDT:
        result["stored_rows_when_readers_done"] = _stored_rows(server)
    loadgen.close_all(clients)
    await asyncio.sleep(0.5)
    if server.kind == PYCRDT:
        result["stored_rows_after_clients_left"] = _stored_rows(server)
    return result
