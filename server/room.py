"""A room: one document's pycrdt Doc, its connected peers and their awareness states.

Every handler here is synchronous, so a message is applied, relayed and queued for storage
in one step: the order peers see is the order the store writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pycrdt import Doc, Text, get_state

from . import metrics
from . import protocol as p
from .authorship import Authorship
from .connection import Connection
from .contract import CONTENT_TEXT, CloseCode
from .exports import NOT_TEXT, indexed_text
from .integrate import InOrder, apply_updates
from .jobs import TextEdit
from .panics import CrdtFailures
from .presence import Presence, PresenceLimits
from .storage import AckCallback, Store
from .updates import EMPTY_UPDATE, UpdateSummary, check_state_vector, check_update

log = logging.getLogger("tandem.room")

# A state vector with no clients: the joiner has nothing yet.
EMPTY_STATE_VECTOR = b"\x00"

# What pycrdt raises (or panics with) for a client's input: that client is closed with 1007.
_UNDECODABLE = CrdtFailures(
    lambda exc: p.ProtocolError(f"pycrdt cannot read it: {exc}", CloseCode.invalidPayload)
)


@dataclass(frozen=True, slots=True)
class RoomLimits:
    presence: PresenceLimits = field(default_factory=PresenceLimits)
    max_pending_updates: int = 1000


class Outbound(Protocol):
    """Who hears of this room's presence besides its peers: the other instances of a cluster
    (:class:`server.cluster.node.Cluster`). Updates reach them through the store instead, once
    committed."""

    def presence(self, room: Room, conn_id: int, update: bytes) -> None: ...

    def left(self, room: Room, conn_id: int) -> None: ...


# What another instance sends has been through the strict reading there and is in the shared
# store already: pycrdt refusing it is the store's fault, never a client's.
_STORED = CrdtFailures(lambda exc: RuntimeError(f"pycrdt cannot read a stored update: {exc}"))


class DocumentDeleted(p.ProtocolError):
    """A client holds items of a deleted incarnation of this document (4410, final)."""

    def __init__(self) -> None:
        super().__init__(
            "this document was deleted; the copy this client holds is of the deleted one",
            CloseCode.documentDeleted,
        )


class MissingDependencies(ValueError):
    """An update from the server's own API builds on what the document lacks: a caller waiting
    for its commit cannot be held until that arrives, so nothing of it is applied."""

    def __init__(self, missing: dict[int, int], state_vector: bytes) -> None:
        shown = ", ".join(f"client {c} from clock {k}" for c, k in sorted(missing.items())[:5])
        super().__init__(
            f"this update builds on changes the document does not have ({shown}): send it "
            "together with what it builds on, e.g. as the update against the document's "
            "state vector"
        )
        self.missing = missing
        self.state_vector = state_vector  # the document's: what to send the update against


class Room:
    def __init__(self, name: str, store: Store, limits: RoomLimits | None = None) -> None:
        self.name = name
        self.store = store
        self.limits = limits or RoomLimits()
        # What goes into the Doc when: updates that wait for what they build on are held
        # there (in memory only: they are stored once they go in), and the Doc's state vector.
        self._order = InOrder()
        self._doc: Doc = Doc()
        # A compacted document (one stored row) is kept as bytes until something needs the
        # Doc: a joiner with an empty state vector gets those bytes as they are, so a cold
        # join costs reading one row instead of integrating the whole document.
        self._snapshot: bytes | None = None
        self._snapshot_state = b""
        self.peers: set[Connection] = set()
        self.presence = Presence(self.limits.presence)
        # Who sent each client id's structs (loaded with the room, see server.authorship).
        self.authors = Authorship(name, store)
        # The state vector of every deleted incarnation of this name: a client holding any of
        # those items holds an old copy, which must never merge into this one.
        self._tombstone: dict[int, int] = {}
        self.unload_task: asyncio.Task[None] | None = None
        # For automatic versions: when it last changed, and whether since the last version.
        self.last_edit_at = time.monotonic()
        self.last_version_at = time.monotonic()
        self.dirty = False
        # Whether anything was written to the document since it was loaded: a room never
        # written to is let go as soon as its last peer leaves.
        self.written = False
        # In a cluster: the sequence number the load read up to, when it was loaded (wall
        # clock, against a deletion announced by another instance), and who hears of presence.
        self.loaded_seq = 0
        self.loaded_at = time.time()
        self.outbound: Outbound | None = None
        # Tells held remote updates apart (their payload is (None, this number)).
        self._remote_seq = 0

    # --- loading ---------------------------------------------------------------------------

    def load(
        self,
        updates: list[bytes],
        snapshot_state: bytes | None = None,
        tombstone: bytes | None = None,
    ) -> None:
        """Take the stored updates; raises if they cannot be read (the room is then unusable).

        ``snapshot_state``: the state vector of a log that is one compacted snapshot, as the
        store recorded it; without it the snapshot is decoded to find it. ``tombstone``: the
        state vector of what was deleted under this name before.
        """
        if tombstone:
            self._tombstone = check_state_vector(tombstone)
        if len(updates) == 1:
            self._snapshot_state = snapshot_state or get_state(updates[0])
            self._snapshot = updates[0]
            self._order.clocks = check_state_vector(self._snapshot_state)
            return
        # The log is stored in the order updates went into the Doc: apply it as it is.
        apply_updates(self._doc, updates)
        self._order.clocks = check_state_vector(self._doc.get_state())

    @property
    def doc(self) -> Doc:
        """The document, integrated from the stored snapshot on first use."""
        if self._snapshot is not None:
            with CrdtFailures(self._damaged):  # a damaged row: the client is not to blame
                self._doc.apply_update(self._snapshot)
            self._snapshot = None
        return self._doc

    def _damaged(self, exc: BaseException) -> p.ProtocolError:
        log.error("cannot integrate the stored snapshot of %r: %s", self.name, exc)
        return p.ProtocolError("document could not be loaded", CloseCode.serverError)

    def state_vector(self) -> bytes:
        return self._snapshot_state if self._snapshot is not None else self._doc.get_state()

    def full_state(self) -> bytes:
        """The whole document as one update."""
        return self._snapshot if self._snapshot is not None else self._doc.get_update()

    @property
    def text(self) -> str:
        return str(self.doc.get(CONTENT_TEXT, type=Text))

    @property
    def text_end(self) -> int:
        """Where ``content`` ends, in the offsets :meth:`edit_text` takes."""
        return len(self.doc.get(CONTENT_TEXT, type=Text))

    @property
    def indexed_text(self) -> str:
        """The text with each embed as one NOT_TEXT (see :func:`server.exports.indexed_text`):
        what edit offsets are taken from."""
        return indexed_text(self.doc.get(CONTENT_TEXT, type=Text))

    # --- peers -----------------------------------------------------------------------------

    def join(self, conn: Connection) -> None:
        """Greet a new peer: our state vector (so it sends what we lack) and who is here."""
        self.peers.add(conn)
        conn.send(p.encode_sync_step1(self.state_vector()))
        if self.presence:
            conn.send(p.encode_awareness(p.encode_awareness_update(self.presence.entries())))

    def leave(self, conn: Connection) -> None:
        self.peers.discard(conn)
        self.authors.left(conn.id)
        gone = self.presence.leave(conn.id)
        if gone:
            self._broadcast(p.encode_awareness(p.encode_awareness_update(gone)), exclude=None)
            if self.outbound is not None:
                self.outbound.left(self, conn.id)

    # --- incoming --------------------------------------------------------------------------

    def receive(self, conn: Connection, frame: bytes) -> None:
        """Handle one frame from ``conn``; raises :class:`ProtocolError` to close it."""
        message = p.decode_message(frame)
        match message:
            case p.SyncStep1(state_vector):
                conn.send(p.encode_sync_step2(self.missing(state_vector)))
            case p.SyncStep2(update) | p.SyncUpdate(update):
                self._apply(conn, update)
            case p.AwarenessMessage(update):
                self._awareness(conn, update, frame)
            case p.QueryAwareness():
                if self.presence:
                    entries = self.presence.entries()
                    conn.send(p.encode_awareness(p.encode_awareness_update(entries)))
            case p.AuthMessageIn() | p.Saved():
                # Server-to-client messages: a client has no business sending them.
                raise p.ProtocolError(f"unexpected client message {type(message).__name__}")

    def missing(self, state_vector: bytes) -> bytes:
        """The update the holder of ``state_vector`` lacks (a sync step 1's answer); raises
        ProtocolError for a bad state vector, DocumentDeleted for a deleted incarnation's."""
        # Read strictly too: yrs would wrap a clock past 2^32 and answer wrongly.
        clocks = check_state_vector(state_vector)
        if self._tombstone and self._holds_deleted(clocks):
            raise DocumentDeleted()
        if self._snapshot is not None and state_vector == EMPTY_STATE_VECTOR:
            return self._snapshot
        doc = self.doc
        with _UNDECODABLE:
            return doc.get_update(state_vector)

    def _read(self, update: bytes) -> UpdateSummary:
        """The strict reading and the tombstone check every incoming update passes first:
        nothing touches the document before (ProtocolError, 1007; DocumentDeleted, 4410)."""
        summary = check_update(update)
        if self._tombstone and self._touches_deleted(summary):
            raise DocumentDeleted()
        return summary

    def _integrate(
        self,
        update: bytes,
        summary: UpdateSummary,
        sender: Connection | None,
        on_commit: AckCallback | None,
    ) -> None:
        """An update nothing of which waits (``InOrder.ready``): into the Doc, down the spine."""
        with _UNDECODABLE:
            self.doc.apply_update(update)
        self._order.taken(summary)
        self._changed(update, sender, on_commit)

    def apply_update(self, update: bytes, on_commit: AckCallback) -> bytes:
        """An update from the server's own API (HTTP): the same reading, tombstone and order
        checks as a client's, then the spine; ``on_commit`` runs once it is durable. Returns
        the document's state vector with it (what is committed once ``on_commit`` runs).

        Raises ProtocolError, DocumentDeleted, or MissingDependencies for an update that would
        have to wait (held updates are acked later over the socket that sent them: an HTTP
        caller has no socket to be told on), leaving the document as it was."""
        summary = self._read(update)
        metrics.TRAFFIC.updates_in += 1
        if update == EMPTY_UPDATE:
            self.store.append(self.name, None, on_commit)
            return self.state_vector()
        order = self._order
        if not order.ready(summary):
            raise MissingDependencies(self._lacking(summary), self.state_vector())
        self._integrate(update, summary, None, on_commit)
        state = self.state_vector()
        if order.waiting:
            self._take_held()
        return state

    def _lacking(self, summary: UpdateSummary) -> dict[int, int]:
        """For each client an update builds on beyond what the document holds, from which
        clock the document lacks it."""
        known = self._order.clocks
        own = {client: end for client, _start, end in summary.structs}
        lacking: dict[int, int] = {}
        for client, start, _end in summary.structs:
            if start > known.get(client, 0):
                lacking[client] = known.get(client, 0)
        for client, end in summary.skips.items():
            if end > known.get(client, 0):
                lacking[client] = known.get(client, 0)
        for client, clock in summary.refs.items():
            if clock >= max(known.get(client, 0), own.get(client, 0)):
                lacking[client] = known.get(client, 0)
        return lacking

    def _apply(self, conn: Connection, update: bytes) -> None:
        """A client's update: read strictly, checked, applied, then down the spine."""
        summary = self._read(update)
        if conn.read_only:
            # Every y-websocket client answers our step 1 with a step 2, often empty or holding
            # only what we have: that is no edit, and needs no "permission denied".
            if self._adds_structs(summary):
                conn.deny_edits("read-only: edits are not applied")
            return
        metrics.TRAFFIC.updates_in += 1
        seq = conn.count_update()
        ack = lambda: conn.acknowledge(seq)  # noqa: E731
        if update == EMPTY_UPDATE:
            # Nothing to apply or relay; acknowledged like any other, in order.
            self.store.append(self.name, None, ack)
            return
        # Before the update is queued: a new author row commits with it or before it.
        self.authors.seen(conn, summary.structs, self._order.clocks)
        order = self._order
        if order.ready(summary):  # the common case: nothing it builds on is missing
            self._integrate(update, summary, conn, ack)
            if order.waiting:
                self._take_held()
            return
        if len(order.waiting) >= self.limits.max_pending_updates:
            # Refused before it touches anything: at the cap, an update that would wait too
            # is neither applied, stored nor relayed.
            raise p.ProtocolError(
                "too many updates waiting for missing dependencies", CloseCode.policyViolation
            )
        # What builds on what the Doc lacks is held (in memory only: every Yjs client holds it
        # back as well, and its sender keeps it until it is acked), then taken into the Doc,
        # relayed, stored and acked once that arrives. No ack of this connection passes it.
        part = order.offer(update, summary, (conn, seq))
        if part is None or not part.last:
            conn.hold_ack(seq)  # before any commit can run: commits run in a later turn
        if part is not None:
            try:
                with _UNDECODABLE:
                    self.doc.apply_update(part.update)
            except p.ProtocolError:
                self._forget(conn, seq)
                raise
            self._changed(part.update, conn, ack)
        if order.waiting:
            self._take_held()

    def remote(self, update: bytes) -> None:
        """A change another instance committed to the shared store: into the Doc once what it
        builds on is there (it may arrive before what it follows), relayed to every peer here,
        not stored again."""
        try:
            summary = check_update(update)
        except p.ProtocolError as exc:
            # Our own store's bytes (a snapshot pycrdt wrote): taken as they are.
            log.warning("a stored update of %r fails the strict reading: %s", self.name, exc)
            with _STORED:
                self.doc.apply_update(update)
            self._order.clocks = check_state_vector(self.doc.get_state())
            self._changed(update, None, store=False)
            return
        self._remote_seq += 1
        part = self._order.offer(update, summary, (None, self._remote_seq))
        if part is not None:
            with _STORED:
                self.doc.apply_update(part.update)
            self._changed(part.update, None, store=False)
        if self._order.waiting:
            self._take_held()

    def _forget(self, conn: Connection | None, seq: int) -> None:
        """pycrdt refused what it was given of message ``seq``: nothing of it waits any more,
        and the state vector is the Doc's own again."""
        order = self._order
        order.waiting = [held for held in order.waiting if held.payload != (conn, seq)]
        order.clocks = check_state_vector(self._doc.get_state())

    def _take_held(self) -> None:
        """What of the held updates can go in now goes into the Doc, then down the spine."""
        for part in self._order.take_ready():
            sender, seq = part.payload
            try:
                with _UNDECODABLE:
                    self._doc.apply_update(part.update)
            except p.ProtocolError as exc:
                # What it pointed at turned out to be no place for it (Yjs drops such an item
                # too): not stored; the Doc's own state vector says what is in it.
                log.warning("dropped a held update for %r: %s", self.name, exc)
                self._forget(sender, seq)
                if sender is not None:
                    sender.release_ack(seq)
                continue
            if sender is None:  # another instance's: stored there
                self._changed(part.update, None, store=False)
                continue
            if part.last:
                ack = lambda sender=sender, seq=seq: sender.release_ack(seq)  # noqa: E731
            else:
                ack = lambda sender=sender, seq=seq: sender.acknowledge(seq)  # noqa: E731
            self._changed(part.update, sender, ack)

    def _changed(
        self,
        update: bytes,
        sender: Connection | None,
        on_commit: AckCallback | None = None,
        *,
        store: bool = True,
    ) -> None:
        """The spine: every change to the document, whoever made it, once it is in the Doc —
        relayed to every peer but its ``sender`` (None: the server, so everyone), appended to
        the store (``on_commit`` runs once it is durable: the sender's "saved" ack) unless it is
        stored already (``store`` False: a change another instance committed), and the room
        marked edited. Relaying before the commit is safe: a change is only acked after it."""
        frame = p.encode_sync_update(update)
        for peer in self.peers:
            if peer is not sender:
                peer.send(frame)
        if store:
            self.store.append(self.name, update, on_commit)
        self.last_edit_at = time.monotonic()
        self.dirty = True
        self.written = True

    # --- what an update holds, against what the document holds -----------------------------

    def _adds_structs(self, summary: UpdateSummary) -> bool:
        """Whether the update holds structs the document does not have yet."""
        known = self._order.clocks
        return any(end > known.get(client, 0) for client, _start, end in summary.structs)

    def _holds_deleted(self, state: dict[int, int]) -> bool:
        """A client state vector with items of a deleted incarnation."""
        tomb = self._tombstone
        return any(clock > 0 and tomb.get(client, 0) > 0 for client, clock in state.items())

    def _touches_deleted(self, summary: UpdateSummary) -> bool:
        """An update with, deleting, or pointing into items of a deleted incarnation."""
        tomb = self._tombstone
        return (
            any(start < tomb.get(client, 0) for client, start, _end in summary.structs)
            or any(start < tomb.get(client, 0) for client, start, _end in summary.deletes)
            or any(clock < tomb.get(client, 0) for client, clock in summary.refs.items())
        )

    def edit_text(self, edits: Iterable[TextEdit], on_commit: AckCallback | None = None) -> bool:
        """Apply ``edits`` (UTF-8 byte ranges of ``content``, last first: see
        :func:`server.jobs.text_edits`) as one forward edit every peer receives. Never
        re-seeds the document. ``on_commit`` runs once the document as it is now is durable
        (the edit, or nothing to edit: every earlier change). Returns whether anything
        changed."""
        edits = list(edits)
        if not edits:
            if on_commit is not None:
                self.store.append(self.name, None, on_commit)
            return False
        text = self.doc.get(CONTENT_TEXT, type=Text)
        produced: list[bytes] = []
        subscription = self.doc.observe(lambda event: produced.append(event.update))
        try:
            with self.doc.transaction(origin="tandem-server"):
                for start, end, inserted in edits:
                    if end > start:
                        del text[start:end]
                    # An embed of the target cannot be made again from its text: left out.
                    inserted = inserted.replace(NOT_TEXT, "")
                    if inserted:
                        text.insert(start, inserted)
        finally:
            self.doc.unobserve(subscription)
        self._order.clocks = check_state_vector(self.doc.get_state())
        if not produced:
            if on_commit is not None:
                self.store.append(self.name, None, on_commit)
            return False
        for update in produced[:-1]:
            self._changed(update, None)
        # Appends of a document commit in order: the last one's commit covers them all.
        self._changed(produced[-1], None, on_commit)
        return True

    def _awareness(self, conn: Connection, update: bytes, frame: bytes) -> None:
        entries = p.decode_awareness_update(update)
        accepted = self.presence.apply(conn.id, entries)
        if not accepted:
            return
        self.authors.named(conn, accepted)
        if len(accepted) < len(entries):
            update = p.encode_awareness_update(accepted)
            frame = p.encode_awareness(update)
        self._broadcast(frame, exclude=conn)
        if self.outbound is not None:
            self.outbound.presence(self, conn.id, update)

    def remote_presence(self, owner: Hashable, update: bytes) -> None:
        """Awareness from another instance's connection (``owner`` names both): held and
        relayed under the same rules as a local connection's."""
        try:
            entries = p.decode_awareness_update(update)
            accepted = self.presence.apply(owner, entries)
        except p.ProtocolError as exc:
            log.warning("ignored awareness from %s for %r: %s", owner, self.name, exc)
            return
        if accepted:
            frame = p.encode_awareness(p.encode_awareness_update(accepted))
            self._broadcast(frame, exclude=None)

    def remote_left(self, owner: Hashable) -> None:
        """Another instance's connection left (or that instance is gone)."""
        gone = self.presence.leave(owner)
        if gone:
            self._broadcast(p.encode_awareness(p.encode_awareness_update(gone)), exclude=None)

    def local_presence(self) -> list[tuple[int, bytes]]:
        """Each local connection's awareness, as an update: what another instance asks for."""
        return [
            (owner, p.encode_awareness_update(entries))
            for owner, entries in self.presence.by_owner().items()
            if isinstance(owner, int)
        ]

    def _broadcast(self, frame: bytes, exclude: Connection | None) -> None:
        for peer in self.peers:
            if peer is not exclude:
                peer.send(frame)
