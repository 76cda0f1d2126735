"""The WebSocket transport: the endpoint, who is admitted, how frames are written, and what the
server does for all connections (keepalive, the goodbye at shutdown). Only this package touches
aiohttp's WebSocket."""

from __future__ import annotations

from .endpoint import websocket_handler
from .lifecycle import close_all, keepalive_loop

__all__ = ["close_all", "keepalive_loop", "websocket_handler"]
