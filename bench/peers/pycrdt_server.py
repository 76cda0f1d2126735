"""The Python peer: pycrdt-websocket's WebsocketServer + YRoom persisted by pycrdt-store's
SQLiteYStore, served by Hypercorn through ASGIServer (as pycrdt-websocket's docs show).

Runs in bench/.venv-peers. Each room gets a SQLiteYStore (defaults, as shipped) on one
database file; a room is loaded from the store before its first client is served.
``python bench/peers/pycrdt_server.py --port 0 --db FILE`` prints ``listening on PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket

from hypercorn.asyncio import serve
from hypercorn.config import Config
from pycrdt.store import SQLiteYStore, YDocNotFound
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom

log = logging.getLogger("pycrdt-peer")


def store_class(db_path: str) -> type[SQLiteYStore]:
    return type("BenchSQLiteYStore", (SQLiteYStore,), {"db_path": db_path})


class StoredWebsocketServer(WebsocketServer):
    """A WebsocketServer whose rooms are persisted to (and loaded from) a SQLiteYStore."""

    def __init__(self, db_path: str) -> None:
        super().__init__(rooms_ready=False, auto_clean_rooms=True, log=log)
        self.store = store_class(db_path)
        self._loading: dict[str, asyncio.Event] = {}

    async def get_room(self, name: str) -> YRoom:
        loading = self._loading.get(name)
        if loading is not None:  # someone else is loading it: wait until it is ready
            await loading.wait()
        if name in self.rooms:
            room = self.rooms[name]
            await self.start_room(room)
            return room
        loading = self._loading[name] = asyncio.Event()
        try:
            ystore = self.store(path=name, log=log)
            room = YRoom(ready=False, ystore=ystore, log=log)
            self.rooms[name] = room
            await self.start_room(room)  # starts the ystore in the room's task group
            await ystore.started.wait()
            try:
                await ystore.apply_updates(room.ydoc)
            except YDocNotFound:
                pass
            room.ready = True
            await room.ydoc_observed.wait()
            return room
        finally:
            del self._loading[name]
            loading.set()


async def init_db(db_path: str) -> None:
    """Create the schema once, before many rooms' stores race to create it."""
    async with store_class(db_path)(path="__init__", log=log) as ystore:
        assert ystore.db_initialized is not None
        await ystore.db_initialized.wait()


async def main(host: str, port: int, db_path: str) -> None:
    await init_db(db_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    websocket_server = StoredWebsocketServer(db_path)
    app = ASGIServer(websocket_server)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.backlog = 4096
    config.websocket_max_message_size = 64 * 1024 * 1024
    config.graceful_timeout = 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    async with websocket_server:
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.host, args.port, args.db))
