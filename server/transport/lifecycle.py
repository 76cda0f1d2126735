"""What every connection gets from the server as a whole: keepalive frames, and the goodbye at
shutdown."""

from __future__ import annotations

import asyncio
import time

from ..contract import CloseCode
from ..protocol import KEEPALIVE_FRAME
from ..rooms import Rooms


async def keepalive_loop(rooms: Rooms, interval: float) -> None:
    """Send a no-op frame to every connection that has heard nothing for ``interval`` s."""
    while True:
        await asyncio.sleep(interval / 2)
        stale = time.monotonic() - interval
        for room in rooms.loaded():
            for peer in room.peers:
                if peer.last_sent < stale:
                    peer.send(KEEPALIVE_FRAME)


async def close_all(rooms: Rooms) -> None:
    """Shutdown: tell every client to come back later (1001) and wait for the closes."""
    peers = [peer for room in rooms.loaded() for peer in room.peers]
    for peer in peers:
        peer.close(CloseCode.goingAway, "server shutting down")
    if peers:
        await asyncio.wait([asyncio.ensure_future(peer.wait_closed()) for peer in peers], timeout=5)
