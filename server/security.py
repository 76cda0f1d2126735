"""Request-level protections: the Origin check that stops other sites' pages from using a
browser's access to Tandem (cross-site WebSocket hijacking, forged POSTs)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from .appkeys import SETTINGS
from .http_api import Handler

log = logging.getLogger("tandem.security")


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Same origin (Origin's host:port equals the Host header) or explicitly allowed."""
    if origin.rstrip("/") in allowed:
        return True
    netloc = urlsplit(origin).netloc
    return bool(netloc) and netloc.lower() == host.lower()


@web.middleware
async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    # Requests without an Origin come from non-browser clients: allowed.
    if origin is not None:
        allowed = request.app[SETTINGS].allowed_origins
        if not origin_allowed(origin, request.host, allowed):
            log.warning("refused %s %s from origin %r", request.method, request.path, origin)
            return web.Response(status=403, text=f"origin {origin} is not allowed\n")
    return await handler(request)
