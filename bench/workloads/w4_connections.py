"""W4 connections: many idle, synced clients over many rooms; what one costs in server RSS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .. import loadgen
from ..servers import Server


async def run(server: Server, *, connections: int = 2000, rooms: int = 200) -> dict[str, Any]:
    loadgen.raise_nofile_limit(connections * 2 + 1024)
    await asyncio.sleep(0.5)
    rss0 = server.rss()
    started = time.perf_counter()
    clients = await loadgen.open_many(
        [(server.url(f"w4-{i % rooms}"), None) for i in range(connections)], concurrency=64
    )
    opened = time.perf_counter() - started
    await asyncio.sleep(2.0)  # idle: let buffers and keepalives settle
    rss1 = server.rss()
    alive = sum(not c.closed.is_set() for c in clients)
    loadgen.close_all(clients)
    await asyncio.sleep(0.5)
    return {
        "connections": connections,
        "rooms": rooms,
        "alive_after_idle": alive,
        "rss_before_mib": round(rss0 / 2**20, 1),
        "rss_with_connections_mib": round(rss1 / 2**20, 1),
        "kib_per_connection": round((rss1 - rss0) / connections / 1024, 1),
        "connect_and_sync_per_s": round(connections / opened, 1),
    }
