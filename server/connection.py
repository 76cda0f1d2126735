"""One client connection, independent of the transport that carries its frames.

The room talks to a :class:`Connection` only through ``send`` and ``close``; the transport
supplies the two coroutines that really write to the socket. Outgoing frames wait in a
bounded outbox drained by one sender task, so a slow reader never blocks the room or the
other peers: when its outbox overflows it is disconnected instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from . import metrics
from .contract import CloseCode
from .protocol import encode_saved

log = logging.getLogger("tandem.connection")

SendFrame = Callable[[bytes], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]

_ids = itertools.count(1)


class Connection:
    def __init__(
        self,
        doc: str,
        send_frame: SendFrame,
        close_socket: CloseSocket,
        *,
        wants_ack: bool = False,
        read_only: bool = False,
        outbox_limit: int = 16 * 1024 * 1024,
        remote: str = "?",
    ) -> None:
        self.id = next(_ids)
        self.doc = doc
        self.wants_ack = wants_ack
        # Read-only connections see everything but their edits never touch the document.
        self.read_only = read_only
        self.told_read_only = False
        self.remote = remote
        self._send_frame = send_frame
        self._close_socket = close_socket
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._outbox_limit = outbox_limit
        self._ready = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self.closed = False
        self._finished = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._writing = False
        self._interrupted = False
        self.last_sent = time.monotonic()
        # Update-bearing messages (sync step 2 and update) received, and how many are durable.
        self.updates_received = 0
        self.acked = 0
        # Awareness client ids this connection introduced: removed when it goes.
        self.awareness_ids: set[int] = set()

    def __repr__(self) -> str:
        return f"<Connection #{self.id} {self.remote} doc={self.doc!r}>"

    # --- outgoing ------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Queue one frame; never blocks. Overflowing the outbox closes the connection."""
        if self.closed or self._close_request is not None:
            return
        if self._outbox and self._outbox_bytes + len(frame) > self._outbox_limit:
            log.warning(
                "%r is not reading: %d bytes queued; disconnecting", self, self._outbox_bytes
            )
            self.close(CloseCode.policyViolation, "outgoing buffer overflow")
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        metrics.MESSAGES_OUT.inc()
        metrics.BYTES_OUT.inc(len(frame))
        self.last_sent = time.monotonic()
        self._ready.set()

    def close(self, code: int, reason: str = "") -> None:
        """Ask the sender task to close the socket; what is queued before is dropped."""
        if self._close_request is None and not self.closed:
            self._close_request = (code, reason)
            metrics.CLOSES.labels(str(int(code))).inc()
            self._outbox.clear()
            self._outbox_bytes = 0
            self._ready.set()
            # A sender stuck writing to a peer that does not read would never get to the close.
            if self._writing and self._sender is not None:
                self._interrupted = True
                self._sender.cancel()

    @property
    def outbox_bytes(self) -> int:
        return self._outbox_bytes

    @property
    def outbox_frames(self) -> int:
        return len(self._outbox)

    def acknowledge(self, count: int) -> None:
        """``count`` update-bearing messages of this connection are committed."""
        if count > self.acked:
            self.acked = count
            if self.wants_ack:
                self.send(encode_saved(count))

    async def run_sender(self) -> None:
        """Drain the outbox into the socket until closed."""
        self._sender = asyncio.current_task()
        try:
            while True:
                if self._close_request is not None:
                    code, reason = self._close_request
                    await self._close_socket(code, reason)
                    return
                if not self._outbox:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                frame = self._outbox.popleft()
                self._outbox_bytes -= len(frame)
                self._writing = True
                try:
                    await self._send_frame(frame)
                except asyncio.CancelledError:
                    if not self._interrupted:
                        raise  # a real cancellation, not our own interruption of the write
                    self._interrupted = False
                    if self._sender is not None:
                        self._sender.uncancel()
                finally:
                    self._writing = False
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-write; the receive side sees the close and cleans up.
            log.debug("%r: send failed: %s", self, exc)
        finally:
            self.closed = True
            self._outbox.clear()
            self._outbox_bytes = 0
            self._finished.set()

    async def wait_closed(self) -> None:
        await self._finished.wait()
