"""The set of loaded rooms: loads a document before anyone syncs with it, unloads idle ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .contract import CloseCode
from .room import Room, RoomLimits
from .store import Store

log = logging.getLogger("tandem.rooms")


class RoomLoadError(RuntimeError):
    """The stored document could not be loaded; nobody may use (or overwrite) it now."""


class RoomsFull(RuntimeError):
    """As many documents are loaded as the server allows; try again later."""


class Rooms:
    def __init__(
        self,
        store: Store,
        grace_period: float,
        *,
        limits: RoomLimits | None = None,
        max_rooms: int = 10_000,
    ) -> None:
        self.store = store
        self.grace_period = grace_period
        self.limits = limits or RoomLimits()
        self.max_rooms = max_rooms
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        # Called before a room leaves memory (unload or shutdown): automatic versions.
        self.on_unload: Callable[[Room], Awaitable[None]] | None = None

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def loaded(self) -> list[Room]:
        return list(self._rooms.values())

    async def acquire(self, name: str) -> Room:
        """The loaded room for ``name``, loading it from the store first if needed."""
        room = self._rooms.get(name)
        if room is not None:
            self._cancel_unload(room)
            return room
        pending = self._loading.get(name)
        if pending is None:
            if len(self._rooms) + len(self._loading) >= self.max_rooms:
                raise RoomsFull(f"{self.max_rooms} documents are loaded already")
            pending = asyncio.get_running_loop().create_future()
            self._loading[name] = pending
            try:
                room = await self._load(name)
            except RoomLoadError as exc:
                pending.set_exception(exc)
                # Every waiter gets the exception; retrieve it so no "never retrieved" noise.
                pending.exception()
                raise
            finally:
                del self._loading[name]
            self._rooms[name] = room
            pending.set_result(room)
            return room
        room = await asyncio.shield(pending)
        self._cancel_unload(room)
        return room

    async def _load(self, name: str) -> Room:
        room = Room(name, self.store, self.limits)
        try:
            stored = await self.store.load_document(name)
            room.load(stored.updates, stored.snapshot_state)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pycrdt panics are BaseExceptions
            log.error("cannot load document %r: %s", name, exc)
            raise RoomLoadError(f"document {name!r} could not be loaded") from exc
        return room

    def release(self, room: Room) -> None:
        """A peer left; unload the room after the grace period if it stays empty."""
        if room.peers or self._rooms.get(room.name) is not room:
            return
        self._cancel_unload(room)
        room.unload_task = asyncio.create_task(self._unload_later(room))

    def _cancel_unload(self, room: Room) -> None:
        if room.unload_task is not None:
            room.unload_task.cancel()
            room.unload_task = None

    async def _unload_later(self, room: Room) -> None:
        await asyncio.sleep(self.grace_period)
        if self.on_unload is not None:
            await self.on_unload(room)
        # Everything this room took in is committed before it goes (flush waits through a
        # storage fault: the room stays loaded until its updates are durable).
        await self.store.flush()
        if self._rooms.get(room.name) is room and not room.peers:
            del self._rooms[room.name]
            room.unload_task = None
            log.debug("unloaded %r", room.name)

    async def evict(self, name: str) -> None:
        """Drop a room now (its document is being deleted); its clients are told to stop."""
        room = self._rooms.pop(name, None)
        if room is None:
            return
        self._cancel_unload(room)
        for peer in list(room.peers):
            peer.close(CloseCode.badDocumentName, "document deleted")

    async def close(self) -> None:
        for room in list(self._rooms.values()):
            self._cancel_unload(room)
            if self.on_unload is not None:
                await self.on_unload(room)
        await self.store.flush()
        self._rooms.clear()
