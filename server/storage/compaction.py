"""Compaction: when a document's log is worth merging, and the merge itself (pure: no I/O).

A document's log is its snapshot plus the updates appended since (its tail). Once the tail passes
either threshold it is replaced, in one transaction, by one snapshot. The rows are integrated into
a Doc (see :mod:`server.integrate`: pycrdt's ``merge_updates`` grows quadratically with the number
of updates and keeps every deleted item) and encoded again; rows the Doc could not integrate yet
(missing dependencies) are kept beside the snapshot, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import get_update

from ..integrate import load_doc


@dataclass(slots=True)
class Tail:
    """A document's log as committed: the tail's updates and bytes, and the whole log's bytes."""

    count: int = 0
    bytes: int = 0
    size: int = 0

    def grow(self, count: int, size: int) -> None:
        self.count += count
        self.bytes += size
        self.size += size


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    max_updates: int = 500
    max_bytes: int = 1024 * 1024

    def due(self, tail: Tail) -> bool:
        """Past either threshold — but a merge costs the whole snapshot, so a large document
        also waits until its tail is a quarter of it: the cost per appended byte stays constant
        and the file stays within 1.25x the merged state plus one tail."""
        if tail.bytes >= self.max_bytes:
            return True
        snapshot = tail.size - tail.bytes
        return tail.count >= self.max_updates and tail.bytes * 4 >= snapshot


def compact_updates(updates: list[bytes]) -> list[bytes]:
    """The smallest updates that hold everything ``updates`` hold."""
    return compact_updates_with_state(updates)[0]


def compact_updates_with_state(updates: list[bytes]) -> tuple[list[bytes], bytes]:
    """:func:`compact_updates`, and the state vector of the snapshot (its first part)."""
    doc = load_doc(updates)
    state = doc.get_state()
    waiting = [u for u in updates if get_update(u, state)[0] != 0]
    return [doc.get_update(), *waiting], state
