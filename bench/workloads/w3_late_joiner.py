"""W3 late joiner: how long a new client waits for ``synced`` on a big document.

The room holds the automerge-paper document (≈260k edits). A joiner opens a socket, sends
sync step 1 with an empty state vector and is synced when the server's step 2 has arrived
(applying it is the client's work, the same for every server, and is left out). Warm: the
room is loaded (a seeding client stays connected). Cold: the server was restarted and loads
the room from its database for this joiner. Every joiner's step 2 alone must produce the whole
text ("the whole doc in one sync"), which is checked off the clock.

``seeded`` puts the document in with one update (what an offline editor's sync step 2 sends),
on every server. :mod:`bench.workloads.w5_storage` builds Tandem's database the long way, one
update per edit, and measures cold loads of that log here too.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from typing import Any

from .. import wire
from ..loadgen import WSClient
from ..servers import PYCRDT, STORES, TANDEMS, Server
from ..traces import EncodedTrace, text_of

ROOM = "w3-paper"


async def cold_join(server: Server, room: str, final: str, timeout: float) -> dict[str, Any]:
    """After a restart: first a join to an empty room (the new process's first request pays
    for its own warm-up: lazy imports, the database threads), then the measured cold join."""
    first = await join_once(server, f"{room}-warmup", "", timeout)
    result = await join_once(server, room, final, timeout)
    return result | {"first_request_seconds": first["seconds"]}


async def join_once(server: Server, room: str, final: str, timeout: float) -> dict[str, Any]:
    """One joiner: seconds to ``synced`` (None on timeout) and whether step 2 was the doc."""
    client = WSClient(server.url(room))
    started = time.perf_counter()
    try:
        await client.join(timeout=timeout)
    except (TimeoutError, ConnectionError, OSError):
        client.abort()
        return {"seconds": None, "whole_doc_in_one_sync": None, "step2_bytes": None}
    seconds = client.synced_at - started
    payload = client.sync_payload
    client.close()
    return {
        "seconds": round(seconds, 4),
        "whole_doc_in_one_sync": text_of([payload]) == final,
        "step2_bytes": len(payload),
    }


def _summary(samples: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    times = [s["seconds"] for s in samples if s["seconds"] is not None]
    firsts = [s["first_request_seconds"] for s in samples if s.get("first_request_seconds")]
    extra = (
        {"first_request_after_start_ms": round(statistics.median(firsts) * 1000, 1)}
        if firsts
        else {}
    )
    return extra | {
        f"{prefix}_ms": round(statistics.median(times) * 1000, 1) if times else None,
        f"{prefix}_samples_ms": [
            None if s["seconds"] is None else round(s["seconds"] * 1000, 1) for s in samples
        ],
        f"{prefix}_whole_doc_in_one_sync": all(s["whole_doc_in_one_sync"] for s in samples)
        if samples
        else None,
    }


def _pycrdt_rows(server: Server) -> int:
    try:
        with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM yupdates").fetchone()[0])
    except sqlite3.Error:
        return 0


async def seed(server: Server, room: str, state: bytes, timeout: float = 120) -> WSClient:
    """Connect a client that brings the whole document in one sync step 2; wait until stored."""
    seeder = await WSClient(server.url(room, ack=True)).join(timeout=timeout)
    seeder.send(wire.step2(state))
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.kind in TANDEMS and seeder.acked >= seeder.update_bearing_sent:
            break
        if server.kind == PYCRDT and _pycrdt_rows(server) > 0:
            break
        if not STORES[server.kind]:
            break
        await asyncio.sleep(0.05)
    return seeder


async def seeded(
    server: Server,
    trace: EncodedTrace,
    *,
    warm_samples: int = 3,
    cold_samples: int = 2,
    timeout: float = 120,
) -> dict[str, Any]:
    """Warm and cold joins on a room seeded with the whole document in one update."""
    seeder = await seed(server, ROOM, trace.state, timeout)
    await join_once(server, ROOM, trace.text, timeout)  # let the room settle once
    warm = [await join_once(server, ROOM, trace.text, timeout) for _ in range(warm_samples)]
    result: dict[str, Any] = {"document_state_bytes": len(trace.state)}
    result |= _summary(warm, "warm")
    seeder.close()
    await asyncio.sleep(0.3)
    if not STORES[server.kind] or cold_samples == 0:
        result |= {"cold_ms": None, "cold_samples_ms": [], "cold_whole_doc_in_one_sync": None}
        return result
    cold = []
    for _ in range(cold_samples):
        server.stop()
        server.start()
        cold.append(await cold_join(server, ROOM, trace.text, timeout))
    result |= _summary(cold, "cold")
    return result
