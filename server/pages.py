"""The web client's pages: ``/``, ``/d/{name}``, the built files under ``/static/`` and the
service worker (``/sw.js`` and the editor shell it keeps for offline use).

The pages are the static files that ``client_web`` builds into ``client_web/dist`` (``make setup``
runs ``npm ci && npm run build`` there). Nothing here reads the store or speaks WebSocket: the
editor page's script opens ``/ws/{name}`` itself, and the home page's script reads ``/api/docs``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

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


_ERROR_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>{title} — Tandem</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="{style}">
  <script src="{theme}"></script>
</head>
<body class="page-home page-error">
  <header class="topbar">
    <a class="brand" href="{home}" aria-label="Tandem: all documents">
      <img class="brand-mark" src="/static/favicon.svg" alt="" width="24" height="24">
      <span class="brand-name">Tandem</span>
    </a>
  </header>
  <main class="home">
    <section class="card error-card" data-testid="error-page" data-status="{status}"
             aria-labelledby="error-heading">
      <h1 id="error-heading">{title}</h1>
      <p class="lede">{message}</p>
      <p class="error-actions"><a class="button button-primary" data-testid="error-home"
         href="{home}">See all documents</a></p>
    </section>
  </main>
</body>
</html>
"""


def _asset(dist: Path, file: str) -> str:
    """``/static/<file>?v=<hash>`` as the built home page names it (the hash changes with each
    build), or the bare path when the page is not built."""
    try:
        page = (dist / "index.html").read_text(encoding="utf-8")
    except OSError:
        return f"/static/{file}"
    found = re.search(rf'"(/static/{re.escape(file)}\?v=[\w-]+)"', page)
    return found.group(1) if found else f"/static/{file}"


def _error_page(
    request: web.Request, dist: Path, status: int, title: str, message: str
) -> web.Response:
    """A page in the site's own look (the pages' CSP comes from ``security_headers``) that says
    what went wrong and links home, keeping the page's ``?token=``."""
    token = request.query.get("token")
    home = f"/?token={quote(token, safe='')}" if token else "/"
    body = _ERROR_PAGE.format(
        title=html.escape(title),
        message=html.escape(message),
        status=status,
        home=html.escape(home),
        style=html.escape(_asset(dist, "style.css")),
        theme=html.escape(_asset(dist, "theme.js")),
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


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
            shown = name if len(name) <= 80 else name[:79] + "…"
            message = f"“{shown}” cannot be a document name: {error}."
            return _error_page(request, dist, 400, "Not a document name", message)
        return _page(dist / "editor.html")

    async def no_name(request: web.Request) -> web.StreamResponse:
        message = "This address names no document. Open one from the list, or make a new one."
        return _error_page(request, dist, 404, "No document here", message)

    async def editor_shell(request: web.Request) -> web.StreamResponse:
        return _page(dist / "editor.html")

    async def service_worker(request: web.Request) -> web.StreamResponse:
        return _service_worker(dist / "sw.js")

    async def not_built(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text=NOT_BUILT)

    app.router.add_get("/", home)
    app.router.add_get("/d/{name:.+}", editor)
    app.router.add_get("/d/", no_name)
    app.router.add_get("/d", no_name)
    app.router.add_get("/offline/editor.html", editor_shell)
    app.router.add_get("/sw.js", service_worker)
    if dist.is_dir():
        app.router.add_static("/static/", dist)
    else:
        app.router.add_get("/static/{path:.*}", not_built)
