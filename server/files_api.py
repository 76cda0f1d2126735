"""Files beside documents (images pasted or dropped into the editor), over HTTP:

- ``POST /api/docs/{name}/files``: the body is the image's bytes (its Content-Type, when it
  names a type, must agree with them); write role. Its type is read from the bytes
  (:mod:`server.filetypes`), the size capped at ``--max-file-bytes``;
- ``GET /api/docs/{name}/files/{id}``: the bytes, read role, cached for good (a file never
  changes: its id names one content), sandboxed so that an SVG opened alone runs nothing.

The handlers are plain; :mod:`server.http_api` registers them behind its ``document_route``
(name check, token, JSON errors) with :func:`add_file_routes`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from . import filetypes
from .appkeys import ROOMS, SETTINGS, STORE
from .auth import Role
from .documents import NotFound
from .handlers import Handler, json_error
from .storage import StoredFile
from .storage.base import FILE_ID

# Every file response: no script, no fetch, no plugin, and a unique origin if opened alone.
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
# A file's bytes never change under its id.
FILE_CACHE = "private, max-age=31536000, immutable"
_CHUNK = 64 * 1024


def file_path(name: str, file_id: str) -> str:
    """Where a file is served: what the editor links in the Markdown (document names need
    no escaping in a path: their characters are all URL-safe)."""
    return f"/api/docs/{name}/files/{file_id}"


def _too_large(limit: int) -> web.Response:
    response = json_error(
        413, f"the file is larger than {limit} bytes, the most this server takes (--max-file-bytes)"
    )
    response.force_close()  # the rest of the body is not read: this connection is done
    return response


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` (read no further)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def upload_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    limit = request.app[SETTINGS].max_file_bytes
    # A declared size past the cap is refused before a byte of the body is read.
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    data = await _body(request, limit)
    if data is None:
        return _too_large(limit)
    if not data:
        return json_error(400, "the body must be the image's bytes")
    store = request.app[STORE]
    room = request.app[ROOMS].get(name)
    if await store.document(name) is None and (room is None or not room.peers):
        raise NotFound(f"no document named {name!r}")
    declared = request.headers.get("Content-Type")
    try:  # an SVG is parsed: off the event loop
        content_type = await asyncio.to_thread(filetypes.image_type, data, declared)
    except filetypes.Unsupported as exc:
        return json_error(415, f"{exc}; images must be PNG, JPEG, GIF, WebP or SVG")
    except filetypes.TooManyPixels as exc:
        return json_error(413, str(exc))
    stored, new = await store.save_file(name, content_type, data)
    return web.json_response(_describe(stored), status=201 if new else 200)


def _describe(stored: StoredFile) -> dict[str, object]:
    return {
        "id": stored.id,
        "url": file_path(stored.doc, stored.id),
        "content_type": stored.content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "created_at": stored.created_at,
    }


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def get_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    file_id = request.match_info["file_id"]
    if not FILE_ID.fullmatch(file_id):
        raise NotFound(f"document {name!r} has no file {file_id!r}")
    store = request.app[STORE]
    condition = request.headers.get("If-None-Match")
    # Revalidation needs only the digest; the bytes are read only when they are sent.
    found = await store.file(name, file_id, data=condition is None)
    if found is None:
        raise NotFound(f"document {name!r} has no file {file_id!r}")
    etag = f'"{found.sha256}"'
    extension = filetypes.EXTENSIONS.get(found.content_type, "bin")
    headers = {
        "ETag": etag,
        "Cache-Control": FILE_CACHE,
        "Content-Security-Policy": FILE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{found.id}.{extension}"',
    }
    if condition is not None and _matches(condition, etag):
        return web.Response(status=304, headers=headers)
    if found.data is None:
        found = await store.file(name, file_id)
        if found is None:  # deleted between the two reads
            raise NotFound(f"document {name!r} has no file {file_id!r}")
    headers["Content-Type"] = found.content_type
    return web.Response(body=found.data, headers=headers)


def add_file_routes(
    router: web.UrlDispatcher, guard: Callable[[Role], Callable[[Handler], Handler]]
) -> None:
    """``guard``: http_api's ``document_route`` (before its catch-all document route)."""
    router.add_post("/api/docs/{name:.+}/files", guard(Role.write)(upload_file))
    router.add_get("/api/docs/{name:.+}/files/{file_id:[^/]+}", guard(Role.read)(get_file))
