"""This instance's part in a cluster: what it tells the others and what it takes from them.

- **Updates.** The store numbers each document's updates in commit order; once an update is
  committed (never before: an instance that dies after publishing must not leave the others
  holding edits no store has) it is published on the document's channel with its number. An
  instance holding the document takes it into its room (relayed to its clients, not stored
  again). Numbers it holds already are duplicates; a number past a gap makes it read the
  missing ones from the store (``load_after``) shortly after, and a poll of every loaded
  document's last number catches what no message announced (a lost last message, Redis down).
- **Late subscribers.** A room is subscribed to before it is loaded; what arrives meanwhile is
  kept and, once loaded, whatever is numbered past what the load read is taken.
- **Presence.** Awareness of this instance's connections is published; the others hold it
  under an owner naming the instance and the connection, so no client anywhere can change
  another's. A connection that leaves is announced; an instance that dies stops renewing its
  heartbeat key, and the others drop its clients' presence once the key expires.
- **Deletion.** A deleted document's rooms on every instance are closed (4410).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..storage import StoreError
from . import wire
from .bus import Bus
from .feed import SeqTracker

if TYPE_CHECKING:
    from ..room import Room
    from ..rooms import Rooms
    from ..storage.postgres import PostgresStore

log = logging.getLogger("tandem.cluster")

# How long a gap may stay open before the missing numbers are read from the store: messages
# from different instances may arrive in another order than their numbers.
GAP_WAIT = 0.2
_RECEIVED = {kind: metrics.CLUSTER_RECEIVED.labels(kind.decode()) for kind in wire._KINDS}


@dataclass(eq=False, slots=True)
class Feed:
    """One loaded (or loading) document's link to the cluster."""

    name: str
    room: Room | None = None
    tracker: SeqTracker = field(default_factory=SeqTracker)
    # Messages that arrived while the room was loading (None once it is loaded).
    early: list[wire.Message] | None = field(default_factory=list)
    repairing: bool = False
    repair_again: bool = False
    # The last number the previous poll read from the store.
    polled: int = 0


def remote_owner(instance: bytes, conn_id: int) -> tuple[str, bytes, int]:
    """Who owns presence that came from another instance's connection."""
    return ("remote", instance, conn_id)


def _is_remote(owner: Hashable) -> bool:
    return isinstance(owner, tuple) and len(owner) == 3 and owner[0] == "remote"


class Cluster:
    def __init__(
        self,
        redis_url: str,
        store: PostgresStore,
        rooms: Rooms,
        *,
        poll_interval: float = 1.0,
        heartbeat_ttl: float = 10.0,
    ) -> None:
        self.instance = uuid.uuid4().bytes
        self.store = store
        self.rooms = rooms
        self.poll_interval = poll_interval
        self.bus = Bus(
            redis_url,
            self.instance,
            self._received,
            self._reconnected,
            heartbeat_ttl=heartbeat_ttl,
        )
        self._feeds: dict[str, Feed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    @property
    def instance_id(self) -> str:
        return self.instance.hex()

    async def start(self) -> None:
        """Connect to Redis (ClusterError if it cannot be used), then watch."""
        await self.bus.start()
        self.store.on_committed = self.committed
        self._tasks = [
            asyncio.create_task(self._poll(), name="tandem-cluster-poll"),
            asyncio.create_task(self._watch_instances(), name="tandem-cluster-liveness"),
        ]
        log.info("joined the cluster as instance %s", self.instance_id)

    async def close(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.close()

    def status(self) -> dict[str, object]:
        return {
            "instance": self.instance_id,
            "redis": "connected" if self.bus.connected else "unreachable",
            "redis_error": self.bus.error,
        }

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _publish(self, doc: str, kind: bytes, number: int = 0, payload: bytes = b"") -> None:
        message = wire.Message(kind, self.instance, time.time(), number, payload)
        self.bus.publish(wire.channel(doc), wire.encode(message))

    # --- what Rooms tells us (server.rooms.RoomFeed) -------------------------------------------

    async def opening(self, name: str) -> None:
        """A room is about to be loaded: subscribe first, so nothing committed after the load's
        read is missed."""
        self._feeds[name] = Feed(name)
        await self.bus.subscribe(wire.channel(name))

    def opened(self, room: Room) -> None:
        feed = self._feeds.get(room.name)
        if feed is None or feed.early is None:
            return
        feed.room = room
        feed.tracker = SeqTracker(room.loaded_seq)
        early, feed.early = feed.early, None
        for message in early:
            self._take(feed, message)
        # Whoever holds presence in this document elsewhere: tell us.
        self._publish(room.name, wire.QUERY)

    def closed(self, name: str) -> None:
        if self._feeds.pop(name, None) is not None:
            self.bus.unsubscribe(wire.channel(name))

    def deleted(self, name: str) -> None:
        self._publish(name, wire.DELETED)

    # --- what rooms tell us (server.room.Outbound) ---------------------------------------------

    def presence(self, room: Room, conn_id: int, update: bytes) -> None:
        self._publish(room.name, wire.AWARENESS, conn_id, update)

    def left(self, room: Room, conn_id: int) -> None:
        self._publish(room.name, wire.LEFT, conn_id)

    # --- what the store tells us ---------------------------------------------------------------

    def committed(self, doc: str, seq: int, data: bytes) -> None:
        """An update of ours is durable: the others may have it now."""
        feed = self._feeds.get(doc)
        if feed is not None and feed.early is None:
            feed.tracker.see(seq)
        self._publish(doc, wire.UPDATE, seq, data)

    # --- what the others tell us ---------------------------------------------------------------

    def _received(self, channel: bytes, data: bytes) -> None:
        if wire.sender(data) == self.instance:
            return  # our own, back from Redis: told apart before anything is decoded
        if not channel.startswith(wire.channel("")):
            return
        try:
            doc = wire.doc_of(channel)
            message = wire.decode(data)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("ignored a malformed cluster message on %r: %s", channel[:80], exc)
            return
        _RECEIVED[message.kind].inc()
        feed = self._feeds.get(doc)
        if feed is None:
            return
        if feed.early is not None:
            feed.early.append(message)
            return
        self._take(feed, message)

    def _take(self, feed: Feed, message: wire.Message) -> None:
        room = feed.room
        assert room is not None
        kind = message.kind
        if kind == wire.UPDATE:
            metrics.CLUSTER_LAG.observe(max(0.0, time.time() - message.sent_at))
            if not feed.tracker.see(message.number):
                metrics.CLUSTER_DUPLICATES.inc()
                return
            room.remote(message.payload)
            if feed.tracker.gap:
                self._spawn(self._repair_soon(feed))
        elif kind == wire.AWARENESS:
            room.remote_presence(remote_owner(message.instance, message.number), message.payload)
        elif kind == wire.LEFT:
            room.remote_left(remote_owner(message.instance, message.number))
        elif kind == wire.QUERY:
            for conn_id, update in room.local_presence():
                self._publish(room.name, wire.AWARENESS, conn_id, update)
        elif kind == wire.DELETED and room.loaded_at <= message.sent_at:
            self._spawn(self._evict(feed.name, "deleted on another instance"))

    # --- repairs -------------------------------------------------------------------------------

    async def _repair_soon(self, feed: Feed) -> None:
        await asyncio.sleep(GAP_WAIT)
        if feed.tracker.gap:
            await self.repair(feed)

    async def repair(self, feed: Feed) -> None:
        """Read what this instance lacks of the document from the store, and take it in."""
        if feed.repairing:
            feed.repair_again = True
            return
        feed.repairing = True
        try:
            while True:
                feed.repair_again = False
                had_gap = feed.tracker.gap
                try:
                    rows = await self.store.load_after(feed.name, feed.tracker.applied)
                except StoreError as exc:
                    log.warning(
                        "cannot catch up %r now (the next poll retries): %s", feed.name, exc
                    )
                    return
                if self._feeds.get(feed.name) is not feed or feed.room is None:
                    return
                taken = 0
                for seq, data in rows:
                    if feed.tracker.see(seq):
                        feed.room.remote(data)
                        taken += 1
                if rows:
                    # What the read did not return below its last number was compacted into
                    # a snapshot it did return: all of it is held now.
                    feed.tracker.caught_up(rows[-1][0])
                if taken:
                    metrics.CLUSTER_REPAIRED.inc(taken)
                    if had_gap:
                        metrics.CLUSTER_GAPS.inc()
                    log.info("read %d missed updates of %r from the store", taken, feed.name)
                if not feed.repair_again:
                    return
        finally:
            feed.repairing = False

    def _reconnected(self) -> None:
        """Redis is back: catch up every loaded document, and exchange presence again."""
        for feed in list(self._feeds.values()):
            if feed.room is None:
                continue
            self._spawn(self.repair(feed))
            self._publish(feed.name, wire.QUERY)
            for conn_id, update in feed.room.local_presence():
                self._publish(feed.name, wire.AWARENESS, conn_id, update)

    async def _poll(self) -> None:
        """Every loaded document's last number, from the store: catches what no message told."""
        while True:
            await asyncio.sleep(self.poll_interval)
            loaded = [f for f in self._feeds.values() if f.room is not None]
            if not loaded:
                continue
            # Taken before the read: what arrives while it runs moves ``applied`` past what
            # the read saw, which is no sign of anything.
            before = {f.name: f.tracker.applied for f in loaded}
            try:
                last = await self.store.last_seqs([f.name for f in loaded])
            except StoreError as exc:  # the store is down: the writer reports it
                log.debug("polling the last sequence numbers failed: %s", exc)
                continue
            for feed in loaded:
                if self._feeds.get(feed.name) is not feed:
                    continue
                stored = last.get(feed.name)
                applied = before[feed.name]
                if (stored is None and applied > 0) or (stored is not None and stored < applied):
                    # Its numbers went away or began again: deleted (and maybe made anew).
                    self._spawn(self._evict(feed.name, "deleted (seen in the store)"))
                    continue
                # Behind what the last poll saw: no message brought it within a whole poll
                # interval (what is merely in flight in Redis now is not repaired).
                if feed.tracker.applied < feed.polled and not feed.repairing:
                    self._spawn(self.repair(feed))
                feed.polled = stored or 0

    async def _evict(self, name: str, why: str) -> None:
        log.info("closing %r: %s", name, why)
        async with self.rooms.deleting(name):
            pass

    # --- liveness of the others ----------------------------------------------------------------

    async def _watch_instances(self) -> None:
        """Drop the presence of instances whose heartbeat key expired (they died)."""
        while True:
            await asyncio.sleep(max(0.5, self.bus.heartbeat_ttl / 5))
            owners: dict[bytes, list[tuple[Room, Hashable]]] = {}
            for feed in self._feeds.values():
                if feed.room is None:
                    continue
                for owner in feed.room.presence.owners():
                    if _is_remote(owner):
                        owners.setdefault(owner[1], []).append((feed.room, owner))  # type: ignore[index]
            if not owners:
                continue
            alive = await self.bus.alive(owners)
            if alive is None:
                continue  # Redis cannot tell now: keep what we have
            for instance, held in owners.items():
                if instance in alive:
                    continue
                log.info("instance %s is gone: dropping its clients' presence", instance.hex())
                for room, owner in held:
                    room.remote_left(owner)


__all__ = ["Cluster", "remote_owner"]
