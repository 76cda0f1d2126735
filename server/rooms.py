"""The set of loaded rooms: loads a document before anyone syncs with it, unloads idle ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from .contract import CloseCode
from .limits import RateLimits
from .panics import CrdtFailures
from .room import Room, RoomLimits
from .storage import Store

log = logging.getLogger("tandem.rooms")


class RoomLoadError(RuntimeError):
    """The stored document could not be loaded; nobody may use (or overwrite) it now."""


class RoomsFull(RuntimeError):
    """As many documents are loaded as the server allows; try again later."""


class TooManyNewRooms(RuntimeError):
    """This address loads new documents faster than allowed; try again later."""


class RoomFeed(Protocol):
    """What else learns of rooms coming and going: the cluster (server.cluster.node.Cluster)
    subscribes to a document before it is loaded, takes over once it is, and hears of deletions."""

    async def opening(self, name: str) -> None: ...

    def opened(self, room: Room) -> None: ...

    def closed(self, name: str) -> None: ...

    def deleted(self, name: str) -> None: ...

    def presence(self, room: Room, conn_id: int, update: bytes) -> None: ...

    def left(self, room: Room, conn_id: int) -> None: ...


async def load_room(store: Store, name: str, limits: RoomLimits | None = None) -> Room:
    """A room holding what the store has of ``name``; raises RoomLoadError (nothing else) if
    that cannot be read, so a damaged document is refused, never replaced by an empty one."""

    def refused(exc: BaseException) -> RoomLoadError:
        log.error("cannot load document %r: %s", name, exc)
        return RoomLoadError(f"document {name!r} could not be loaded")

    room = Room(name, store, limits)
    with CrdtFailures(refused):
        stored = await store.load_document(name)
        authors = await store.authors(name)
        room.load(stored.updates, stored.snapshot_state, stored.tombstone)
        room.authors.load(authors)
    room.loaded_seq = stored.last_seq or 0
    return room


class DetachedRooms:
    """Rooms for the CLI, with no server: each acquired room is loaded from the store and
    belongs to nobody else; nothing is kept."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str) -> Room | None:
        return None

    async def acquire(self, name: str, address: str | None = None) -> Room:
        return await load_room(self.store, name)

    def release(self, room: Room) -> None:
        return None

    def deleted(self, name: str) -> None:
        return None

    @contextlib.asynccontextmanager
    async def deleting(self, name: str) -> AsyncIterator[Room | None]:
        yield None


class Rooms:
    def __init__(
        self,
        store: Store,
        grace_period: float,
        *,
        limits: RoomLimits | None = None,
        max_rooms: int = 10_000,
        new_rooms: RateLimits | None = None,
    ) -> None:
        self.store = store
        self.grace_period = grace_period
        self.limits = limits or RoomLimits()
        self.max_rooms = max_rooms
        # Loads of documents not in memory yet, per client address.
        self.new_rooms = new_rooms
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        # Names being deleted: no room for them until the deletion is committed.
        self._deleting: dict[str, asyncio.Future[None]] = {}
        # Called before a room leaves memory (unload or shutdown): automatic versions.
        self.on_unload: Callable[[Room], Awaitable[None]] | None = None
        # The cluster, when there is one.
        self.feed: RoomFeed | None = None

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def loaded(self) -> list[Room]:
        return list(self._rooms.values())

    async def acquire(self, name: str, address: str | None = None) -> Room:
        """The loaded room for ``name``, loading it from the store first if needed.

        ``address``: the client's, for the new-document rate (None: the server itself)."""
        while True:
            gate = self._deleting.get(name)
            if gate is not None:
                await asyncio.shield(gate)
                continue
            room = self._rooms.get(name)
            if room is not None:
                self._cancel_unload(room)
                return room
            pending = self._loading.get(name)
            if pending is None:
                return await self._load_new(name, address)
            room = await asyncio.shield(pending)
            # The room may have been let go (or deleted) between its load and this waiter's
            # turn: only a room that is still the loaded one may be joined.
            if self._rooms.get(name) is room:
                self._cancel_unload(room)
                return room

    async def _load_new(self, name: str, address: str | None) -> Room:
        if len(self._rooms) + len(self._loading) >= self.max_rooms:
            raise RoomsFull(f"{self.max_rooms} documents are loaded already")
        if address is not None and self.new_rooms is not None and not self.new_rooms.take(address):
            raise TooManyNewRooms(f"{address} opens new documents too fast")
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

    async def _load(self, name: str) -> Room:
        feed = self.feed
        if feed is None:
            return await load_room(self.store, name, self.limits)
        # Subscribed before the read: what another instance commits after it is not missed.
        await feed.opening(name)
        try:
            room = await load_room(self.store, name, self.limits)
        except BaseException:
            feed.closed(name)
            raise
        room.outbound = feed
        feed.opened(room)
        return room

    def _gone(self, room: Room) -> None:
        """``room`` left memory."""
        if self.feed is not None:
            self.feed.closed(room.name)

    def deleted(self, name: str) -> None:
        """The document was deleted (committed): the other instances close it too."""
        if self.feed is not None:
            self.feed.deleted(name)

    def release(self, room: Room) -> None:
        """A peer left. A room nobody wrote to goes at once (it holds nothing the store does
        not); one that was written to is unloaded after the grace period if it stays empty."""
        if room.peers or self._rooms.get(room.name) is not room:
            return
        self._cancel_unload(room)
        if not room.written:
            del self._rooms[room.name]
            self._gone(room)
            log.debug("let go of %r (never written to)", room.name)
            return
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
            self._gone(room)
            log.debug("unloaded %r", room.name)

    @contextlib.asynccontextmanager
    async def deleting(self, name: str) -> AsyncIterator[Room | None]:
        """While the document is deleted: its clients are told (4410) and no room for the name
        is loaded until the deletion is over. Yields the room it had loaded, if any."""
        while name in self._deleting:
            await asyncio.shield(self._deleting[name])
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._deleting[name] = gate
        try:
            loading = self._loading.get(name)
            if loading is not None:  # let a load in progress finish, then take it out
                with contextlib.suppress(RoomLoadError):
                    await asyncio.shield(loading)
            room = self._rooms.pop(name, None)
            if room is not None:
                self._gone(room)
                self._cancel_unload(room)
                for peer in list(room.peers):
                    peer.close(CloseCode.documentDeleted, "document deleted")
            yield room
        finally:
            del self._deleting[name]
            gate.set_result(None)

    async def close(self) -> None:
        for room in list(self._rooms.values()):
            self._cancel_unload(room)
            if self.on_unload is not None:
                await self.on_unload(room)
        await self.store.flush()
        for room in self._rooms.values():
            self._gone(room)
        self._rooms.clear()
