"""Document-level operations shared by the HTTP API and the CLI: states, versions, restore,
import, deletion. Reads the live room when a document is loaded, the store otherwise; the rooms
are the server's (:class:`server.rooms.Rooms`) or, for the CLI, rooms of its own
(:class:`server.rooms.DetachedRooms`). CPU-heavy work (diffs, exports, restore plans, state
digests) runs in the workers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Collection, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from pycrdt import get_state, merge_updates

from . import jobs, text_replace
from .exports import Rendered
from .protocol import ProtocolError
from .room import EMPTY_STATE_VECTOR, Room
from .storage import AckCallback, Store, VersionInfo, compact_updates
from .updates import check_state_vector, check_update, encode_state_vector
from .versioning import versions_to_drop
from .workers import Busy, TooLarge, Workers

log = logging.getLogger("tandem.documents")

# A restore plans its edits off the event loop; if editors change the text meanwhile, it plans
# again, this many times at most.
RESTORE_ATTEMPTS = 3


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class PreconditionFailed(RuntimeError):
    """The text is not the one an ``If-Match`` ETag names any more (HTTP 412)."""

    def __init__(self, etag: str) -> None:
        super().__init__("the text changed since that ETag was taken; nothing was changed")
        self.etag = etag


class NotCommitted(RuntimeError):
    """A change is in the document and relayed, but the store did not commit it in time (it
    fails): it stays queued and is committed once the store can write again (HTTP 503)."""


# An ``If-Match`` that holds for any text of a document that exists.
ANY_ETAG = "*"


def text_etag(text: str) -> str:
    """The strong ETag of a text: the txt export's, and what ``If-Match`` is checked against."""
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class TextWritten:
    """What a text write left: the document's state vector (committed), its text's length in
    characters and ETag."""

    state_vector: bytes
    length: int
    etag: str


def _commit_future() -> tuple[asyncio.Future[None], AckCallback]:
    committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not committed.done():  # the waiter may be gone (timed out, client left)
            committed.set_result(None)

    return committed, done


async def _until_committed(committed: asyncio.Future[None], timeout: float | None) -> None:
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(committed)
    except TimeoutError as exc:
        raise NotCommitted(
            f"the change is applied and relayed but was not committed within {timeout:g} s "
            "(the store cannot write: see /healthz); it is kept and committed once the store "
            "recovers"
        ) from exc


def _text_written(room: Room) -> TextWritten:
    text = room.text
    return TextWritten(room.state_vector(), len(text), text_etag(text))


def reach(updates: Iterable[bytes]) -> dict[int, int]:
    """For each client, the clock up to which ``updates`` hold (or delete) its items: the
    state vector of everything in them, also what still waits for missing dependencies."""
    clocks: dict[int, int] = {}
    for update in updates:
        try:
            summary = check_update(update)
        except ProtocolError:  # a row stored before the strict reading: yrs's own view
            found = check_state_vector(get_state(update))
            ranges = [(client, 0, clock) for client, clock in found.items()]
        else:
            ranges = summary.structs + summary.deletes
        for client, _start, end in ranges:
            if end > clocks.get(client, 0):
                clocks[client] = end
    return clocks


class RoomSource(Protocol):
    """Where documents' rooms come from: the server's loaded rooms, or the CLI's own."""

    def get(self, name: str) -> Room | None: ...

    async def acquire(self, name: str, address: str | None = None) -> Room: ...

    def release(self, room: Room) -> None: ...

    def deleting(self, name: str) -> AbstractAsyncContextManager[Room | None]: ...

    def deleted(self, name: str) -> None: ...


class Documents:
    def __init__(
        self,
        store: Store,
        rooms: RoomSource,
        *,
        workers: Workers | None = None,
        max_versions: int = 100,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.workers = workers or Workers(0)
        self.max_versions = max_versions

    # --- reading -------------------------------------------------------------------------

    async def live_state(self, name: str) -> bytes | None:
        """The current full state (None if the document does not exist)."""
        room = self.rooms.get(name)
        if room is not None:
            return room.full_state()
        updates = await self.store.load(name)
        if not updates:
            return None
        if len(updates) == 1:
            return updates[0]
        # A Doc's encoding (plus anything it could not integrate yet) — merge_updates is
        # quadratic in the number of updates.
        parts = compact_updates(updates)
        return parts[0] if len(parts) == 1 else merge_updates(*parts)

    async def state(self, name: str, version: int | None = None) -> bytes:
        """The live state, or a saved version's; raises NotFound."""
        if version is None:
            state = await self.live_state(name)
            if state is None:
                raise NotFound(f"no document named {name!r}")
            return state
        found = await self.store.version(name, version)
        if found is None:
            raise NotFound(f"document {name!r} has no version {version}")
        return found[1]

    async def missing(self, name: str, state_vector: bytes | None) -> bytes:
        """The update the holder of ``state_vector`` lacks (the whole state without one).
        Raises ProtocolError for a bad state vector, DocumentDeleted for one of a deleted
        incarnation, NotFound."""
        if state_vector is None:
            return await self.state(name)
        check_state_vector(state_vector)  # a bad one is a bad request, whether or not it exists
        if self.rooms.get(name) is None and await self.store.document(name) is None:
            raise NotFound(f"no document named {name!r}")
        room = await self.rooms.acquire(name)
        try:
            return room.missing(state_vector)
        finally:
            self.rooms.release(room)

    async def export(self, name: str, fmt: str, version: int | None = None) -> Rendered:
        """The document (or a version) in an export format; raises NotFound, UnknownFormat,
        TooLarge, Busy."""
        state = await self.state(name, version)
        self.workers.check_size(len(state))
        info = await self.store.document(name)
        updated_at = info.updated_at if info else None
        return await self.workers.run(jobs.export, fmt, name, state, version, updated_at)

    async def text(self, name: str, version: int | None = None) -> str:
        state = await self.state(name, version)
        self.workers.check_size(len(state))
        return await self.workers.run(jobs.text, state)

    async def diff(self, name: str, a: int | None, b: int | None) -> str:
        """Unified diff of the text of version ``a`` to version ``b`` (None: live)."""
        before = await self.state(name, a)
        after = await self.state(name, b)
        self.workers.check_size(len(before), len(after))
        label = lambda v: "live" if v is None else f"version {v}"  # noqa: E731
        return await self.workers.run(jobs.diff, name, before, after, label(a), label(b))

    # --- versions --------------------------------------------------------------------------

    async def save_version(self, name: str, label: str | None = None, auto: bool = False) -> int:
        """Save the live state as a version; returns its id. The same state as the newest
        version is not saved again: that version's id is returned (a named save turns an
        automatic one into a named one). Raises NotFound, Conflict (too many named versions)."""
        state = await self.live_state(name)
        if state is None:
            raise NotFound(f"no document named {name!r}")
        digest: bytes | None
        try:
            self.workers.check_size(len(state))
            digest = await self.workers.run(jobs.state_digest, state)
        except (TooLarge, Busy) as exc:  # the check is an economy: never a reason not to save
            log.info("saving %r without the identical-state check: %s", name, exc)
            digest = None
        newest = await self.store.newest_version(name)
        if newest is not None and digest is not None and newest.digest == digest:
            version_id = newest.id
            if not auto and newest.auto:
                await self.store.name_version(name, version_id, label)
        else:
            if not auto:
                named = await self.store.count_named_versions(name)
                if named >= self.max_versions:
                    raise Conflict(
                        f"document {name!r} has {named} named versions, the most allowed: "
                        "delete one first"
                    )
            version_id = await self.store.save_version(name, state, label, auto, digest)
        room = self.rooms.get(name)
        if room is not None:
            room.dirty = False
            room.last_version_at = time.monotonic()
        if auto:
            await self.thin(name)
        return version_id

    async def versions(self, name: str) -> list[VersionInfo]:
        if await self.store.document(name) is None and await self.live_state(name) is None:
            raise NotFound(f"no document named {name!r}")
        return await self.store.list_versions(name)

    async def delete_version(self, name: str, version: int) -> None:
        if not await self.store.delete_versions(name, [version]):
            raise NotFound(f"document {name!r} has no version {version}")

    async def thin(self, name: str, now: float | None = None) -> int:
        drop = versions_to_drop(await self.store.list_versions(name), now or time.time())
        return await self.store.delete_versions(name, drop)

    # --- edits -----------------------------------------------------------------------------

    async def restore(self, name: str, version: int) -> int:
        """Make the live text equal the version's, as a new edit. Returns the id of the version
        saved just before (restoring that one undoes the restore)."""
        state = await self.state(name, version)
        self.workers.check_size(len(state))
        # With its embeds as placeholders, on both sides: offsets past an embed stay right.
        target = await self.workers.run(jobs.indexed_text, state)
        # Named as the History panel numbers versions: per document, not by database id.
        info = await self.store.version_info(name, version)
        shown = info.number if info is not None and info.number else version
        before = await self.save_version(name, f"before restoring version {shown}")
        room = await self.rooms.acquire(name)
        try:
            for _ in range(RESTORE_ATTEMPTS):
                current = room.indexed_text
                self.workers.check_size(len(current), len(target))
                edits = await self.workers.run(jobs.text_edits, current, target)
                # Planned off the loop: apply only if nobody changed the text meanwhile.
                if room.indexed_text == current:
                    room.edit_text(edits)
                    break
            else:
                raise Busy("the document kept changing during the restore; try again")
        finally:
            self.rooms.release(room)
        await self.store.flush()
        return before

    async def apply_update(self, name: str, update: bytes, commit_timeout: float | None) -> bytes:
        """Apply a Yjs update as a client's would be (:meth:`Room.apply_update`) and wait for
        its commit; returns the document's state vector with it. Raises ProtocolError,
        DocumentDeleted, MissingDependencies, NotCommitted."""
        committed, on_commit = _commit_future()
        room = await self.rooms.acquire(name)
        try:
            state = room.apply_update(update, on_commit)
        finally:
            self.rooms.release(room)
        await _until_committed(committed, commit_timeout)
        return state

    async def replace_text(
        self,
        name: str,
        text: str,
        if_match: Collection[str] | None,
        commit_timeout: float | None,
    ) -> TextWritten:
        """Make the live text equal ``text`` by a minimal forward edit (only the lines that
        differ change: what editors type elsewhere meanwhile stays), planned in the workers
        as a restore is, and wait for its commit. ``if_match``: ETags (or ``*``) one of which
        the current text must have. Raises PreconditionFailed, TooLarge, Busy, NotCommitted."""
        committed, on_commit = _commit_future()
        room = await self.rooms.acquire(name)
        try:
            for _ in range(RESTORE_ATTEMPTS):
                if if_match is not None:
                    self._check_etag(room, if_match)
                current = room.indexed_text
                self.workers.check_size(len(current), len(text))
                edits = await self.workers.run(text_replace.replacement_edits, current, text)
                # Planned off the loop: apply only if nobody changed the text meanwhile (if
                # someone did, the next round checks If-Match against the new text).
                if room.indexed_text == current:
                    room.edit_text(edits, on_commit)
                    break
            else:
                raise Busy("the document kept changing while the edit was planned; try again")
            written = _text_written(room)
        finally:
            self.rooms.release(room)
        await _until_committed(committed, commit_timeout)
        return written

    async def append_text(self, name: str, text: str, commit_timeout: float | None) -> TextWritten:
        """Add ``text`` at the end of the live text and wait for its commit."""
        committed, on_commit = _commit_future()
        room = await self.rooms.acquire(name)
        try:
            end = room.text_end
            room.edit_text([(end, end, text)] if text else [], on_commit)
            written = _text_written(room)
        finally:
            self.rooms.release(room)
        await _until_committed(committed, commit_timeout)
        return written

    def _check_etag(self, room: Room, if_match: Collection[str]) -> None:
        etag = text_etag(room.text)
        if etag in if_match:
            return
        if ANY_ETAG in if_match and room.state_vector() != EMPTY_STATE_VECTOR:
            return
        raise PreconditionFailed(etag)

    async def import_text(self, name: str, text: str) -> None:
        """Fill a document that does not exist yet or whose text is empty; 409 otherwise.

        Importing over existing CRDT text would duplicate it in every client that holds it.
        """
        room = await self.rooms.acquire(name)
        try:
            if str(room.text):
                raise Conflict(f"document {name!r} already has content; import needs it empty")
            room.edit_text(jobs.text_edits("", text))
        finally:
            self.rooms.release(room)
        await self.store.flush()

    async def create(self, name: str, update: bytes, commit_timeout: float | None) -> None:
        """Make a new document whose first update is ``update`` (a copy's: server.duplicate)
        and wait for its commit. Conflict if the document exists: stored, open, or holding
        anything. Also raises ProtocolError, DocumentDeleted, MissingDependencies, NotCommitted
        (as :meth:`apply_update`)."""
        if await self.store.document(name) is not None:
            raise Conflict(f"document {name!r} exists already")
        committed, on_commit = _commit_future()
        room = await self.rooms.acquire(name)
        try:
            # Checked and applied in one step (nothing awaited between): no edit slips in.
            if room.peers or room.state_vector() != EMPTY_STATE_VECTOR:
                raise Conflict(f"document {name!r} exists already")
            room.apply_update(update, on_commit)
        finally:
            self.rooms.release(room)
        await _until_committed(committed, commit_timeout)

    async def delete(self, name: str) -> bool:
        """Delete the document, leaving a tombstone: the state vector of everything it held,
        so that no copy of it (an open tab, an offline copy) can bring it back or merge into a
        new document of the same name. Returns whether it existed."""
        async with self.rooms.deleting(name):
            existed = await self._delete(name)
        self.rooms.deleted(name)
        return existed

    async def _delete(self, name: str) -> bool:
        await self.store.flush()  # every update the room took in is in the log read below
        stored = await self.store.load_document(name)
        if not stored.updates:
            return await self.store.delete_document(name)
        clocks = check_state_vector(stored.tombstone) if stored.tombstone else {}
        for client, clock in reach(stored.updates).items():
            clocks[client] = max(clock, clocks.get(client, 0))
        return await self.store.delete_document(name, encode_state_vector(clocks))
