"""One client connection, independent of the transport that carries its frames.

The room talks to a :class:`Connection` only through its methods (``send``, ``count_update``,
``acknowledge``, ``deny_edits``, ``close``) and reads ``id``, ``read_only`` and ``subject``; the
transport supplies a :class:`FrameSink` that really writes to the socket.

Frames queued during one event-loop turn are written together at the end of that turn, in
one socket write, straight from the loop (no task wake-up per frame): a reader of a busy
room gets dozens of frames per turn. When the socket's buffer is full the connection is
*blocked*: frames wait in a bounded outbox while its sender task awaits the drain, so a
slow reader never blocks the room or the other peers; when the outbox overflows the reader
is disconnected instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from . import metrics
from .contract import CloseCode
from .protocol import encode_permission_denied, encode_saved

log = logging.getLogger("tandem.connection")

CloseSocket = Callable[[int, str], Awaitable[None]]

_ids = itertools.count(1)
# Bytes handed to one write at most, so a backlog is written in bounded steps.
WRITE_CHUNK = 256 * 1024


class FrameSink(Protocol):
    """What the transport provides to write binary messages."""

    def write(self, messages: list[bytes]) -> None:
        """Write these messages, one WebSocket frame each, without blocking; raises
        ConnectionError if the socket is gone."""

    def blocked(self) -> bool:
        """Whether the socket's buffer is over its high-water mark."""

    async def drain(self) -> None:
        """Wait until the socket's buffer is below its low-water mark."""


class Connection:
    def __init__(
        self,
        doc: str,
        sink: FrameSink,
        close_socket: CloseSocket,
        *,
        wants_ack: bool = False,
        read_only: bool = False,
        outbox_limit: int = 16 * 1024 * 1024,
        remote: str = "?",
        subject: str | None = None,
    ) -> None:
        self.id = next(_ids)
        self.doc = doc
        self.wants_ack = wants_ack
        # Read-only connections see everything but their edits never touch the document.
        self.read_only = read_only
        # Who holds its token (its ``sub``): the author of what it writes (server.authorship).
        self.subject = subject
        self._told_read_only = False
        self.remote = remote
        self._sink = sink
        self._close_socket = close_socket
        self._loop = asyncio.get_running_loop()
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._outbox_limit = outbox_limit
        self._flush_scheduled = False
        # The socket's buffer is full: the sender task drains it, then flushes the outbox.
        self._blocked = False
        # The socket failed under a write: nothing more can be sent.
        self._broken = False
        self._ack_due = False
        self._ready = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self.closed = False
        self._finished = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._draining = False
        self._interrupted = False
        self.last_sent = time.monotonic()
        # Update-bearing messages (sync step 2 and update) received, and how many are durable.
        self._updates_received = 0
        self.acked = 0
        # The highest message number committed, and those held back from the ack (updates
        # that wait for what they build on: stored only once that arrives).
        self._committed = 0
        self._held_acks: set[int] = set()

    def __repr__(self) -> str:
        return f"<Connection #{self.id} {self.remote} doc={self.doc!r}>"

    # --- outgoing ------------------------------------------------------------------------

    def _closing(self) -> bool:
        return self.closed or self._broken or self._close_request is not None

    @property
    def closing(self) -> bool:
        """Whether the connection is closed or asked to close: nothing it sends counts."""
        return self._closing()

    def send(self, frame: bytes) -> None:
        """Queue one frame; never blocks. Overflowing the outbox closes the connection."""
        if self._close_request is not None or self._broken or self.closed:
            return
        if self._outbox and self._outbox_bytes + len(frame) > self._outbox_limit:
            log.warning(
                "%r is not reading: %d bytes queued; disconnecting", self, self._outbox_bytes
            )
            self.close(CloseCode.policyViolation, "outgoing buffer overflow")
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        if not self._flush_scheduled and not self._blocked:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def count_update(self) -> int:
        """One more update-bearing message from this client; returns its number (what its
        "saved" ack will carry once it is durable)."""
        self._updates_received += 1
        return self._updates_received

    def deny_edits(self, reason: str) -> None:
        """Tell the client, once, that its edits are not applied (y-protocols' auth message)."""
        if not self._told_read_only:
            self._told_read_only = True
            self.send(encode_permission_denied(reason))

    def acknowledge(self, count: int) -> None:
        """The update-bearing message numbered ``count`` is committed (and every earlier one
        that is not held).

        The ack is cumulative: it never passes a message that is held (see :meth:`hold_ack`),
        and the acks of one turn go out as one frame (the last)."""
        if count > self._committed:
            self._committed = count
        ack = self._committed
        if self._held_acks:
            ack = min(ack, min(self._held_acks) - 1)
        if ack > self.acked:
            self.acked = ack
            if self.wants_ack and not self._ack_due and not self._closing():
                self._ack_due = True
                self._schedule_flush()

    def hold_ack(self, count: int) -> None:
        """Message ``count`` is not committed yet, though later ones may be: no ack passes it
        until :meth:`release_ack`."""
        self._held_acks.add(count)

    def release_ack(self, count: int) -> None:
        """Message ``count`` is committed, or refused for good: acks may pass it now."""
        self._held_acks.discard(count)
        self.acknowledge(count)

    def close(self, code: int, reason: str = "") -> None:
        """Ask the sender task to close the socket; what is queued before is dropped."""
        if self._close_request is None and not self.closed:
            self._close_request = (code, reason)
            metrics.CLOSES.labels(str(int(code))).inc()
            self._drop_outbox()
            self._ready.set()
            # A sender stuck draining a peer that does not read would never get to the close.
            if self._draining and self._sender is not None:
                self._interrupted = True
                self._sender.cancel()

    @property
    def outbox_frames(self) -> int:
        return len(self._outbox)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._blocked:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write what is queued, unless the socket's buffer is full (then the sender drains)."""
        self._flush_scheduled = False
        if self._closing():
            return
        if self._ack_due:
            self._ack_due = False
            frame = encode_saved(self.acked)
            self._outbox.append(frame)
            self._outbox_bytes += len(frame)
        if self._blocked:
            return
        self.last_sent = time.monotonic()
        try:
            while self._outbox:
                self._sink.write(self._take_batch())
                if self._sink.blocked():
                    self._blocked = True
                    self._ready.set()
                    return
        except ConnectionError as exc:
            # The peer went away; the receive side sees the close and cleans up.
            log.debug("%r: write failed: %s", self, exc)
            self._broken = True
            self._drop_outbox()
            self._ready.set()

    def _take_batch(self) -> list[bytes]:
        outbox = self._outbox
        batch = [outbox.popleft()]
        size = len(batch[0])
        while outbox and size < WRITE_CHUNK:
            frame = outbox.popleft()
            batch.append(frame)
            size += len(frame)
        self._outbox_bytes -= size
        traffic = metrics.TRAFFIC
        traffic.messages_out += len(batch)
        traffic.bytes_out += size
        return batch

    def _drop_outbox(self) -> None:
        self._outbox.clear()
        self._outbox_bytes = 0
        self._ack_due = False

    async def run_sender(self) -> None:
        """Wait out full socket buffers and carry out the close, until closed."""
        self._sender = asyncio.current_task()
        try:
            while True:
                if self._broken:
                    return
                if self._close_request is not None:
                    code, reason = self._close_request
                    await self._close_socket(code, reason)
                    return
                if not self._blocked:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                self._draining = True
                try:
                    await self._sink.drain()
                except asyncio.CancelledError:
                    if not self._interrupted:
                        raise  # a real cancellation, not our own interruption of the drain
                    self._interrupted = False
                    if self._sender is not None:
                        self._sender.uncancel()
                finally:
                    self._draining = False
                self._blocked = False
                self._flush()
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-drain; the receive side sees the close and cleans up.
            log.debug("%r: send failed: %s", self, exc)
        finally:
            self.closed = True
            self._drop_outbox()
            self._finished.set()

    async def wait_closed(self) -> None:
        await self._finished.wait()
