"""A lean WebSocket client for load generation: one process, many sockets, no framework.

Each :class:`WSClient` is an asyncio protocol that parses server frames straight out of
``data_received`` (one clock reading per read, not per frame) and hands every binary message
to its ``on_message`` callback. Sends are pre-encoded frames written to the transport as they
are (see :mod:`bench.wire`), so the cost of generating load stays far below the server's.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import struct
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from . import wire

OnMessage = Callable[["WSClient", bytes, float], None]
# A "saved" ack: the client, the count it carries, when it arrived.
OnAck = Callable[["WSClient", int, float], None]

_HANDSHAKE_END = b"\r\n\r\n"


def raise_nofile_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _ignore(client: WSClient, message: bytes, now: float) -> None:
    return None


class WSClient(asyncio.Protocol):
    """A y-protocols peer over a raw WebSocket.

    Answers the server's sync step 1 with an empty step 2 (as a y-websocket provider with an
    empty document does), records when its own step 2 arrives (``synced_at``), counts
    Tandem's "saved" acks, answers pings, and passes every other binary message on.
    """

    def __init__(self, url: str, on_message: OnMessage = _ignore, *, tag: object = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.on_message = on_message
        self.on_ack: OnAck | None = None
        self.tag = tag
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = asyncio.Event()
        self.synced = asyncio.Event()
        self.synced_at = 0.0
        self.sync_payload: bytes = b""
        self.acked = 0
        self.acked_at = 0.0
        self._ack = asyncio.Event()
        self.received = 0  # binary messages
        self.received_bytes = 0
        self.update_bearing_sent = 0

    # --- connecting ----------------------------------------------------------------------

    async def open(self, timeout: float = 30) -> WSClient:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.create_connection(lambda: self, self.host, self.port), timeout=timeout
        )
        await asyncio.wait_for(self._opened, timeout=timeout)
        return self

    async def join(self, timeout: float = 60) -> WSClient:
        """Open, send sync step 1 with an empty state vector and wait for the step 2."""
        await self.open(timeout)
        self.send(wire.step1())
        await asyncio.wait_for(self.synced.wait(), timeout=timeout)
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.target} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"connection lost: {exc}"))
        self._can_write.set()
        self.closed.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- sending -------------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """Send one y-protocols message (encoded into a frame here)."""
        if wire.is_update_bearing(message):
            self.update_bearing_sent += 1
        self.write_frames(wire.client_frame(message))

    def write_frames(self, frames: bytes, update_bearing: int = 0) -> None:
        """Write already-encoded frames (``update_bearing`` of them count for acks)."""
        self.update_bearing_sent += update_bearing
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frames)

    async def wait_all_acked(self, timeout: float) -> bool:
        """Wait until every update-bearing message sent so far is acked (Tandem's extension)."""
        try:
            async with asyncio.timeout(timeout):
                while self.acked < self.update_bearing_sent:
                    self._ack.clear()
                    await self._ack.wait()
        except TimeoutError:
            return False
        return True

    async def drain(self) -> None:
        await self._can_write.wait()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(wire.close_frame())
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- receiving -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(_HANDSHAKE_END)
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status + b" ":
                self._opened.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self._upgraded = True
            self._opened.set_result(None)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if b1 & 0x80:  # a masked server frame is a protocol error; we never expect one
                head += 4
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            pos = end
            self._frame(b0, payload, now)
        if pos:
            del buf[:pos]

    def _frame(self, b0: int, payload: bytes, now: float) -> None:
        opcode = b0 & 0x0F
        final = b0 & 0x80
        if opcode == wire.OP_CONT or not final:
            if opcode != wire.OP_CONT:
                self._fragment_opcode = opcode
            self._fragments.append(payload)
            if not final:
                return
            payload = b"".join(self._fragments)
            opcode = self._fragment_opcode
            self._fragments = []
        if opcode == wire.OP_BINARY:
            self._message(payload, now)
        elif opcode == wire.OP_PING:
            self.write_frames(wire.client_frame(payload, wire.OP_PONG))
        elif opcode == wire.OP_CLOSE:
            if self.transport is not None:
                self.transport.close()

    def _message(self, message: bytes, now: float) -> None:
        self.received += 1
        self.received_bytes += len(message)
        kind = message[0]
        if kind == wire.SYNC:
            step = message[1]
            if step == wire.STEP1:
                self.send(wire.step2())
                return
            if step == wire.STEP2 and not self.synced.is_set():
                self.synced_at = now
                self.sync_payload = wire.sync_payload(message)
                self.synced.set()
                return
        elif kind == wire.SAVED:
            self.acked = wire.saved_count(message)
            self.acked_at = now
            self._ack.set()
            if self.on_ack is not None:
                self.on_ack(self, self.acked, now)
            return
        self.on_message(self, message, now)


async def open_many(
    urls: Iterable[tuple[str, object]],
    on_message: OnMessage = _ignore,
    *,
    concurrency: int = 64,
    join: bool = True,
) -> list[WSClient]:
    """Open (and sync) one client per (url, tag), ``concurrency`` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str, tag: object) -> WSClient:
        async with gate:
            client = WSClient(url, on_message, tag=tag)
            return await (client.join() if join else client.open())

    return list(await asyncio.gather(*(one(url, tag) for url, tag in urls)))


def close_all(clients: Iterable[WSClient]) -> None:
    for client in clients:
        client.close()


def cpu_seconds() -> float:
    """CPU time of this process (the load generator) so far."""
    t = os.times()
    return t.user + t.system
