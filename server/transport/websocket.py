"""aiohttp's WebSocket response as the endpoint uses it: its own closes never drop the TCP
connection early, and a binary message can go to its room straight from the socket read.

aiohttp queues every received message and wakes the handler's task for it: with many rooms
typing at human speed that wake-up (one more event-loop turn, and the resumption of the
handler's whole coroutine chain, middlewares included) costs more than the room's own work on
the message. A :class:`DirectQueue` hands binary messages to a callback instead, from inside
the read; whatever else arrives (text, close, errors), and anything behind a message still
queued, takes aiohttp's way, in order.

aiohttp has no public hook for this: the queue's class lives in ``aiohttp._websocket.reader``
and :meth:`WebSocket._post_start` is aiohttp 3.14's own, with our queue in it. On any other
aiohttp the response is aiohttp's own and every message goes through ``receive()``: slower,
never wrong (``tests/test_wire.py`` says which path this aiohttp takes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

Deliver = Callable[[bytes], None]

# The aiohttp whose _post_start the override below repeats.
DIRECT_DELIVERY = aiohttp.__version__.split(".")[:2] == ["3", "14"]


class DirectQueue(WebSocketDataQueue):  # type: ignore[misc]
    """aiohttp's queue of received messages, which gives binary ones to ``deliver`` once set."""

    __slots__ = ("deliver",)

    def __init__(self, protocol: Any, limit: int, *, loop: Any) -> None:
        super().__init__(protocol, limit, loop=loop)
        self.deliver: Deliver | None = None

    def feed_data(self, data: Any, size: int) -> None:
        deliver = self.deliver
        # Only with nothing queued: a message never overtakes one that waits for receive().
        if deliver is not None and data[0] is WSMsgType.BINARY and not self._buffer:
            deliver(data[1])
        else:
            super().feed_data(data, size)


class WebSocket(web.WebSocketResponse):
    """aiohttp's response, with a :class:`DirectQueue` for what it receives, and closes that
    never drop the TCP connection early.

    After an oversize message aiohttp sends the close frame (1009) and drops the connection at
    once, while the client is still sending the rest: the kernel then resets the connection,
    the client's unread close frame is lost, and it sees 1006. The endpoint lingers instead
    (aiohttp discards what still arrives) and the connection is closed when the handler
    returns, as after every other close.
    """

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        if not DIRECT_DELIVERY:
            super()._post_start(request, protocol, writer)
            return
        # aiohttp 3.14's, but for the queue's class.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        loop = self._loop
        assert loop is not None
        self._reader = DirectQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = WebSocketReader(
            self._reader,
            self._max_msg_size,
            compress=bool(self._compress),
            decode_text=self._decode_text,
        )
        cb = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=cb)
        request.protocol.keep_alive(False)
        # What the socket no longer needs, held for its whole life otherwise (thousands of
        # idle sockets): the HTTP parser (aiohttp reads no HTTP once upgraded, and checks for
        # None where it could), the queue of parsed HTTP requests (empty from now on: aiohttp
        # only tests and measures it once upgraded; a tuple, so an append would fail loudly)
        # and the writer's masking source (a server never masks).
        http = request.protocol
        http._parser = None
        assert not http._messages
        http._messages = ()
        del writer.get_random_bits

    def _close_transport(self) -> None:
        return

    @property
    def direct_queue(self) -> DirectQueue | None:
        """The queue, if binary messages can be delivered from the read."""
        queue = self._reader
        return queue if isinstance(queue, DirectQueue) else None
