"""Writing binary messages as WebSocket frames, many per transport write."""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

# Seconds a close may take (the close frame written, the client's answer read) before the TCP
# connection is dropped under a peer that does not read even that.
CLOSE_TIMEOUT = 5.0


def _binary_frame_header(length: int) -> bytes:
    """RFC 6455 header of one final, unmasked (server-to-client) binary frame."""
    if length < 126:
        return bytes((0x82, length))
    if length < 65536:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class FrameWriter:
    """The connection's :class:`FrameSink`: binary messages as WebSocket frames, many per
    transport write, and the close.

    aiohttp's ``send_bytes`` costs one ``transport.write`` (one ``send`` syscall) and one
    await per frame; a reader of a busy room gets dozens of frames per event-loop turn, and
    those writes were the largest share of the server's CPU under load. Flow control is the
    transport's: it pauses aiohttp's protocol once its buffer passes the high-water mark
    (``blocked``), and aiohttp's ``drain`` waits until it resumes below the low-water mark.
    """

    __slots__ = ("_protocol", "_stream", "_transport", "_ws")

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, stream: AbstractStreamWriter
    ) -> None:
        # Kept, not looked up per write: once the connection is lost the transport says it
        # is closing (aiohttp's request forgets it instead).
        self._transport = request.transport
        self._protocol = request.protocol
        self._ws = ws
        self._stream = stream

    def _open(self) -> asyncio.Transport:
        transport = self._transport
        # Once aiohttp has sent a Close (or started to), no data frame may follow it.
        if transport is None or transport.is_closing() or self._ws.closed:
            raise ConnectionResetError("the connection is closed")
        return transport

    def write(self, messages: list[bytes]) -> None:
        transport = self._open()
        if len(messages) == 1:  # what a reader gets at human speed: one frame per turn
            message = messages[0]
            transport.write(_binary_frame_header(len(message)) + message)
            return
        parts: list[bytes] = []
        for message in messages:
            parts.append(_binary_frame_header(len(message)))
            parts.append(message)
        transport.write(b"".join(parts))

    def blocked(self) -> bool:
        # Asked right after a write: a write that failed left the transport closing, and
        # the next write says so.
        return self._protocol.writing_paused

    async def drain(self) -> None:
        await self._stream.drain()

    async def close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(
                self._ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT
            )
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()
