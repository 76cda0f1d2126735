"""What the webhook outbox holds, for every backend: the events, and the changes waiting for
their quiet period. The SQL is each backend's (``sqlite_outbox``, ``postgres_outbox``).

An event is written in the same transaction as the change it describes (a created document
with its first updates, a deletion, a saved version), so none is lost to a crash in between. A
change to a document is noted in the same commit as its updates (``webhook_pending``); the
``document.changed`` event is made from that note once editing pauses, in the transaction that
consumes it. One row per event and target: a receiver that is down is retried alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

CREATED = "document.created"
CHANGED = "document.changed"
DELETED = "document.deleted"
VERSION_SAVED = "version.saved"
EMPTY_STATE_VECTOR = b"\x00"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    row: int
    event_id: str
    target: str
    kind: str
    doc: str
    created_at: float
    state_vector: bytes
    text_length: int | None
    version_id: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class PendingChange:
    doc: str
    first_at: float
    gen: int


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event to write, for each target."""

    kind: str
    doc: str
    created_at: float
    state_vector: bytes
    text_length: int | None = None
    version_id: int | None = None

    def rows(self, targets: tuple[str, ...]) -> list[tuple[object, ...]]:
        event_id = uuid.uuid4().hex
        return [
            (
                event_id,
                target,
                self.kind,
                self.doc,
                self.created_at,
                self.state_vector,
                self.text_length,
                self.version_id,
                self.created_at,
            )
            for target in targets
        ]


OUTBOX_COLUMNS = (
    "event_id, target, kind, doc, created_at, state_vector, text_length, version_id, next_at"
)
CLAIMED_COLUMNS = (
    "id, event_id, target, kind, doc, created_at, state_vector, text_length, version_id, attempts"
)


def event_from_row(r: Sequence[Any]) -> OutboxEvent:
    """An event from a row of CLAIMED_COLUMNS (a SQLite tuple or an asyncpg Record)."""
    return OutboxEvent(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        float(r[5]),
        bytes(r[6]),
        None if r[7] is None else int(r[7]),
        None if r[8] is None else int(r[8]),
        int(r[9]),
    )


def state_vector_of(updates: list[bytes]) -> bytes:
    """The state vector of what ``updates`` hold together (a new document's first commit)."""
    doc: Doc = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return doc.get_state()
