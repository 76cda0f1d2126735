"""What every HTTP handler and middleware shares: the handler's type, and the JSON error body
(``{"error": ...}``) every error is answered with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
