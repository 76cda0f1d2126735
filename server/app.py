"""Application assembly: ``create_app(settings)`` wires the store, the rooms and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from . import __version__, metrics
from .appkeys import AUTH, CLUSTER, CONNECTIONS, DOCUMENTS, ROOMS, SETTINGS, STORE
from .auth import Authorizer
from .autosave import AutoVersions
from .cluster import ClusterError
from .cluster.node import Cluster
from .config import Settings
from .documents import Documents
from .http_api import add_api_routes
from .limits import ConnectionCounter, RateLimits
from .pages import add_page_routes
from .presence import PresenceLimits
from .room import Room, RoomLimits
from .rooms import Rooms
from .search_index import SearchIndexer
from .security import (
    HOST_POLICY,
    HostPolicy,
    guard,
    security_headers,
)
from .storage import is_postgres, open_store
from .transport import close_all, keepalive_loop, websocket_handler
from .webhooks.changes import ChangeEvents
from .webhooks.delivery import Delivery
from .workers import Workers

log = logging.getLogger("tandem")

# A wheel carries the built client in the package (hatch_build.py); a checkout serves its own.
_PACKAGED_CLIENT_DIR = Path(__file__).resolve().parent / "_client"
DEFAULT_CLIENT_DIR = (
    _PACKAGED_CLIENT_DIR
    if _PACKAGED_CLIENT_DIR.is_dir()
    else Path(__file__).resolve().parent.parent / "client_web" / "dist"
)


def create_app(settings: Settings) -> web.Application:
    # The body limit is for the HTTP API (imports); WebSocket frames have their own cap.
    app = web.Application(
        client_max_size=settings.max_message_size,
        middlewares=[guard],
    )
    app[SETTINGS] = settings
    app[HOST_POLICY] = HostPolicy.for_server(
        settings.host, settings.allowed_hosts, settings.public_url
    )
    app[AUTH] = Authorizer(settings.auth_secret)
    app[CONNECTIONS] = ConnectionCounter(settings.max_connections_per_ip)
    app.cleanup_ctx.append(_lifetime)
    app.on_shutdown.append(_say_goodbye)
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/ws/{name:.*}", websocket_handler)
    app.router.add_get("/metrics", metrics.metrics)
    add_api_routes(app)
    add_page_routes(app, settings.client_dir or DEFAULT_CLIENT_DIR)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.redis and not is_postgres(settings.db):
        raise ClusterError(
            "--redis joins instances that share one PostgreSQL store; "
            "a SQLite file cannot be shared: use --db postgresql://..."
        )
    store = await open_store(
        settings.db,
        synchronous=settings.synchronous,
        compact_updates=settings.compact_updates,
        compact_bytes=settings.compact_bytes,
    )
    rooms = Rooms(
        store,
        settings.grace_period,
        limits=RoomLimits(
            PresenceLimits(
                max_ids=settings.max_awareness_ids,
                max_bytes_per_connection=settings.max_awareness_bytes,
                max_room_bytes=settings.max_room_awareness_bytes,
            ),
            settings.max_pending_updates,
        ),
        max_rooms=settings.max_rooms,
        new_rooms=RateLimits(settings.new_room_rate, settings.new_room_burst),
    )
    cluster: Cluster | None = None
    if settings.redis:
        from .storage.postgres import PostgresStore

        assert isinstance(store, PostgresStore)
        cluster = Cluster(settings.redis, store, rooms)
        try:
            await cluster.start()
        except ClusterError:
            await store.close()
            raise
        rooms.feed = cluster
        app[CLUSTER] = cluster
    workers = Workers(
        settings.workers, timeout=settings.work_timeout, max_bytes=settings.max_work_bytes
    )
    workers.start()
    documents = Documents(store, rooms, workers=workers, max_versions=settings.max_versions)
    autosave = AutoVersions(
        documents, rooms, quiet=settings.version_quiet, interval=settings.version_interval
    )
    indexer = SearchIndexer(store, rooms, workers, quiet=settings.index_quiet)
    store.on_compacted = indexer.compacted

    async def unloading(room: Room) -> None:
        await autosave.save(room)
        await indexer.unloading(room)

    rooms.on_unload = unloading
    app[STORE] = store
    app[ROOMS] = rooms
    app[DOCUMENTS] = documents
    background = [autosave.run(), indexer.run()]
    if settings.webhooks:
        assert settings.webhook_secret is not None  # the CLI refuses webhooks without one
        store.webhook_targets = settings.webhooks
        delivery = Delivery(
            store,
            settings.webhooks,
            settings.webhook_secret,
            timeout=settings.webhook_timeout,
            max_age=settings.webhook_max_age,
            user_agent=f"Tandem/{__version__}",
        )
        background += [ChangeEvents(store, rooms).run(), delivery.run()]
    metrics.watch(
        lambda: len(rooms),
        lambda: sum(peer.outbox_frames for room in rooms.loaded() for peer in room.peers),
    )
    tasks = [
        asyncio.create_task(keepalive_loop(rooms, settings.keepalive)),
        *(asyncio.create_task(work) for work in background),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rooms.close()
        if cluster is not None:
            await cluster.close()
        await asyncio.to_thread(workers.close)
        compacted = await store.compact_all()
        await store.close()
        log.info("store flushed and closed (%d documents compacted)", compacted)


async def _say_goodbye(app: web.Application) -> None:
    await close_all(app[ROOMS])
