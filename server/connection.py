"""One client connection, independent of the transport that carries its frames.

The room talks to a :class:`Connection` only through its methods (``send``, ``count_update``,
``acknowledge``, ``deny_edits``, ``close``) and reads ``id``, ``read_only`` and ``subject``; the
transport supplies a :class:`FrameSink` that really writes to the socket.

Frames queued during one event-loop turn are written together at the start of the next turn,
in one socket write per connection, by one callback for every connection that has frames (no
task wake-up, no callback per connection): a reader of a busy room gets dozens of frames per
turn. When the socket's buffer is full the connection is *blocked*: frames wait in a bounded
outbox while a task awaits the drain, so a slow reader never blocks the room or the other
peers; when the outbox overflows the reader is disconnected instead. That task exists only
while a connection drains or closes: an idle connection holds no task, event or queue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from typing import Protocol

from . import metrics
from .contract import CloseCode
from .protocol import encode_permission_denied, encode_saved

log = logging.getLogger("tandem.connection")

_ids = itertools.count(1)
# RFC 6455's "normal closure": what the server says when the client is leaving anyway.
NORMAL_CLOSURE = 1000
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

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with this code and reason (dropping it if the peer does not
        answer in time)."""


class _Turn:
    """The connections with frames queued in this event-loop turn, flushed by one callback
    at the start of the next turn (one per loop: tests run several loops in one process)."""

    __slots__ = ("_due", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Connection] = []

    def add(self, conn: Connection) -> None:
        if not self._due:
            self._loop.call_soon(self._flush)
        self._due.append(conn)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for conn in due:
            conn._flush()


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()


def _turn() -> _Turn:
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = _Turn(loop)
    return turn


class Connection:
    # Thousands of these live at once: no per-instance dict.
    __slots__ = (
        "__weakref__",
        "_ack_due",
        "_blocked",
        "_broken",
        "_close_request",
        "_committed",
        "_draining",
        "_finished",
        "_held_acks",
        "_interrupted",
        "_outbox",
        "_outbox_bytes",
        "_outbox_limit",
        "_scheduled",
        "_sender",
        "_sink",
        "_told_read_only",
        "_turn",
        "_updates_received",
        "acked",
        "closed",
        "doc",
        "id",
        "last_sent",
        "read_only",
        "remote",
        "subject",
        "wants_ack",
    )

    def __init__(
        self,
        doc: str,
        sink: FrameSink,
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
        self._turn = _turn()
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        self._outbox_limit = outbox_limit
        # In this turn's flush already.
        self._scheduled = False
        # The socket's buffer is full: the sender task drains it, then flushes the outbox.
        self._blocked = False
        # The socket failed under a write: nothing more can be sent.
        self._broken = False
        self._ack_due = False
        self._close_request: tuple[int, str] | None = None
        self.closed = False
        # Resolved once closed; made only for whoever waits.
        self._finished: asyncio.Future[None] | None = None
        # Drains a full socket buffer and carries out the close; only while it has to.
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
        self._held_acks: set[int] | None = None

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
        if not self._scheduled and not self._blocked:
            self._scheduled = True
            self._turn.add(self)

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
                if not self._scheduled and not self._blocked:
                    self._scheduled = True
                    self._turn.add(self)

    def hold_ack(self, count: int) -> None:
        """Message ``count`` is not committed yet, though later ones may be: no ack passes it
        until :meth:`release_ack`."""
        if self._held_acks is None:
            self._held_acks = set()
        self._held_acks.add(count)

    def release_ack(self, count: int) -> None:
        """Message ``count`` is committed, or refused for good: acks may pass it now."""
        if self._held_acks is not None:
            self._held_acks.discard(count)
        self.acknowledge(count)

    def close(self, code: int, reason: str = "") -> None:
        """Close the socket (in a task of its own); what is queued before is dropped."""
        if self._close_request is None and not self.closed:
            self._close_request = (code, reason)
            metrics.CLOSES.labels(str(int(code))).inc()
            self._drop_outbox()
            if self._sender is None:
                self._start_sender()
            elif self._draining:
                # A sender stuck draining a peer that does not read would never get to the
                # close.
                self._interrupted = True
                self._sender.cancel()

    @property
    def outbox_frames(self) -> int:
        return len(self._outbox)

    def _flush(self) -> None:
        """Write what is queued, unless the socket's buffer is full (then the sender drains)."""
        self._scheduled = False
        if self._closing():
            return
        if self._ack_due:
            self._ack_due = False
            frame = encode_saved(self.acked)
            self._outbox.append(frame)
            self._outbox_bytes += len(frame)
        if self._blocked or not self._outbox:
            return
        self.last_sent = time.monotonic()
        sink = self._sink
        try:
            while self._outbox:
                sink.write(self._take_batch())
                if sink.blocked():
                    self._blocked = True
                    if self._sender is None:
                        self._start_sender()
                    return
        except ConnectionError as exc:
            # The peer went away; the receive side sees the close and cleans up.
            log.debug("%r: write failed: %s", self, exc)
            self._broken = True
            self._drop_outbox()

    def _take_batch(self) -> list[bytes]:
        outbox = self._outbox
        if self._outbox_bytes <= WRITE_CHUNK:
            batch, self._outbox = outbox, []
            size = self._outbox_bytes
        else:
            size = 0
            count = 0
            for frame in outbox:
                size += len(frame)
                count += 1
                if size >= WRITE_CHUNK:
                    break
            batch = outbox[:count]
            del outbox[:count]
        self._outbox_bytes -= size
        traffic = metrics.TRAFFIC
        traffic.messages_out += len(batch)
        traffic.bytes_out += size
        return batch

    def _drop_outbox(self) -> None:
        self._outbox = []
        self._outbox_bytes = 0
        self._ack_due = False

    def _start_sender(self) -> None:
        self._sender = asyncio.get_running_loop().create_task(
            self._run_sender(), name=f"tandem-send-{self.id}"
        )

    async def _run_sender(self) -> None:
        """Wait out a full socket buffer, then flush; carry out the close once asked."""
        try:
            while True:
                if self._broken:
                    self._finish()
                    return
                if self._close_request is not None:
                    code, reason = self._close_request
                    await self._sink.close(code, reason)
                    self._finish()
                    return
                if not self._blocked:
                    return  # drained and flushed: the connection goes on without a task
                self._draining = True
                try:
                    await self._sink.drain()
                except asyncio.CancelledError:
                    if not self._interrupted:
                        raise  # a real cancellation, not our own interruption of the drain
                    self._interrupted = False
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                finally:
                    self._draining = False
                self._blocked = False
                self._flush()
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-drain; the receive side sees the close and cleans up.
            log.debug("%r: send failed: %s", self, exc)
            self._finish()
        except BaseException:
            self._finish()
            raise
        finally:
            self._sender = None

    def _finish(self) -> None:
        self.closed = True
        self._drop_outbox()
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    async def finish(self, timeout: float) -> None:
        """The client is gone or going: close the socket if nobody has yet, and wait up to
        ``timeout`` seconds for that; the connection is closed afterwards whatever happened."""
        if not self._broken:
            self.close(NORMAL_CLOSURE, "")
        sender = self._sender
        try:
            if sender is not None:
                await asyncio.wait_for(asyncio.shield(sender), timeout)
        except TimeoutError:
            sender.cancel()  # type: ignore[union-attr]
        finally:
            self._finish()

    async def wait_closed(self) -> None:
        if self.closed:
            return
        if self._finished is None:
            self._finished = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._finished)
