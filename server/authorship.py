"""Who wrote what: for each Yjs client id whose structs a room takes in, who sent them.

The author of a client id is the token's subject of the connection that sent its first structs
or, without one (open mode, a token minted without ``sub``), the name that connection shows in
its awareness state (``{"user": {"name": ...}}``, what the editor publishes). A name may arrive
after the first update and may change: a name-sourced client id follows the latest name of the
connection that owns it.

A client id is a claim, not a fact: any peer can put structs under any client id. So only a
client id the document holds nothing of yet can be claimed, by the first connection that sends
structs of it; a subject-sourced one never changes hands; a name-sourced one whose owner left is
taken over by the next connection without a subject that sends new structs of it (the same
browser reconnecting). Bounds: a connection claims at most ``max_ids_per_connection`` client ids
(a browser session has one, plus those of its offline copies), a document records at most
``max_ids_per_room``; past either the ids go unrecorded (logged), so a peer minting client ids
cannot grow the table without bound.

The map is kept in memory per room (loaded with the room, one dict lookup per struct group on
the hot path) and written through the store's group-commit writer (:meth:`Store.record_author`):
a new row is queued before the update that introduced it, so it commits with that update or
before it, never after.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .auth import MAX_SUBJECT
from .protocol import AwarenessEntry
from .storage import AuthorInfo, Store

log = logging.getLogger("tandem.authorship")

SUBJECT = "subject"
NAME = "name"
MAX_AUTHOR = MAX_SUBJECT
# How often, at most, a client id's ``last_at`` is written while its owner goes on editing.
TOUCH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class AuthorLimits:
    max_ids_per_connection: int = 64
    max_ids_per_room: int = 10_000


class Sender(Protocol):
    """What the map needs of a connection (:class:`server.connection.Connection`)."""

    @property
    def id(self) -> int: ...

    @property
    def subject(self) -> str | None: ...


@dataclass(slots=True)
class _Entry:
    # None: claimed by a connection that has shown no name yet (nothing stored until it does).
    author: str | None
    source: str
    # The id of the live connection that owns it here (None: nobody here does).
    owner: int | None
    first_at: float
    last_at: float


def clean_author(raw: object) -> str | None:
    """A name as an author: whitespace runs as one space, no unprintable characters (controls,
    bidirectional overrides, zero-width characters), at most MAX_AUTHOR characters; None if
    nothing is left."""
    if not isinstance(raw, str):
        return None
    name = "".join(ch for ch in " ".join(raw.split()) if ch.isprintable())
    return name[:MAX_AUTHOR].strip() or None


def name_in(state_json: str) -> str | None:
    """The ``user.name`` of an awareness state (already read as strict JSON by the presence)."""
    try:
        state = json.loads(state_json)
    except (ValueError, RecursionError):
        return None
    user = state.get("user") if isinstance(state, dict) else None
    return clean_author(user.get("name")) if isinstance(user, dict) else None


class Authorship:
    """One room's map of client ids to authors (see the module's docstring)."""

    def __init__(self, doc: str, store: Store, limits: AuthorLimits | None = None) -> None:
        self.doc = doc
        self.store = store
        self.limits = limits or AuthorLimits()
        self._entries: dict[int, _Entry] = {}
        # Connection id → the client ids it owns.
        self._owned: dict[int, set[int]] = {}
        # Connection id → its latest awareness state, read for a name only when needed.
        self._states: dict[int, str] = {}
        # Connections already logged as over their cap, and whether the room's was.
        self._capped: set[int] = set()
        self._room_capped = False

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, rows: Iterable[AuthorInfo]) -> None:
        """What the store has (the room is being loaded: nobody owns anything yet)."""
        for row in rows:
            self._entries[row.client_id] = _Entry(
                row.author, row.source, None, row.first_at, row.last_at
            )

    def overlay(self, stored: Iterable[AuthorInfo]) -> list[AuthorInfo]:
        """The store's map with what this room knows better: what its live connections own
        (this instance is the authority on those) and what is not committed yet."""
        rows = {row.client_id: row for row in stored}
        for client, e in self._entries.items():
            if e.author is not None and (e.owner is not None or client not in rows):
                rows[client] = AuthorInfo(client, e.author, e.source, e.first_at, e.last_at)
        return in_order(rows.values())

    # --- the hot path: every update a connection sends ---------------------------------------

    def seen(
        self, sender: Sender, structs: list[tuple[int, int, int]], clocks: dict[int, int]
    ) -> None:
        """``sender`` sent these structs (``(client, start, end)``); ``clocks``: what the
        document holds of each client before them."""
        entries = self._entries
        for client, _start, end in structs:
            entry = entries.get(client)
            if entry is not None and entry.owner == sender.id:
                now = time.time()
                if now - entry.last_at >= TOUCH_SECONDS:
                    self._touch(client, entry, now)
            elif entry is None:
                if not clocks.get(client, 0):
                    self._claim(sender, client)
            elif end > clocks.get(client, 0):
                self._take_over(sender, client, entry)

    def _claim(self, sender: Sender, client: int) -> None:
        if len(self._entries) >= self.limits.max_ids_per_room:
            if not self._room_capped:
                self._room_capped = True
                log.warning(
                    "%r records the authors of %d client ids already: no more are recorded",
                    self.doc,
                    self.limits.max_ids_per_room,
                )
            return
        if not self._may_own(sender):
            return
        if sender.subject is not None:
            author, source = sender.subject, SUBJECT
        else:
            state = self._states.get(sender.id)
            author, source = (None if state is None else name_in(state)), NAME
        now = time.time()
        self._entries[client] = _Entry(author, source, sender.id, now, now)
        self._owned.setdefault(sender.id, set()).add(client)
        if author is not None:
            self.store.record_author(self.doc, client, author, source)

    def _may_own(self, sender: Sender) -> bool:
        owned = self._owned.get(sender.id)
        if owned is None or len(owned) < self.limits.max_ids_per_connection:
            return True
        if sender.id not in self._capped:
            self._capped.add(sender.id)
            log.warning(
                "connection #%d sent structs of more than %d new client ids to %r: "
                "the authors of the others are not recorded",
                sender.id,
                self.limits.max_ids_per_connection,
                self.doc,
            )
        return False

    def _take_over(self, sender: Sender, client: int, entry: _Entry) -> None:
        """New structs of a client id someone else claimed: taken over only when nobody here
        owns it and it is the sender's by its kind (its own subject; a name by a connection
        without a subject, whose name it then takes)."""
        if entry.owner is not None:
            return
        if entry.source == SUBJECT:
            if sender.subject != entry.author:
                return
        elif sender.subject is not None:
            return
        if not self._may_own(sender):
            return
        entry.owner = sender.id
        self._owned.setdefault(sender.id, set()).add(client)
        now = time.time()
        if entry.source == NAME:
            state = self._states.get(sender.id)
            name = None if state is None else name_in(state)
            if name is not None and name != entry.author:
                entry.author = name
                self._touch(client, entry, now)
                return
        if now - entry.last_at >= TOUCH_SECONDS:
            self._touch(client, entry, now)

    def _touch(self, client: int, entry: _Entry, now: float) -> None:
        entry.last_at = now
        if entry.author is not None:
            self.store.record_author(self.doc, client, entry.author, entry.source)

    # --- presence ------------------------------------------------------------------------------

    def named(self, sender: Sender, entries: list[AwarenessEntry]) -> None:
        """Awareness ``sender`` sent (and the presence took): its latest state, and a new name
        for the client ids it owns by name."""
        if sender.subject is not None:
            return  # its subject is its author: no name counts
        state = next((e.state_json for e in reversed(entries) if not e.removed), None)
        if state is None:
            return
        self._states[sender.id] = state
        owned = self._owned.get(sender.id)
        if not owned:
            return  # read once it claims something
        name = name_in(state)
        if name is None:
            return
        now = time.time()
        for client in owned:
            entry = self._entries[client]
            if entry.source == NAME and entry.author != name:
                entry.author = name
                self._touch(client, entry, now)

    def left(self, conn_id: int) -> None:
        for client in self._owned.pop(conn_id, ()):
            entry = self._entries.get(client)
            if entry is not None:
                entry.owner = None
        self._states.pop(conn_id, None)
        self._capped.discard(conn_id)


def in_order(rows: Iterable[AuthorInfo]) -> list[AuthorInfo]:
    """Oldest first."""
    return sorted(rows, key=lambda row: (row.first_at, row.client_id))
