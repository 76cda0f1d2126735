"""``GET /api/search?q=...&limit=...``: the documents the caller's token covers whose title or
text holds every word of ``q``, best first, each with a snippet whose hits are marked as parts
(``{"text": ..., "hit": true}``), so a page shows them without parsing any HTML."""

from __future__ import annotations

import time

from aiohttp import web

from .appkeys import AUTH, STORE
from .auth import Role, Unauthorized, request_token
from .handlers import json_error
from .storage import StoreError

# The longest query, in characters.
MAX_QUERY = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 50


async def search(request: web.Request) -> web.Response:
    try:
        grant = request.app[AUTH].grant(request_token(request.headers, request.query))
    except Unauthorized as exc:
        return json_error(401, str(exc))
    if grant.role < Role.read:
        return json_error(403, "this needs the read role")
    query = request.query.get("q", "").strip()
    if not query:
        return json_error(400, "say what to search for: ?q=words")
    if len(query) > MAX_QUERY:
        return json_error(400, f"a search is at most {MAX_QUERY} characters")
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        return json_error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    store = request.app[STORE]
    scopes = (grant.scope,)
    # Taken before the search: what it says is true of every result the search returns.
    asked_at = time.time()
    try:
        through = await store.indexed_through(scopes)
        hits = await store.search(query, scopes, limit)
    except StoreError as exc:
        return json_error(503, f"the search is not available now: {exc}")
    return web.json_response(
        {
            "results": [
                {
                    "name": hit.name,
                    "title": hit.title,
                    "snippet": [{"text": part.text, "hit": part.hit} for part in hit.snippet],
                }
                for hit in hits
            ],
            # Every change committed before this time is in the index.
            "indexed_through": asked_at if through is None else through,
        }
    )


def add_search_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/search", search)
