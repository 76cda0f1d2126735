"""The JSON HTTP API: health and the document list. Reads the store and the loaded rooms."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .appkeys import ROOMS, STORE
from .names import BadDocumentName, check_document_name
from .rooms import Rooms
from .store import DocumentInfo


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _describe(name: str, info: DocumentInfo | None, rooms: Rooms) -> dict[str, object]:
    room = rooms.get(name)
    return {
        "name": name,
        "size_bytes": info.size_bytes if info else 0,
        "created_at": info.created_at if info else None,
        "updated_at": info.updated_at if info else None,
        "connections": len(room.peers) if room else 0,
    }


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    # A flush takes SQLite's write lock (BEGIN IMMEDIATE): it proves the file is writable now.
    try:
        await asyncio.wait_for(store.flush(), timeout=2.0)
    except TimeoutError:
        pass
    health = store.health
    body = {
        "ok": health.ok,
        "store": "writable" if health.ok else "failing",
        "error": health.error,
        "failing_since": health.since,
        "pending_appends": store.pending,
        "rooms_loaded": len(request.app[ROOMS]),
    }
    return web.json_response(body, status=200 if health.ok else 503)


async def list_docs(request: web.Request) -> web.Response:
    store = request.app[STORE]
    rooms = request.app[ROOMS]
    stored = {info.name: info for info in await store.list_documents()}
    # Also documents open right now that have nothing committed yet.
    live = {room.name for room in rooms.loaded() if room.peers}
    names = sorted(stored.keys() | live)
    return web.json_response({"documents": [_describe(n, stored.get(n), rooms) for n in names]})


async def get_doc(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        check_document_name(name)
    except BadDocumentName as exc:
        return json_error(400, str(exc))
    rooms = request.app[ROOMS]
    info = await request.app[STORE].document(name)
    room = rooms.get(name)
    if info is None and (room is None or not room.peers):
        return json_error(404, f"no document named {name!r}")
    return web.json_response(_describe(name, info, rooms))


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/docs", list_docs)
    app.router.add_get("/api/docs/{name:.+}", get_doc)
