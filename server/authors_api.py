"""Who wrote what, over HTTP: ``GET /api/docs/{name}/authors`` (the authors map) and the JSON
form of a diff, which also says who edited between its two versions (see server.authorship).

The handlers are wrapped by :func:`server.http_api.document_route` where they are registered:
the name is checked and the token authorised before they run.
"""

from __future__ import annotations

from aiohttp import web

from . import jobs
from .appkeys import DOCUMENTS, ROOMS, STORE
from .authorship import in_order
from .documents import NotFound
from .storage import AuthorInfo


async def authors_of(request: web.Request, name: str) -> list[AuthorInfo]:
    """The committed map, with what the loaded room knows better (see Authorship.overlay)."""
    stored = await request.app[STORE].authors(name)
    room = request.app[ROOMS].get(name)
    return room.authors.overlay(stored) if room is not None else in_order(stored)


def _row(row: AuthorInfo) -> dict[str, object]:
    return {
        "client_id": row.client_id,
        "author": row.author,
        "source": row.source,
        "first_at": row.first_at,
        "last_at": row.last_at,
    }


async def get_authors(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    rows = await authors_of(request, name)
    if not rows:
        room = request.app[ROOMS].get(name)
        if await request.app[STORE].document(name) is None and (room is None or not room.peers):
            raise NotFound(f"no document named {name!r}")
    return web.json_response({"authors": [_row(row) for row in rows]})


async def diff_with_authors(
    request: web.Request, name: str, a: int | None, b: int | None
) -> web.Response:
    """``{"diff": the unified diff of a to b, "authors": [{"client_id", "author", "source"}]}``:
    every client id whose clock differs between the two states, with its author (null when
    the map has none: an edit from before the map, or the server's own, such as a restore)."""
    documents = request.app[DOCUMENTS]
    before = await documents.state(name, a)
    after = await documents.state(name, b)
    documents.workers.check_size(len(before), len(after))
    label = lambda v: "live" if v is None else f"version {v}"  # noqa: E731
    text, clients = await documents.workers.run(
        jobs.diff_and_editors, name, before, after, label(a), label(b)
    )
    known = {row.client_id: row for row in await authors_of(request, name)}
    editors = []
    for client in clients:
        row = known.get(client)
        editors.append(
            {
                "client_id": client,
                "author": None if row is None else row.author,
                "source": None if row is None else row.source,
            }
        )
    return web.json_response({"diff": text, "authors": editors})
