"""Writing binary messages as WebSocket frames, many per transport write."""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter


def _binary_frame_header(length: int) -> bytes:
    """RFC 6455 header of one final, unmasked (server-to-client) binary frame."""
    if length < 126:
        return bytes((0x82, length))
    if length < 65536:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class FrameWriter:
    """The connection's :class:`FrameSink`: binary messages as WebSocket frames, many per
    transport write.

    aiohttp's ``send_bytes`` costs one ``transport.write`` (one ``send`` syscall) and one
    await per frame; a reader of a busy room gets dozens of frames per event-loop turn, and
    those writes were the largest share of the server's CPU under load. Flow control is the
    transport's: ``blocked`` once its buffer passes the high-water mark, and aiohttp's
    ``drain`` waits until it is back under the low-water mark.
    """

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, stream: AbstractStreamWriter
    ) -> None:
        self._request = request
        self._ws = ws
        self._stream = stream

    def _transport(self) -> asyncio.Transport:
        transport = self._request.transport
        # Once aiohttp has sent a Close (or started to), no data frame may follow it.
        if transport is None or transport.is_closing() or self._ws.closed:
            raise ConnectionResetError("the connection is closed")
        return transport

    def write(self, messages: list[bytes]) -> None:
        parts: list[bytes] = []
        for message in messages:
            parts.append(_binary_frame_header(len(message)))
            parts.append(message)
        self._transport().writelines(parts)

    def blocked(self) -> bool:
        transport = self._transport()
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]

    async def drain(self) -> None:
        await self._stream.drain()
        # aiohttp pauses on the same mark; should the two ever disagree, wait a little
        # rather than let the sender spin on a full buffer without yielding.
        if self.blocked():
            await asyncio.sleep(0.05)
