"""Request-level protections, applied before any handler runs:

- the Host allowlist, which stops DNS rebinding: a foreign page whose own name resolves to this
  server sends that name as Host (and as Origin, so the Origin check alone passes it);
- the Origin check, which stops other sites' pages from using a browser's access to Tandem
  (cross-site WebSocket hijacking, forged POSTs);
- a time limit on every HTTP request (a body that trickles in holds a connection otherwise);
- the headers every response carries: ``nosniff`` everywhere, the pages' CSP on every HTML
  response (the files under /static/ too).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from .appkeys import SETTINGS
from .handlers import Handler, json_error

log = logging.getLogger("tandem.security")

ANY_HOST = "*"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name part of a Host header: no port, no brackets, no trailing dot, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which Host names the server answers to.

    Bound to loopback: the loopback names (``localhost``, ``*.localhost``, 127.0.0.0/8, ::1).
    Bound to any other address: those, IP literals (a rebinding page can only use a name) and
    this machine's own names. Plus, always, ``--allowed-host`` and ``--public-url``'s host;
    ``--allowed-host '*'`` turns the check off (a proxy in front that checks Host itself).
    """

    names: frozenset[str]
    ip_literals: bool
    any_host: bool = False

    @classmethod
    def for_server(
        cls, bind_host: str, allowed: Iterable[str], public_url: str | None
    ) -> HostPolicy:
        names = {host_name(name) for name in allowed if name != ANY_HOST}
        if public_url:
            names.add(host_name(urlsplit(public_url).netloc))
        loopback = _is_loopback(host_name(bind_host))
        if not loopback:
            names.update(host_name(n) for n in (socket.gethostname(), socket.getfqdn()) if n)
        return cls(frozenset(names), ip_literals=not loopback, any_host=ANY_HOST in allowed)

    def allows(self, host: str) -> bool:
        if self.any_host:
            return True
        name = host_name(host)
        if _is_loopback(name) or name in self.names:
            return True
        return self.ip_literals and _is_ip(name)


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Same origin (Origin's host:port equals the Host header) or explicitly allowed."""
    if origin.rstrip("/") in allowed:
        return True
    netloc = urlsplit(origin).netloc
    return bool(netloc) and netloc.lower() == host.lower()


HOST_POLICY = web.AppKey("host_policy", HostPolicy)


def _refuse_host(request: web.Request) -> web.Response | None:
    host = request.headers.get(hdrs.HOST)
    # No Host at all is an HTTP/1.0 tool, never a browser page: nothing to rebind.
    if host is None or request.app[HOST_POLICY].allows(host):
        return None
    log.warning("refused %s %s for Host %r", request.method, request.path, host)
    return web.Response(
        status=421,
        text=f"this server does not answer to {host_name(host)!r}: start it with "
        "--allowed-host NAME or --public-url URL to serve it under that name\n",
    )


def _refuse_origin(request: web.Request) -> web.Response | None:
    origin = request.headers.get("Origin")
    # Requests without an Origin come from non-browser clients: allowed.
    allowed = request.app[SETTINGS].allowed_origins
    if origin is None or origin_allowed(origin, request.host, allowed):
        return None
    log.warning("refused %s %s from origin %r", request.method, request.path, origin)
    return web.Response(status=403, text=f"origin {origin} is not allowed\n")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Host check (first: a rebinding page gets nothing, not even an Origin verdict), the
    Origin check, and ``--request-timeout`` for an HTTP request, its body included.

    One middleware, not three: a WebSocket's handler stays suspended inside every middleware
    for the socket's whole life, one coroutine frame each, for thousands of sockets. A
    WebSocket has no request timeout (its first message has a deadline of its own)."""
    refusal = _refuse_host(request)
    if refusal is None:
        refusal = _refuse_origin(request)
    if refusal is not None:
        return refusal
    if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
        return await handler(request)
    seconds = request.app[SETTINGS].request_timeout
    try:
        async with asyncio.timeout(seconds):
            return await handler(request)
    except TimeoutError:
        log.warning(
            "%s %s took longer than %ss; answered 408", request.method, request.path, seconds
        )
        response = json_error(408, f"the request did not complete within {seconds:g} s")
        response.force_close()
        return response


def page_csp(host: str) -> str:
    """The pages' policy. The bundles are classic scripts from ``/static/`` and the pages have no
    inline script, so ``script-src 'self'`` holds. Styles need ``'unsafe-inline'``: CodeMirror
    positions remote cursors and colours them with ``style`` attributes. ``connect-src`` names
    the WebSocket origin explicitly because older browsers do not count ``ws:`` as ``'self'``.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers for every response, whichever handler made it."""
    if response.status == 101:
        # A WebSocket's handshake has no body to sniff or render, and its headers live as
        # long as the socket.
        return
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type == "text/html" and "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = page_csp(request.host)
        # a `?token=` in the page address must not leak to other sites
        headers.setdefault("Referrer-Policy", "no-referrer")
