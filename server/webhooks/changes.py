"""``document.changed``: made from the store's notes of edited documents once a document has
been quiet for ``quiet`` seconds, or at most every ``max_wait`` seconds while editing goes on.

The note is consumed in the transaction that writes the event, so a crash in between leaves the
note, and the event is made after the restart. Several instances may look at one note: the
store lets one of them consume it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from pycrdt import Text

from ..contract import CONTENT_TEXT
from ..integrate import load_doc
from ..storage import Store, StoreError
from ..storage.events import CHANGED, NewEvent, PendingChange

if TYPE_CHECKING:
    from ..rooms import Rooms

log = logging.getLogger("tandem.webhooks")


class ChangeEvents:
    def __init__(
        self,
        store: Store,
        rooms: Rooms,
        *,
        quiet: float = 2.0,
        max_wait: float = 10.0,
        interval: float = 0.5,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.quiet = quiet
        self.max_wait = max_wait
        self.interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.once()
            except StoreError as exc:  # the store is failing: /healthz says so; next turn
                log.warning("change events wait for the store: %s", exc)

    async def once(self) -> int:
        made = 0
        for change in await self.store.quiet_changes(time.time(), self.quiet, self.max_wait):
            state_vector, text_length = await self._describe(change)
            event = NewEvent(CHANGED, change.doc, time.time(), state_vector, text_length)
            made += await self.store.consume_change(change, event)
        return made

    async def _describe(self, change: PendingChange) -> tuple[bytes, int]:
        """The document's state vector and text length now: from its room if loaded, else
        from the store (in a thread: it may be large)."""
        room = self.rooms.get(change.doc)
        if room is not None:
            return room.state_vector(), len(room.text)
        updates = await self.store.load(change.doc)

        def read() -> tuple[bytes, int]:
            doc = load_doc(updates)
            return doc.get_state(), len(str(doc.get(CONTENT_TEXT, type=Text)))

        return await asyncio.to_thread(read)
