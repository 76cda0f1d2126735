"""Integrating many stored updates into a pycrdt Doc, fast.

One transaction per update is slow (a commit per update), and one transaction for a whole
long log is slower still: yrs' commit work grows faster than linearly with the transaction's
size (on the 259,778-update automerge-paper log: 6.4 s in one transaction, 1.7 s in
transactions of 1,000). ``pycrdt.merge_updates`` is no way out: it is quadratic in the number
of updates and keeps deleted content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pycrdt import Doc

from .panics import CONTROL_FLOW
from .updates import UpdateSummary, check_state_vector, check_update, split_ready

# Updates per transaction: the measured sweet spot is broad (100-1,000).
CHUNK = 500


def apply_updates(doc: Doc, updates: Sequence[bytes]) -> None:
    """Apply ``updates`` in order; raises what pycrdt raises for an update it cannot read."""
    for start in range(0, len(updates), CHUNK):
        with doc.transaction():
            for update in updates[start : start + CHUNK]:
                doc.apply_update(update)


def load_doc(updates: Sequence[bytes]) -> Doc:
    """A new Doc holding ``updates``."""
    doc: Doc = Doc()
    apply_updates(doc, updates)
    return doc


@dataclass(slots=True)
class Held:
    """What of an update waits for what it builds on, and what to do once it is in the Doc."""

    update: bytes
    summary: UpdateSummary
    payload: Any = None


class Part(NamedTuple):
    """A part of an update that can go into the Doc now. ``last``: nothing of the update it
    belongs to waits any more."""

    update: bytes
    summary: UpdateSummary
    payload: Any
    last: bool


class InOrder:
    """Gives a Doc an update's structs only once everything they build on is there: each
    client's earlier clocks, and what the items point at (origin, right origin, parent). What
    must wait is held here — as Yjs holds such structs back ("pending"), splitting an update
    where it must: a client's structs up to the first that waits go in, that one and the rest of
    its client's wait.

    yrs does not: it integrates a struct that follows a gap in its client's clocks at once (the
    server's text would show what no browser shows, for as long as the gap stays open), and an
    update taken before the one it follows can end another way than in Yjs, where the same
    updates in order agree (tests/test_differential.py). ``clocks`` is the Doc's state vector as
    this object keeps it: updated with every part it lets through.
    """

    __slots__ = ("clocks", "waiting")

    def __init__(self, clocks: dict[int, int] | None = None) -> None:
        self.clocks: dict[int, int] = clocks if clocks is not None else {}
        self.waiting: list[Held] = []

    def ready(self, summary: UpdateSummary) -> bool:
        """Whether the whole update can go in (the common case, decided from its summary)."""
        clocks = self.clocks
        covered = clocks
        for client, start, end in summary.structs:
            known = clocks.get(client, 0)
            if start > known:
                return False  # a gap before it
            if end > known:
                if covered is clocks:
                    covered = dict(clocks)
                covered[client] = end
        for client, end in summary.skips.items():
            if end > clocks.get(client, 0):
                return False  # a range it does not carry, and nobody has
        for client, clock in summary.refs.items():
            if clock >= covered.get(client, 0):
                return False  # it points at something not there yet
        return True

    def taken(self, summary: UpdateSummary) -> None:
        """``summary``'s update (or part) is in the Doc now."""
        clocks = self.clocks
        for client, _start, end in summary.structs:
            if end > clocks.get(client, 0):
                clocks[client] = end

    def offer(self, update: bytes, summary: UpdateSummary, payload: Any = None) -> Part | None:
        """A new update: the part that can go in now (the whole update, usually), counted as
        taken; what must wait is held. None if nothing can go in yet."""
        if self.ready(summary):
            self.taken(summary)
            return Part(update, summary, payload, True)
        now, later = split_ready(update, self.clocks)
        if later is not None:
            self.waiting.append(Held(later, check_update(later), payload))
        if now is None:
            return None
        part = check_update(now)
        self.taken(part)
        return Part(now, part, payload, later is None)

    def take_ready(self) -> list[Part]:
        """What of the held updates can go in now, in the order it can (each part taken may make
        another ready), already counted as taken: the caller applies each (and, should pycrdt
        refuse one, sets :attr:`clocks` from the Doc again)."""
        parts: list[Part] = []
        progress = True
        while progress and self.waiting:
            progress = False
            for held in list(self.waiting):
                if self.ready(held.summary):
                    self.waiting.remove(held)
                    self.taken(held.summary)
                    parts.append(Part(held.update, held.summary, held.payload, True))
                    progress = True
                    continue
                clocks = self.clocks
                if all(start > clocks.get(c, 0) for c, start, _end in held.summary.structs):
                    # Every client's first struct still follows a gap: nothing of it can go
                    # in, and splitting it to find that out costs a parse per held update
                    # for every update that arrives.
                    continue
                now, later = split_ready(held.update, self.clocks)
                if now is None:
                    continue
                part = check_update(now)
                self.taken(part)
                if later is None:
                    self.waiting.remove(held)
                else:
                    held.update, held.summary = later, check_update(later)
                parts.append(Part(now, part, held.payload, later is None))
                progress = True
        return parts


def apply_in_order(doc: Doc, updates: Sequence[bytes]) -> InOrder:
    """What a room does with ``updates`` arriving in this order (without the relaying and the
    storing): their structs go into ``doc`` once what they build on is there; a part that fails
    once its wait is over is dropped. Raises ProtocolError for an update the strict reading
    refuses and what pycrdt raises for a part taken at once (the room refuses its sender for
    either). Returns the order, whose ``waiting`` holds what is still held at the end."""
    order = InOrder(check_state_vector(doc.get_state()))
    for update in updates:
        part = order.offer(update, check_update(update))
        if part is not None:
            doc.apply_update(part.update)
        for held in order.take_ready():
            try:
                doc.apply_update(held.update)
            except CONTROL_FLOW:
                raise
            except BaseException:  # pycrdt panics too: what Yjs drops, the room drops
                order.clocks = check_state_vector(doc.get_state())
    return order
