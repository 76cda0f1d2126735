"""Application assembly: ``create_app(settings)`` wires the store, the rooms and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from .appkeys import ROOMS, SETTINGS, STORE
from .config import Settings
from .http_api import add_api_routes
from .rooms import Rooms
from .store import Store
from .transport import close_all, keepalive_loop, websocket_handler

log = logging.getLogger("tandem")

DEFAULT_CLIENT_DIR = Path(__file__).resolve().parent.parent / "client_web" / "dist"


def create_app(settings: Settings) -> web.Application:
    # The body limit is for the HTTP API (imports); WebSocket frames have their own cap.
    app = web.Application(client_max_size=settings.max_message_size)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_lifetime)
    app.on_shutdown.append(_say_goodbye)
    app.router.add_get("/ws/{name:.*}", websocket_handler)
    add_api_routes(app)
    try:
        from .pages import add_page_routes
    except ImportError:  # the web client's routes arrive with the editor
        pass
    else:
        add_page_routes(app, settings.client_dir or DEFAULT_CLIENT_DIR)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(
        settings.db,
        synchronous=settings.synchronous,
        compact_updates=settings.compact_updates,
        compact_bytes=settings.compact_bytes,
    )
    rooms = Rooms(store, settings.grace_period)
    app[STORE] = store
    app[ROOMS] = rooms
    keepalive = asyncio.create_task(keepalive_loop(rooms, settings.keepalive))
    try:
        yield
    finally:
        keepalive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keepalive
        await rooms.close()
        compacted = await store.compact_all()
        await store.close()
        log.info("compacted %d documents", compacted)
        log.info("store flushed and closed")


async def _say_goodbye(app: web.Application) -> None:
    await close_all(app[ROOMS])
