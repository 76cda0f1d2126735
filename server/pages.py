"""The web client's pages: ``/``, ``/d/{name}``, the built files under ``/static/`` and the
service worker (``/sw.js`` and the editor shell it keeps for offline use).

The pages are the static files that ``client_web`` builds into ``client_web/dist`` (``make setup``
runs ``npm ci && npm run build`` there). Nothing here reads the store or speaks WebSocket: the
editor page's script opens ``/ws/{name}`` itself, and the home page's script reads ``/api/docs``.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .names import BadDocumentName, check_document_name

NOT_BUILT = (
    "The Tandem web client is not built yet: run `make setup` "
    "(or `cd client_web && npm ci && npm run build`), then restart the server.\n"
)


def _page(path: Path) -> web.StreamResponse:
    """One of the two HTML pages, always revalidated (the CSP, ``nosniff`` and the referrer
    policy every HTML response gets are added by :func:`server.security.security_headers`)."""
    if not path.is_file():
        return web.Response(status=503, text=NOT_BUILT)
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def _service_worker(path: Path) -> web.StreamResponse:
    """``/sw.js``: always revalidated, so a new build's worker replaces the old one at once.

    Served from the root, its scope is the whole site (``Service-Worker-Allowed`` says so too).
    """
    if not path.is_file():
        return web.Response(status=404, text=NOT_BUILT)
    headers = {
        "Cache-Control": "no-cache",
        "Content-Type": "text/javascript; charset=utf-8",
        "Service-Worker-Allowed": "/",
    }
    return web.FileResponse(path, headers=headers)


def add_page_routes(app: web.Application, dist: Path) -> None:
    """Register ``GET /``, ``GET /d/{name}``, ``/static/`` (the files of ``dist``) and
    ``GET /sw.js`` with ``GET /offline/editor.html``.

    ``/offline/editor.html`` is the editor page for no document in particular (the page reads
    the name from its address): the service worker caches it and answers ``/d/<any name>`` with
    it when the server cannot be reached, so a tab can be reloaded offline.

    A missing ``dist`` makes every page answer 503 with a hint to build the client. The pages
    look for their file on every request, so building after the server started is enough for
    them; the ``/static/`` route is chosen at start, so it needs a restart after the first build.
    """
    dist = Path(dist)

    async def home(request: web.Request) -> web.StreamResponse:
        return _page(dist / "index.html")

    async def editor(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            check_document_name(name)
        except BadDocumentName as error:
            return web.Response(status=400, text=f"Bad document name: {error}.\n")
        return _page(dist / "editor.html")

    async def editor_shell(request: web.Request) -> web.StreamResponse:
        return _page(dist / "editor.html")

    async def service_worker(request: web.Request) -> web.StreamResponse:
        return _service_worker(dist / "sw.js")

    async def not_built(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text=NOT_BUILT)

    app.router.add_get("/", home)
    app.router.add_get("/d/{name:.+}", editor)
    app.router.add_get("/offline/editor.html", editor_shell)
    app.router.add_get("/sw.js", service_worker)
    if dist.is_dir():
        app.router.add_static("/static/", dist)
    else:
        app.router.add_get("/static/{path:.*}", not_built)
