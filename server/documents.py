"""Document-level operations shared by the HTTP API and the CLI: states, versions, restore,
import, automatic versions. Reads the live room when a document is loaded, the store otherwise.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time

from pycrdt import merge_updates

from .exports import Rendered, render, text_of
from .room import Room
from .rooms import Rooms
from .store import Store, VersionInfo, compact_updates
from .versioning import versions_to_drop

log = logging.getLogger("tandem.documents")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class Documents:
    def __init__(
        self,
        store: Store,
        rooms: Rooms | None = None,
        *,
        version_quiet: float = 120.0,
        version_interval: float = 600.0,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.version_quiet = version_quiet
        self.version_interval = version_interval

    # --- reading -------------------------------------------------------------------------

    async def live_state(self, name: str) -> bytes | None:
        """The current full state (None if the document does not exist)."""
        room = self.rooms.get(name) if self.rooms else None
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

    async def export(self, name: str, fmt: str, version: int | None = None) -> Rendered:
        """The document (or a version) in an export format; raises NotFound, UnknownFormat."""
        state = await self.state(name, version)
        info = await self.store.document(name)
        return render(
            fmt,
            name=name,
            state=state,
            version=version,
            updated_at=info.updated_at if info else None,
            size_bytes=len(state),
        )

    async def text(self, name: str, version: int | None = None) -> str:
        return text_of(await self.state(name, version))

    async def diff(self, name: str, a: int | None, b: int | None) -> str:
        """Unified diff of the text of version ``a`` to version ``b`` (None: live)."""
        before = await self.text(name, a)
        after = await self.text(name, b)
        label = lambda v: "live" if v is None else f"version {v}"  # noqa: E731
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{name} ({label(a)})",
            tofile=f"{name} ({label(b)})",
        )
        # A last line without a newline gets the standard marker, as diff(1) writes it.
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )

    # --- versions --------------------------------------------------------------------------

    async def save_version(self, name: str, label: str | None = None, auto: bool = False) -> int:
        state = await self.live_state(name)
        if state is None:
            raise NotFound(f"no document named {name!r}")
        version_id = await self.store.save_version(name, state, label, auto)
        room = self.rooms.get(name) if self.rooms else None
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

    async def thin(self, name: str, now: float | None = None) -> int:
        drop = versions_to_drop(await self.store.list_versions(name), now or time.time())
        return await self.store.delete_versions(name, drop)

    # --- edits -----------------------------------------------------------------------------

    async def _with_room(self, name: str) -> Room:
        """The live room; without a server (the CLI), a detached room over the stored state."""
        if self.rooms is not None:
            return await self.rooms.acquire(name)
        room = Room(name, self.store)
        room.load(await self.store.load(name))
        return room

    def _release(self, room: Room) -> None:
        if self.rooms is not None:
            self.rooms.release(room)

    async def restore(self, name: str, version: int) -> int:
        """Make the live text equal the version's, as a new edit. Returns the id of the version
        saved just before (restoring that one undoes the restore)."""
        target = await self.text(name, version)
        before = await self.save_version(name, f"before restoring version {version}")
        room = await self._with_room(name)
        try:
            room.replace_text(target)
        finally:
            self._release(room)
        await self.store.flush()
        return before

    async def import_text(self, name: str, text: str) -> None:
        """Fill a document that does not exist yet or whose text is empty; 409 otherwise.

        Importing over existing CRDT text would duplicate it in every client that holds it.
        """
        room = await self._with_room(name)
        try:
            if str(room.text):
                raise Conflict(f"document {name!r} already has content; import needs it empty")
            room.replace_text(text)
        finally:
            self._release(room)
        await self.store.flush()

    async def delete(self, name: str) -> bool:
        if self.rooms is not None:
            await self.rooms.evict(name)
        return await self.store.delete_document(name)

    # --- automatic versions ----------------------------------------------------------------

    def _due(self, room: Room, now: float) -> bool:
        return room.dirty and (
            now - room.last_edit_at >= self.version_quiet
            or now - room.last_version_at >= self.version_interval
        )

    async def autosave_loop(self) -> None:
        """After a burst of editing ends, and at most every interval while it goes on."""
        assert self.rooms is not None
        period = max(0.2, min(self.version_quiet, self.version_interval) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for room in self.rooms.loaded():
                if self._due(room, now):
                    await self.autosave(room)

    async def autosave(self, room: Room) -> None:
        """Save an automatic version of a room with unsaved edits (also called on unload)."""
        if not room.dirty:
            return
        try:
            await self.save_version(room.name, auto=True)
        except Exception as exc:  # a failed autosave must not stop the loop; it retries
            log.error("automatic version of %r failed: %s", room.name, exc)
