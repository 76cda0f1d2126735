"""What the rooms, the HTTP API and the CLI need from a document store: the interface every
backend implements (SQLite in :mod:`.sqlite`, PostgreSQL in :mod:`.postgres`), and the values it
returns.

The promise every backend keeps: an append's ``on_commit`` runs only once the append is
durable, appends of one document are committed in the order they were made, a failed commit
keeps its appends and retries (an append is never dropped), and a document that cannot be read
raises :class:`StoreError` instead of looking empty.
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .events import NewEvent, OutboxEvent, PendingChange

# Runs once an append is durable: the "saved" ack.
AckCallback = Callable[[], None]

# What new_file_id makes: anything else in a file URL names no file.
FILE_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def new_file_id() -> str:
    """128 random bits as 22 URL-safe characters: unguessable, and safe in a path as it is."""
    return secrets.token_urlsafe(16)


class StoreError(RuntimeError):
    """The store could not be read or written."""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str
    size_bytes: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document's log as committed: the snapshot first, then the tail."""

    updates: list[bytes]
    # The snapshot's state vector when the log is exactly one compacted snapshot.
    snapshot_state: bytes | None = None
    # The state vector of what was deleted under this name before, if anything was.
    tombstone: bytes | None = None
    # The sequence number of the last update in ``updates`` (stores that number them).
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: int
    created_at: float
    label: str | None
    size_bytes: int
    auto: bool
    # 1, 2, 3... per document in the order saved; never reused or renumbered.
    number: int = 0


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file (an image) stored beside a document; ``data`` is None when only the metadata
    was asked for."""

    id: str
    doc: str
    content_type: str
    size: int
    sha256: str
    created_at: float
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuthorInfo:
    """Who sent a Yjs client id's structs: ``source`` "subject" (a token's ``sub``) or "name"
    (the name the connection showed); Unix times of the first and the latest record."""

    client_id: int
    author: str
    source: str
    first_at: float
    last_at: float


@dataclass(frozen=True, slots=True)
class NewestVersion:
    id: int
    digest: bytes | None
    auto: bool


@dataclass(frozen=True, slots=True)
class SnippetPart:
    """A piece of a search result's snippet; ``hit``: it is (part of) a searched word."""

    text: str
    hit: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    name: str
    title: str | None
    snippet: tuple[SnippetPart, ...]


@dataclass(slots=True)
class StoreHealth:
    """What /healthz reports: whether commits succeed now, and since when they fail."""

    ok: bool = True
    error: str | None = None
    failures: int = 0
    since: float | None = None
    last_commit_ms: float = 0.0
    batches: int = 0
    appended: int = 0
    compactions: int = 0


class Store(ABC):
    """A document store: an update log per document (compacted into snapshots), versions and
    tombstones, written through one group-commit writer."""

    health: StoreHealth

    # --- writes ------------------------------------------------------------------------------

    @abstractmethod
    def append(self, doc: str, data: bytes | None, on_commit: AckCallback | None = None) -> None:
        """Queue an update for ``doc``; ``on_commit`` runs once it is durable. ``data`` None
        appends nothing but orders ``on_commit`` after every earlier append."""

    @abstractmethod
    def record_author(self, doc: str, client_id: int, author: str, source: str) -> None:
        """Queue an author row of ``doc``'s authors map, committed in the same transaction as
        the appends queued around it (never after one queued later). An existing row keeps
        its author unless both it and this one are name-sourced (a rename); ``last_at``
        becomes the commit's time either way."""

    @abstractmethod
    async def flush(self) -> None:
        """Wait until everything queued before this call is committed (through failures)."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Appends and writes queued and not yet committed."""

    @abstractmethod
    async def compact(self, doc: str) -> bool:
        """Replace the document's log by one snapshot (plus what still waits for missing
        dependencies), in one transaction; returns whether it compacted."""

    @abstractmethod
    async def compact_all(self) -> int:
        """Compact every document with a tail (at shutdown); returns how many."""

    @abstractmethod
    async def delete_document(self, doc: str, tombstone: bytes | None = None) -> bool:
        """Remove a document, its log, its versions, its files and its authors map in one
        transaction, leaving ``tombstone`` (a state vector) in its place; returns whether it
        existed."""

    @abstractmethod
    async def save_version(
        self,
        doc: str,
        state: bytes,
        label: str | None = None,
        auto: bool = False,
        digest: bytes | None = None,
    ) -> int:
        """Keep ``state`` as a version; returns its id."""

    @abstractmethod
    async def name_version(self, doc: str, version_id: int, label: str | None) -> None:
        """Make a version a named one (kept for good, counted against the cap)."""

    @abstractmethod
    async def delete_versions(self, doc: str, ids: Iterable[int]) -> int:
        """Returns how many were deleted."""

    @abstractmethod
    async def save_file(self, doc: str, content_type: str, data: bytes) -> tuple[StoredFile, bool]:
        """Store ``data`` beside ``doc`` under a new random URL-safe id; the same bytes already
        stored for ``doc`` are not stored twice. Returns the file (without its data) and
        whether it is new."""

    @abstractmethod
    async def backup(self, dest: Path | str) -> None:
        """A consistent copy of the whole store, taken live."""

    @abstractmethod
    async def close(self) -> None:
        """Commit everything queued, then close."""

    # --- reads ---------------------------------------------------------------------------------

    @abstractmethod
    async def load_document(self, doc: str) -> StoredDocument:
        """Every committed update of ``doc`` (snapshot first); raises StoreError."""

    async def load(self, doc: str) -> list[bytes]:
        return (await self.load_document(doc)).updates

    @abstractmethod
    async def tombstone(self, doc: str) -> bytes | None:
        """The state vector of everything deleted under this name (None if nothing was)."""

    @abstractmethod
    async def list_documents(self) -> list[DocumentInfo]: ...

    @abstractmethod
    async def document(self, name: str) -> DocumentInfo | None: ...

    @abstractmethod
    async def list_versions(self, doc: str) -> list[VersionInfo]:
        """Newest first."""

    @abstractmethod
    async def version(self, doc: str, version_id: int) -> tuple[VersionInfo, bytes] | None: ...

    @abstractmethod
    async def version_info(self, doc: str, version_id: int) -> VersionInfo | None:
        """A version's metadata, without reading its state."""

    @abstractmethod
    async def newest_version(self, doc: str) -> NewestVersion | None: ...

    @abstractmethod
    async def file(self, doc: str, file_id: str, *, data: bool = True) -> StoredFile | None:
        """A file of ``doc`` (None if ``doc`` has no file of that id)."""

    @abstractmethod
    async def authors(self, doc: str) -> list[AuthorInfo]:
        """``doc``'s authors map as committed, oldest first."""

    @abstractmethod
    async def copy_authors(
        self, src: str, dst: str, clients: Mapping[int, int] | None = None
    ) -> int:
        """Give ``dst`` the authors map of ``src`` (rows ``dst`` has already are kept), in one
        transaction after every earlier append; returns how many rows were copied.
        ``clients``: old client id → new one, for a copy written under new ids (only the rows
        of those clients are copied, each under its new id)."""

    @abstractmethod
    async def count_named_versions(self, doc: str) -> int: ...

    @abstractmethod
    async def log_length(self, doc: str) -> int:
        """Rows in the document's log (1 once compacted)."""

    @abstractmethod
    async def schema_version(self) -> int: ...

    # --- the search index (see server.search_index) -------------------------------------------

    # Told of each document once its log is compacted (the search index takes it again).
    on_compacted: Callable[[str], None] | None = None

    @abstractmethod
    async def index_document(
        self, doc: str, title: str | None, body: str, *, source_at: float | None = None
    ) -> bool:
        """Make ``title`` and ``body`` what the search finds ``doc`` by. ``source_at``: the
        document's ``updated_at`` the text was read at (None: the text is a loaded room's, as
        of every append queued before this call). Nothing is written for a document that does
        not exist (deleted meanwhile) or that the index holds a newer text of; returns whether
        the index holds this one."""

    @abstractmethod
    async def search(self, query: str, scopes: Iterable[str], limit: int) -> list[SearchHit]:
        """The documents within ``scopes`` (token scopes: ``*``, a prefix ending in ``/``, a
        name) whose indexed title or text holds every word of ``query`` (the last one also as
        a prefix), best first."""

    @abstractmethod
    async def titles(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """The indexed title of each document that has one (of ``names``, or of all)."""

    @abstractmethod
    async def stale_documents(self, after: str, before: float, limit: int) -> list[DocumentInfo]:
        """Documents named after ``after`` (in name order) changed since their text was last
        indexed, or never indexed, whose last change is older than ``before``."""

    @abstractmethod
    async def indexed_through(self, scopes: Iterable[str]) -> float | None:
        """A time before which every committed change of the documents within ``scopes`` is
        in the index (None: every one is)."""

    # --- the webhook outbox (see .events) ------------------------------------------------------

    # Where events go; none (the default): no event is written at all.
    webhook_targets: tuple[str, ...] = ()

    @abstractmethod
    async def quiet_changes(self, now: float, quiet: float, max_wait: float) -> list[PendingChange]:
        """Noted changes whose document has been quiet for ``quiet`` seconds, or waited
        ``max_wait``."""

    @abstractmethod
    async def consume_change(self, change: PendingChange, event: NewEvent) -> bool:
        """Write ``event`` for the note ``change`` and consume the note, in one transaction;
        False (nothing written) if another consumer took it."""

    @abstractmethod
    async def events_due(self, now: float) -> bool: ...

    @abstractmethod
    async def claim_events(self, now: float, lease: float, limit: int) -> list[OutboxEvent]:
        """Events due for delivery, held for ``lease`` seconds by this caller."""

    @abstractmethod
    async def event_delivered(self, row: int) -> None: ...

    @abstractmethod
    async def retry_event(self, row: int, at: float) -> None:
        """Deliver it again at ``at`` (a time.time() value)."""
