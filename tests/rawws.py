"""A WebSocket client on a bare TCP stream, for tests that must see every frame the server
writes (aiohttp's client stops reading at the first Close) or that stall mid-handshake."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from dataclasses import dataclass

OP_BINARY = 0x2
OP_CLOSE = 0x8

TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class Frame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, host_header: str | None = None):
        reader, writer = await asyncio.open_connection(host, port, limit=64 * 1024 * 1024)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header or f'{host}:{port}'}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no upgrade: {status[:200]!r}")
        return cls(reader, writer)

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        """One masked (client-to-server) final frame."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        body = (
            bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if length < 4096
            else (_mask_fast(payload, mask))
        )
        self.writer.write(header + mask + body)

    async def drain(self) -> None:
        await self.writer.drain()

    async def frame(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        except asyncio.IncompleteReadError:
            return None
        opcode = head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(length)
        return Frame(opcode, payload)

    async def frames_until_end(self) -> list[Frame]:
        frames = []
        while (frame := await self.frame()) is not None:
            frames.append(frame)
        return frames

    def close(self) -> None:
        self.writer.close()


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )
