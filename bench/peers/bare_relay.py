"""The floor: an aiohttp WebSocket relay with no CRDT work and no storage.

Every binary frame is forwarded as it is to the other sockets of the same path. A client's
sync step 1 gets an empty sync step 2 (so y-protocols clients report ``synced``) and is not
forwarded. Run: ``python bench/peers/bare_relay.py --port 0``; it prints ``listening on PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import defaultdict

from aiohttp import WSMsgType, web

EMPTY_STEP2 = b"\x00\x01\x02\x00\x00"  # sync, step 2, varUint8Array(empty update)

rooms: defaultdict[str, set[web.WebSocketResponse]] = defaultdict(set)


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, compress=False)
    await ws.prepare(request)
    peers = rooms[request.path]
    peers.add(ws)
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                continue
            data = msg.data
            if data[:2] == b"\x00\x00":  # sync step 1
                await ws.send_bytes(EMPTY_STEP2)
                continue
            for peer in peers:
                if peer is not ws and not peer.closed:
                    await peer.send_bytes(data)
    finally:
        peers.discard(ws)
        if not peers:
            rooms.pop(request.path, None)
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/{path:.*}", relay)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
