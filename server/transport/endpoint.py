"""The WebSocket endpoint: with the frame writer and :mod:`.websocket`, the only code that
touches aiohttp's WebSocket.

It turns a socket into a :class:`Connection`, waits for the room to be loaded before it reads
a single message, feeds frames to the room and closes with the contract's codes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from aiohttp.abc import AbstractStreamWriter

from .. import metrics
from ..appkeys import ROOMS, SETTINGS
from ..auth import Role
from ..config import Settings
from ..connection import Connection
from ..contract import ACK_QUERY_PARAM, CloseCode
from ..limits import TokenBucket
from ..names import BadDocumentName, check_document_name
from ..protocol import ProtocolError
from ..room import Room
from ..rooms import RoomLoadError, RoomsFull, TooManyNewRooms
from .admission import Admission, admit, leave
from .frame_writer import CLOSE_TIMEOUT, FrameWriter
from .websocket import WebSocket

log = logging.getLogger("tandem.transport")

# After an oversize message, how long the client may go on sending before the TCP connection
# is dropped under it.
LINGER_SECONDS = 5.0


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    name = request.match_info.get("name", "")
    ws = WebSocket(
        max_msg_size=settings.max_message_size,
        compress=False,  # permessage-deflate costs CPU on every frame; updates are small
        heartbeat=None,  # we send frames JavaScript can see instead (see keepalive_loop)
    )
    if not ws.can_prepare(request).ok:
        try:
            check_document_name(name)
        except BadDocumentName as exc:
            raise web.HTTPBadRequest(text=f"bad document name: {exc}\n") from exc
        raise web.HTTPBadRequest(text="this endpoint speaks WebSocket (y-protocols) only\n")

    admission = admit(request, name)
    try:
        stream = await ws.prepare(request)
    except ConnectionError as exc:  # the client left during the handshake
        log.info("%s left during the handshake: %s", admission.address, exc)
        leave(request, admission)
        return ws
    if admission.refusal is not None:
        code, reason = admission.refusal
        log.info("refused %s for %r: %s", admission.address, name, reason)
        await ws.close(code=code, message=reason.encode()[:120])
        return ws
    metrics.CONNECTIONS.inc()
    try:
        await _serve(request, ws, stream, name, admission)
    finally:
        leave(request, admission)
        metrics.CONNECTIONS.dec()
    return ws


async def _serve(
    request: web.Request,
    ws: WebSocket,
    stream: AbstractStreamWriter,
    name: str,
    admission: Admission,
) -> None:
    settings = request.app[SETTINGS]
    rooms = request.app[ROOMS]
    grant = admission.grant
    assert grant is not None
    conn = Connection(
        name,
        FrameWriter(request, ws, stream),
        wants_ack=request.query.get(ACK_QUERY_PARAM) == "1",
        read_only=grant.role < Role.write,
        outbox_limit=settings.outbox_limit,
        remote=admission.address,
        subject=grant.subject,
    )
    expiry: asyncio.TimerHandle | None = None
    if grant.expires_at is not None:
        # A token is good for the life of the socket only until it expires.
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(
            loop.time() + max(0.0, grant.expires_at - time.time()),
            conn.close,
            CloseCode.unauthorized,
            "token expired",
        )
    try:
        try:
            room = await rooms.acquire(name, admission.address)
        except RoomLoadError as exc:
            conn.close(CloseCode.serverError, "document could not be loaded")
            log.error("%r refused: %s", conn, exc)
            return
        except (RoomsFull, TooManyNewRooms) as exc:
            conn.close(CloseCode.tryAgainLater, "server busy, try again later")
            log.warning("%r refused: %s", conn, exc)
            return
        if conn.closing:  # the token expired while the document loaded
            return
        room.join(conn)
        inbound = _Inbound(conn, room, settings)
        queue = ws.direct_queue
        try:
            # Read until the client or the server closes (here, not in a coroutine of its own:
            # one frame fewer for each of thousands of connections). The first message comes
            # through receive(), which gives it a deadline; binary ones after it straight from
            # the socket read where aiohttp allows (the queue, see .websocket), the rest
            # through receive().
            first = True
            while True:
                try:
                    timeout = settings.first_message_timeout if first else None
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    log.warning("%r sent nothing for %ss; closing", conn, timeout)
                    conn.close(CloseCode.policyViolation, "no message after connecting")
                    return
                first = False
                if conn.closing:
                    return
                if msg.type is WSMsgType.BINARY:
                    inbound.binary(msg.data)
                    if conn.closing:
                        return
                    if queue is not None:
                        queue.deliver = inbound.binary
                elif msg.type is WSMsgType.TEXT:
                    log.warning("%r sent a text frame; closing", conn)
                    conn.close(CloseCode.unsupportedData, "binary frames only")
                    return
                elif msg.type is WSMsgType.ERROR:
                    # aiohttp has sent its close frame already (1009 for an oversize message).
                    exc = ws.exception()
                    log.warning("%r: %s", conn, exc)
                    if isinstance(exc, WebSocketError) and exc.code == WSCloseCode.MESSAGE_TOO_BIG:
                        metrics.CLOSES.labels(str(int(CloseCode.messageTooBig))).inc()
                        await _linger(request)
                    return
                else:  # CLOSE, CLOSING, CLOSED
                    return
        finally:
            if queue is not None:
                queue.deliver = None  # out of the room: nothing more goes to it
            room.leave(conn)
            rooms.release(room)
    finally:
        if expiry is not None:
            expiry.cancel()
        await conn.finish(timeout=CLOSE_TIMEOUT)


class _Inbound:
    """A client's binary messages into its room, whichever way they come: from the socket read
    (the direct queue) or from ``receive()``."""

    __slots__ = ("_bucket", "_conn", "_rate", "_room")

    def __init__(self, conn: Connection, room: Room, settings: Settings) -> None:
        self._conn = conn
        self._room = room
        self._rate = settings.message_rate
        self._bucket = TokenBucket(settings.message_rate, settings.message_burst)

    def binary(self, data: bytes) -> None:
        conn = self._conn
        if conn.closing:
            # Closed by the server (token expired, document deleted...): nothing more of this
            # client reaches the room.
            return
        traffic = metrics.TRAFFIC
        traffic.messages_in += 1
        traffic.bytes_in += len(data)
        if not self._bucket.take():
            log.warning("%r exceeded %s messages/s; closing", conn, self._rate)
            conn.close(CloseCode.policyViolation, "message rate limit exceeded")
            return
        try:
            self._room.receive(conn, data)
        except ProtocolError as exc:
            log.warning("%r closed (%d): %s", conn, exc.close_code, exc)
            conn.close(exc.close_code, str(exc))


async def _linger(request: web.Request) -> None:
    """Let a client that is still sending an oversize message read our close frame: aiohttp
    discards what arrives until the client closes, or ``LINGER_SECONDS`` pass."""
    deadline = time.monotonic() + LINGER_SECONDS
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)
