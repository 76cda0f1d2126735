"""The WebSocket endpoint: with the frame writer, the only code that touches aiohttp's WebSocket.

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
from .admission import admit, leave
from .frame_writer import FrameWriter

log = logging.getLogger("tandem.transport")

# After an oversize message, how long the client may go on sending before the TCP connection
# is dropped under it.
LINGER_SECONDS = 5.0


class _WebSocketResponse(web.WebSocketResponse):
    """aiohttp's, except that its own closes never drop the TCP connection early.

    After an oversize message aiohttp sends the close frame (1009) and drops the connection at
    once, while the client is still sending the rest: the kernel then resets the connection,
    the client's unread close frame is lost, and it sees 1006. The endpoint lingers instead
    (aiohttp discards what still arrives) and the connection is closed when the handler
    returns, as after every other close.
    """

    def _close_transport(self) -> None:
        return


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    name = request.match_info.get("name", "")
    ws = _WebSocketResponse(
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
    grant = admission.grant
    assert grant is not None
    metrics.CONNECTIONS.inc()
    try:
        await _serve(
            request,
            ws,
            stream,
            name,
            read_only=grant.role < Role.write,
            expires_at=grant.expires_at,
            subject=grant.subject,
        )
    finally:
        leave(request, admission)
        metrics.CONNECTIONS.dec()
    return ws


async def _serve(
    request: web.Request,
    ws: web.WebSocketResponse,
    stream: AbstractStreamWriter,
    name: str,
    *,
    read_only: bool,
    expires_at: float | None,
    subject: str | None,
) -> None:
    settings = request.app[SETTINGS]
    rooms = request.app[ROOMS]

    async def close_socket(code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:120]), timeout=5)
        except TimeoutError:
            # The peer does not read even the close frame: drop the TCP connection.
            if request.transport is not None:
                request.transport.abort()

    conn = Connection(
        name,
        FrameWriter(request, ws, stream),
        close_socket,
        wants_ack=request.query.get(ACK_QUERY_PARAM) == "1",
        read_only=read_only,
        outbox_limit=settings.outbox_limit,
        remote=request.remote or "?",
        subject=subject,
    )
    sender = asyncio.create_task(conn.run_sender(), name=f"tandem-send-{conn.id}")
    expiry: asyncio.TimerHandle | None = None
    if expires_at is not None:
        # A token is good for the life of the socket only until it expires.
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(
            loop.time() + max(0.0, expires_at - time.time()),
            conn.close,
            CloseCode.unauthorized,
            "token expired",
        )
    try:
        try:
            room = await rooms.acquire(name, request.remote or "?")
        except RoomLoadError as exc:
            conn.close(CloseCode.serverError, "document could not be loaded")
            log.error("%r refused: %s", conn, exc)
            await sender
            return
        except (RoomsFull, TooManyNewRooms) as exc:
            conn.close(CloseCode.tryAgainLater, "server busy, try again later")
            log.warning("%r refused: %s", conn, exc)
            await sender
            return
        if conn.closing:  # the token expired while the document loaded
            await sender
            return
        room.join(conn)
        try:
            await _receive_loop(request, ws, conn, room, settings)
        finally:
            room.leave(conn)
            rooms.release(room)
    finally:
        if expiry is not None:
            expiry.cancel()
        if not sender.done():
            conn.close(WSCloseCode.OK, "")
            try:
                await asyncio.wait_for(sender, timeout=5)
            except TimeoutError:
                sender.cancel()


async def _receive_loop(
    request: web.Request,
    ws: web.WebSocketResponse,
    conn: Connection,
    room: Room,
    settings: Settings,
) -> None:
    bucket = TokenBucket(settings.message_rate, settings.message_burst)
    traffic = metrics.TRAFFIC
    first = True
    while True:
        try:
            msg = await ws.receive(timeout=settings.first_message_timeout if first else None)
        except TimeoutError:
            log.warning("%r sent nothing for %ss; closing", conn, settings.first_message_timeout)
            conn.close(CloseCode.policyViolation, "no message after connecting")
            return
        first = False
        if conn.closing:
            # Closed by the server (token expired, document deleted...): nothing more of this
            # client reaches the room.
            return
        if msg.type is WSMsgType.BINARY:
            traffic.messages_in += 1
            traffic.bytes_in += len(msg.data)
            if not bucket.take():
                log.warning("%r exceeded %s messages/s; closing", conn, settings.message_rate)
                conn.close(CloseCode.policyViolation, "message rate limit exceeded")
                return
            try:
                room.receive(conn, msg.data)
            except ProtocolError as exc:
                log.warning("%r closed (%d): %s", conn, exc.close_code, exc)
                conn.close(exc.close_code, str(exc))
                return
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


async def _linger(request: web.Request) -> None:
    """Let a client that is still sending an oversize message read our close frame: aiohttp
    discards what arrives until the client closes, or ``LINGER_SECONDS`` pass."""
    deadline = time.monotonic() + LINGER_SECONDS
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)
