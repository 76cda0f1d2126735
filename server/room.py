"""A room: one document's pycrdt Doc, its connected peers and their awareness states.

Every handler here is synchronous, so a message is applied, relayed and queued for storage
in one step: the order peers see is the order the store writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from pycrdt import Doc, Text

from . import protocol as p
from .connection import Connection
from .contract import CONTENT_TEXT, CloseCode
from .store import Store

log = logging.getLogger("tandem.room")

# Updates that carry nothing: y-protocols' empty V1 update (no structs, empty delete set).
_EMPTY_UPDATE = b"\x00\x00"

# pycrdt (Rust) panics surface as pyo3's PanicException, a BaseException: catch those too,
# but never swallow the interpreter's own control-flow exceptions.
_CONTROL_FLOW = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


T = TypeVar("T")


def _crdt_call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except _CONTROL_FLOW:
        raise
    except BaseException as exc:
        raise p.ProtocolError(f"{what}: {exc}", CloseCode.invalidPayload) from exc


class Room:
    def __init__(self, name: str, store: Store) -> None:
        self.name = name
        self.store = store
        self.doc: Doc = Doc()
        self.peers: set[Connection] = set()
        self.awareness: dict[int, p.AwarenessEntry] = {}
        self.unload_task: asyncio.Task[None] | None = None

    # --- loading ---------------------------------------------------------------------------

    def load(self, updates: list[bytes]) -> None:
        """Apply the stored updates; raises if any cannot be applied (the room is then unusable)."""
        for update in updates:
            self.doc.apply_update(update)

    @property
    def text(self) -> str:
        return str(self.doc.get(CONTENT_TEXT, type=Text))

    # --- peers -----------------------------------------------------------------------------

    def join(self, conn: Connection) -> None:
        """Greet a new peer: our state vector (so it sends what we lack) and who is here."""
        self.peers.add(conn)
        conn.send(p.encode_sync_step1(self.doc.get_state()))
        if self.awareness:
            conn.send(p.encode_awareness(p.encode_awareness_update(list(self.awareness.values()))))

    def leave(self, conn: Connection) -> None:
        self.peers.discard(conn)
        gone = []
        for client_id in conn.awareness_ids:
            entry = self.awareness.get(client_id)
            if entry is not None:
                del self.awareness[client_id]
                gone.append(p.AwarenessEntry(client_id, entry.clock + 1, "null"))
        conn.awareness_ids.clear()
        if gone:
            self._broadcast(p.encode_awareness(p.encode_awareness_update(gone)), exclude=None)

    # --- incoming --------------------------------------------------------------------------

    def receive(self, conn: Connection, frame: bytes) -> None:
        """Handle one frame from ``conn``; raises :class:`ProtocolError` to close it."""
        message = p.decode_message(frame)
        match message:
            case p.SyncStep1(state_vector):
                diff = _crdt_call("bad state vector", lambda: self.doc.get_update(state_vector))
                conn.send(p.encode_sync_step2(diff))
            case p.SyncStep2(update) | p.SyncUpdate(update):
                self._apply(conn, update)
            case p.AwarenessMessage(update):
                self._awareness(conn, update, frame)
            case p.QueryAwareness():
                if self.awareness:
                    entries = list(self.awareness.values())
                    conn.send(p.encode_awareness(p.encode_awareness_update(entries)))
            case p.AuthMessageIn() | p.Saved():
                # Server-to-client messages: a client has no business sending them.
                raise p.ProtocolError(f"unexpected client message {type(message).__name__}")

    def _apply(self, conn: Connection, update: bytes) -> None:
        empty = update == _EMPTY_UPDATE
        if not empty:
            _crdt_call("undecodable update", lambda: self.doc.apply_update(update))
        conn.updates_received += 1
        seq = conn.updates_received
        if not empty:
            self._broadcast(p.encode_sync_update(update), exclude=conn)
        self.store.append(self.name, None if empty else update, lambda: conn.acknowledge(seq))

    def _awareness(self, conn: Connection, update: bytes, frame: bytes) -> None:
        entries = p.decode_awareness_update(update)
        for entry in entries:
            owner_ids = conn.awareness_ids
            if entry.removed:
                self.awareness.pop(entry.client_id, None)
                owner_ids.discard(entry.client_id)
            else:
                self.awareness[entry.client_id] = entry
                owner_ids.add(entry.client_id)
        if entries:
            self._broadcast(frame, exclude=conn)

    def _broadcast(self, frame: bytes, exclude: Connection | None) -> None:
        for peer in self.peers:
            if peer is not exclude:
                peer.send(frame)
