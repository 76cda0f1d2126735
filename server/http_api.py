"""The JSON HTTP API: health, documents, exports, versions, restore, import, delete, and the
routes of :mod:`server.http_write` (state, update, text, append).

Every /api request is authorised (a token when the server has a secret); errors are JSON
``{"error": ...}`` with the right status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from . import authors_api, duplicate, files_api, http_write, tokens_api
from .appkeys import AUTH, CLUSTER, DOCUMENTS, ROOMS, STORE
from .auth import Forbidden, Grant, Role, Unauthorized, request_token
from .documents import Conflict, NotFound, text_etag
from .exports import EXPORT_CSP, UnknownFormat
from .handlers import Handler, json_error
from .names import BadDocumentName, check_document_name
from .rooms import RoomLoadError, Rooms, RoomsFull
from .search_api import add_search_routes
from .storage import DocumentInfo
from .workers import Busy, TooLarge

MAX_LABEL = 200


def _authorize(request: web.Request, name: str, needed: Role) -> Grant:
    try:
        return request.app[AUTH].authorize(
            request_token(request.headers, request.query), name, needed
        )
    except Unauthorized as exc:
        raise _HttpError(401, str(exc)) from exc
    except Forbidden as exc:
        raise _HttpError(403, str(exc)) from exc


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def document_route(needed: Role) -> Callable[[Handler], Handler]:
    """Validate ``{name}``, authorise ``needed`` on it, and turn known errors into JSON."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                name = check_document_name(request.match_info["name"])
                _authorize(request, name, needed)
                return await handler(request)
            except BadDocumentName as exc:
                return json_error(400, str(exc))
            except _HttpError as exc:
                return json_error(exc.status, str(exc))
            except NotFound as exc:
                return json_error(404, str(exc))
            except Conflict as exc:
                return json_error(409, str(exc))
            except UnknownFormat as exc:
                return json_error(400, str(exc))
            except TooLarge as exc:
                return json_error(413, str(exc))
            except (Busy, RoomsFull) as exc:
                return json_error(503, str(exc))
            except RoomLoadError as exc:
                return json_error(500, str(exc))

        return wrapped

    return wrap


def _describe(
    name: str, info: DocumentInfo | None, rooms: Rooms, title: str | None = None
) -> dict[str, object]:
    room = rooms.get(name)
    return {
        "name": name,
        # Its first heading, as last indexed for search (None: none, or not indexed yet).
        "title": title,
        "size_bytes": info.size_bytes if info else 0,
        "created_at": info.created_at if info else None,
        "updated_at": info.updated_at if info else None,
        "connections": len(room.peers) if room else 0,
    }


def _version_param(raw: str | None) -> int | None:
    if raw is None or raw == "live":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise NotFound(f"no version {raw!r}") from exc
    if value < 1:
        raise NotFound(f"no version {raw!r}")
    return value


# --- health and documents ----------------------------------------------------------------


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
        "commits": health.batches,
        "appended": health.appended,
        "compactions": health.compactions,
        "rooms_loaded": len(request.app[ROOMS]),
    }
    cluster = request.app.get(CLUSTER)
    if cluster is not None:
        # Redis down is reported, not failed: every instance serves and acks on, and
        # catches up from the store (a balancer must not take them all out).
        body["cluster"] = cluster.status()
    return web.json_response(body, status=200 if health.ok else 503)


async def list_docs(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    try:
        grant = auth.grant(request_token(request.headers, request.query))
    except Unauthorized as exc:
        return json_error(401, str(exc))
    if grant.role < Role.read:
        return json_error(403, "this needs the read role")
    store = request.app[STORE]
    rooms = request.app[ROOMS]
    stored = {info.name: info for info in await store.list_documents()}
    # Also documents open right now that have nothing committed yet.
    live = {room.name for room in rooms.loaded() if room.peers}
    names = sorted(n for n in stored.keys() | live if grant.covers(n))
    titles = await store.titles()
    return web.json_response(
        {"documents": [_describe(n, stored.get(n), rooms, titles.get(n)) for n in names]}
    )


@document_route(Role.read)
async def get_doc(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    rooms = request.app[ROOMS]
    info = await request.app[STORE].document(name)
    room = rooms.get(name)
    if info is None and (room is None or not room.peers):
        raise NotFound(f"no document named {name!r}")
    titles = await request.app[STORE].titles([name])
    return web.json_response(_describe(name, info, rooms, titles.get(name)))


@document_route(Role.admin)
async def delete_doc(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not await request.app[DOCUMENTS].delete(name):
        raise NotFound(f"no document named {name!r}")
    return web.json_response({"deleted": name})


# --- exports and versions ------------------------------------------------------------------


@document_route(Role.read)
async def export_doc(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    fmt = request.query.get("format", "md")
    version = _version_param(request.query.get("version"))
    rendered = await request.app[DOCUMENTS].export(name, fmt, version)
    headers = {
        "Content-Type": rendered.content_type,
        "Content-Disposition": f'attachment; filename="{rendered.filename}"',
        # frame-ancestors and sandbox work in the header only, not in the page's <meta>.
        "Content-Security-Policy": f"{EXPORT_CSP}; frame-ancestors 'none'; sandbox",
    }
    if fmt in ("txt", "md"):  # the text itself: what PUT .../text's If-Match is checked against
        headers["ETag"] = text_etag(rendered.body.decode("utf-8"))
    return web.Response(body=rendered.body, headers=headers)


@document_route(Role.read)
async def list_versions(request: web.Request) -> web.Response:
    versions = await request.app[DOCUMENTS].versions(request.match_info["name"])
    return web.json_response(
        [
            {
                "id": v.id,
                "number": v.number,
                "created_at": v.created_at,
                "label": v.label,
                "size_bytes": v.size_bytes,
                "auto": v.auto,
            }
            for v in versions
        ]
    )


@document_route(Role.write)
async def create_version(request: web.Request) -> web.Response:
    label: str | None = None
    if request.can_read_body:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return json_error(400, 'the body must be JSON like {"label": "..."}')
        if not isinstance(body, dict):
            return json_error(400, 'the body must be a JSON object like {"label": "..."}')
        label = body.get("label")
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
            return json_error(400, f"label must be a string of at most {MAX_LABEL} characters")
    version_id = await request.app[DOCUMENTS].save_version(request.match_info["name"], label)
    saved = await request.app[STORE].version_info(request.match_info["name"], version_id)
    number = saved.number if saved else None
    return web.json_response({"id": version_id, "number": number}, status=201)


def _saved_version(request: web.Request) -> int:
    """The ``{version}`` of the path, which must name a saved version (not ``live``)."""
    version = _version_param(request.match_info["version"])
    if version is None:
        raise NotFound("this needs a saved version, not 'live'")
    return version


@document_route(Role.admin)
async def restore_version(request: web.Request) -> web.Response:
    version = _saved_version(request)
    before = await request.app[DOCUMENTS].restore(request.match_info["name"], version)
    return web.json_response({"restored": version, "saved_before": before})


@document_route(Role.admin)
async def delete_version(request: web.Request) -> web.Response:
    version = _saved_version(request)
    await request.app[DOCUMENTS].delete_version(request.match_info["name"], version)
    return web.json_response({"deleted": version})


@document_route(Role.read)
async def diff_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    a = _version_param(request.match_info["a"])
    b = _version_param(request.match_info["b"])
    fmt = request.query.get("format", "text")
    if fmt == "json":  # the diff and who edited between the two
        return await authors_api.diff_with_authors(request, name, a, b)
    if fmt != "text":
        return json_error(400, "format must be text or json")
    text = await request.app[DOCUMENTS].diff(name, a, b)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


@document_route(Role.admin)
async def import_doc(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return json_error(400, "the body must be UTF-8 text or Markdown")
    await request.app[DOCUMENTS].import_text(name, text)
    return web.json_response({"imported": name, "length": len(text)}, status=201)


def add_api_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/healthz", healthz)
    router.add_get("/api/docs", list_docs)
    add_search_routes(router)
    tokens_api.add_token_routes(router)
    # Names may hold '/', so the action routes come before the plain document route.
    router.add_get("/api/docs/{name:.+}/export", export_doc)
    router.add_get("/api/docs/{name:.+}/versions", list_versions)
    router.add_post("/api/docs/{name:.+}/versions", create_version)
    router.add_post("/api/docs/{name:.+}/versions/{version:[^/]+}/restore", restore_version)
    router.add_delete("/api/docs/{name:.+}/versions/{version:[^/]+}", delete_version)
    router.add_get("/api/docs/{name:.+}/versions/{a:[^/]+}/diff/{b:[^/]+}", diff_versions)
    router.add_get(
        "/api/docs/{name:.+}/authors", document_route(Role.read)(authors_api.get_authors)
    )
    router.add_post("/api/docs/{name:.+}/import", import_doc)
    router.add_post(
        "/api/docs/{name:.+}/duplicate", document_route(Role.read)(duplicate.post_duplicate)
    )
    router.add_get("/api/docs/{name:.+}/state", document_route(Role.read)(http_write.get_state))
    router.add_post(
        "/api/docs/{name:.+}/update", document_route(Role.write)(http_write.post_update)
    )
    router.add_put("/api/docs/{name:.+}/text", document_route(Role.write)(http_write.put_text))
    router.add_post(
        "/api/docs/{name:.+}/append", document_route(Role.write)(http_write.post_append)
    )
    files_api.add_file_routes(router, document_route)
    router.add_get("/api/docs/{name:.+}", get_doc)
    router.add_delete("/api/docs/{name:.+}", delete_doc)
