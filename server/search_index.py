"""Keeping the search index current without touching the write path: nothing is indexed per
update. A document's text is indexed

- once its room has been quiet for ``quiet`` seconds after an edit (and at least every
  ``max_wait`` seconds while editing goes on, and after each compaction of its log);
- when its room leaves memory with edits not indexed yet (unload, shutdown);
- by a catch-up that walks the documents changed since they were last indexed (or never
  indexed: at start, an old database) and not held by a room here, a few per turn: what the
  CLI, another instance that stopped, or a restore from a backup changed.

A room's text is read in memory (``Room.text``); a stored document's is built in the workers
(integrating a long log is seconds of CPU). The store writes an entry only if the document
still exists and the index holds no newer text of it, so a deletion, or a slower trigger
racing a faster one, never brings an old text back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from . import search_text
from .panics import CrdtFailures
from .room import Room
from .rooms import Rooms
from .storage import Store, StoreError
from .workers import Busy, TooLarge, Workers

log = logging.getLogger("tandem.search")

# Documents the catch-up indexes per turn (each is a read and a worker job), out of at most
# four times as many it looks at (those held by a room here are passed over).
CATCHUP_BATCH = 16
# Rooms indexed per turn at most (the others are still due at the next turn).
ROOMS_PER_TURN = 64
# Seconds between two catch-up walks over the documents.
CATCHUP_EVERY = 10.0
# Seconds a room being edited without a pause waits at most to be indexed again.
MAX_WAIT = 60.0
# Seconds the indexer pauses after the store failed a write.
RETRY_DELAY = 5.0

# A document whose ``content`` pycrdt cannot give as text (another app's type of that name).
_NO_TEXT = CrdtFailures(lambda exc: search_text.Unreadable(f"no text to index: {exc}"))


@dataclass(slots=True)
class _Mark:
    """How far a loaded room is indexed."""

    # The room's last_edit_at its indexed text is as of (None: not indexed since loaded).
    edit: float | None
    # When (monotonic) it was indexed, or first seen edited.
    at: float


class SearchIndexer:
    def __init__(
        self,
        store: Store,
        rooms: Rooms,
        workers: Workers,
        *,
        quiet: float = 3.0,
        max_wait: float = MAX_WAIT,
        batch: int = CATCHUP_BATCH,
        catchup_every: float = CATCHUP_EVERY,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.workers = workers
        self.quiet = quiet
        self.max_wait = max_wait
        self.batch = batch
        self.catchup_every = catchup_every
        self._marks: WeakKeyDictionary[Room, _Mark] = WeakKeyDictionary()
        # Documents compacted since the last turn: their rooms are indexed at once.
        self._compacted: set[str] = set()
        # The catch-up walk: names after this one come next; when the next walk starts.
        self._cursor = ""
        self._next_walk = 0.0
        # Documents the workers cannot take (too large, unreadable), with the updated_at they
        # were skipped at.
        self._skipped: dict[str, float] = {}
        self._paused_until = 0.0

    @property
    def period(self) -> float:
        """Seconds between two turns."""
        return min(1.0, max(0.1, self.quiet / 4))

    def compacted(self, doc: str) -> None:
        """The store's ``on_compacted``: called in the writer's turn, so only noted."""
        self._compacted.add(doc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            if time.monotonic() < self._paused_until:
                continue
            try:
                await self.once()
            except StoreError as exc:  # the store cannot be read: /healthz says so; next turn
                log.warning("the search index waits for the store: %s", exc)
            except Exception:  # a bug must not stop the indexing for good: logged, next turn
                log.exception("a turn of the search indexing failed")

    async def once(self) -> int:
        """One turn: the rooms due, then a batch of the catch-up. Returns how many were
        indexed."""
        now = time.monotonic()
        compacted, self._compacted = self._compacted, set()
        done = 0
        for room in self.rooms.loaded():
            if done >= ROOMS_PER_TURN or time.monotonic() < self._paused_until:
                self._compacted |= compacted  # still due at the next turn
                break
            if self._due(room, now, room.name in compacted):
                done += await self.index_room(room)
        if time.monotonic() < self._paused_until:
            return done
        return done + await self._catch_up(now)

    def _due(self, room: Room, now: float, compacted: bool) -> bool:
        if not room.written:
            return False  # holds what the store holds: the catch-up's
        mark = self._marks.get(room)
        if mark is None:
            mark = self._marks[room] = _Mark(None, now)
        if mark.edit == room.last_edit_at:
            return False
        return compacted or now - room.last_edit_at >= self.quiet or now - mark.at >= self.max_wait

    async def unloading(self, room: Room) -> None:
        """The room leaves memory (``Rooms.on_unload``): its edits not indexed yet are."""
        mark = self._marks.get(room)
        if room.written and (mark is None or mark.edit != room.last_edit_at):
            await self.index_room(room)

    async def index_room(self, room: Room) -> bool:
        """Index a loaded room's text as it is now."""
        edit = room.last_edit_at
        try:
            with _NO_TEXT:
                title, text = search_text.entry(room.text)
        except search_text.Unreadable as exc:  # not again until it is edited again
            log.warning("%r is not indexed for search: %s", room.name, exc)
            self._marks[room] = _Mark(edit, time.monotonic())
            return False
        try:
            # Queued now, behind every append the text holds: the store's "as of" is right.
            await self.store.index_document(room.name, title, text)
        except Exception as exc:  # a failing store: reported, tried again after a pause
            self._failed(room.name, exc)
            return False
        self._marks[room] = _Mark(edit, time.monotonic())
        return True

    async def index_stored(self, name: str, updated_at: float) -> bool:
        """Index a document from the store, as of its ``updated_at`` (read before this)."""
        try:
            stored = await self.store.load_document(name)
        except StoreError as exc:  # reported; the next walk tries again
            log.warning("could not read %r to index it for search: %s", name, exc)
            return False
        if not stored.updates:
            return False
        try:
            self.workers.check_size(sum(len(update) for update in stored.updates))
            title, text = await self.workers.run(search_text.stored_entry, stored.updates)
        except (TooLarge, search_text.Unreadable) as exc:  # not again until it changes
            log.warning("%r is not indexed for search: %s", name, exc)
            self._skipped[name] = updated_at
            return False
        except Busy as exc:  # the workers are taken by requests: the next walk tries again
            log.info("indexing %r waits for the workers: %s", name, exc)
            return False
        try:
            return await self.store.index_document(name, title, text, source_at=updated_at)
        except Exception as exc:  # a failing store: reported, tried again after a pause
            self._failed(name, exc)
            return False

    async def _catch_up(self, now: float) -> int:
        """A batch of the walk over documents changed since they were indexed: those not held
        by a room written to here (that room's own triggers index it), and quiet for
        ``quiet`` seconds (an instance editing them indexes them then)."""
        if now < self._next_walk:
            return 0
        looked_at = 4 * self.batch
        found = await self.store.stale_documents(self._cursor, time.time() - self.quiet, looked_at)
        done = 0
        for info in found:
            if done >= self.batch:
                return done
            self._cursor = info.name
            room = self.rooms.get(info.name)
            if room is not None and room.written:
                continue
            if self._skipped.get(info.name) == info.updated_at:
                continue
            done += await self.index_stored(info.name, info.updated_at)
            if time.monotonic() < self._paused_until:
                return done
        if len(found) < looked_at:  # the walk is over: the next one starts in a while
            self._cursor = ""
            self._next_walk = now + self.catchup_every
        return done

    def _failed(self, name: str, exc: Exception) -> None:
        log.error(
            "could not index %r for search (trying again in %g s): %s", name, RETRY_DELAY, exc
        )
        self._paused_until = time.monotonic() + RETRY_DELAY
