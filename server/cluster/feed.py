"""Which of a document's sequence numbers an instance has: tells a new update from a
duplicate, and sees the gaps that must be read back from the store.

Every update a document gets is numbered by the store in commit order (1, 2, 3... across all
instances). An instance holds everything up to ``applied`` and the numbers in ``ahead``; a
message whose number it holds is a duplicate, and anything in ``ahead`` means a gap below it.
"""

from __future__ import annotations


class SeqTracker:
    __slots__ = ("ahead", "applied")

    def __init__(self, applied: int = 0) -> None:
        self.applied = applied
        self.ahead: set[int] = set()

    def see(self, seq: int) -> bool:
        """Note ``seq``; returns whether it is new (False: a duplicate)."""
        if seq <= self.applied or seq in self.ahead:
            return False
        if seq == self.applied + 1:
            self.applied = seq
            ahead = self.ahead
            while self.applied + 1 in ahead:
                self.applied += 1
                ahead.discard(self.applied)
        else:
            self.ahead.add(seq)
        return True

    def caught_up(self, seq: int) -> None:
        """Everything up to ``seq`` is held now (read back from the store, where a snapshot
        stands for the numbers it replaced)."""
        if seq > self.applied:
            self.applied = seq
            self.ahead = {n for n in self.ahead if n > seq}
            while self.applied + 1 in self.ahead:
                self.applied += 1
                self.ahead.discard(self.applied)

    @property
    def gap(self) -> bool:
        return bool(self.ahead)
