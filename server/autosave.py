"""Automatic versions: after a burst of editing ends (``quiet`` seconds without an edit), at least
every ``interval`` seconds while it goes on, and when a room with unsaved edits leaves memory."""

from __future__ import annotations

import asyncio
import logging
import time

from .documents import Documents
from .room import Room
from .rooms import Rooms

log = logging.getLogger("tandem.autosave")


class AutoVersions:
    def __init__(
        self, documents: Documents, rooms: Rooms, *, quiet: float = 120.0, interval: float = 600.0
    ) -> None:
        self.documents = documents
        self.rooms = rooms
        self.quiet = quiet
        self.interval = interval

    def _due(self, room: Room, now: float) -> bool:
        return room.dirty and (
            now - room.last_edit_at >= self.quiet or now - room.last_version_at >= self.interval
        )

    async def run(self) -> None:
        period = max(0.2, min(self.quiet, self.interval) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for room in self.rooms.loaded():
                if self._due(room, now):
                    await self.save(room)

    async def save(self, room: Room) -> None:
        """Save an automatic version of a room with unsaved edits (also called on unload)."""
        if not room.dirty:
            return
        try:
            await self.documents.save_version(room.name, auto=True)
        except Exception as exc:  # a failed autosave must not stop the loop; it retries
            log.error("automatic version of %r failed: %s", room.name, exc)
