"""The Redis side of a cluster: one subscriber connection (a channel per loaded document, plus
the cluster's own), one publishing connection, and this instance's heartbeat key.

Redis is a fan-out, never the record: what is published is committed in PostgreSQL already,
so a message Redis loses (down, restarted, a slow subscriber cut off) costs only latency — the
instances read what they missed from the store. So publishing never waits for Redis and never
fails an edit; the subscriber reconnects on its own and resubscribes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .. import metrics
from . import ClusterError
from .wire import PREFIX, heartbeat_key

log = logging.getLogger("tandem.cluster")

# Always subscribed, so the subscriber connection is never idle without a subscription.
CONTROL_CHANNEL = f"{PREFIX}cluster".encode()
# Published messages waiting for Redis at most: beyond, the oldest are dropped (the store has
# them; the other instances read them back).
MAX_QUEUED = 50_000
_BATCH = 500
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def check_url(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ClusterError(f"--redis must be a redis://, rediss:// or unix:// URL, not {url!r}")
    return url


class Bus:
    def __init__(
        self,
        url: str,
        instance: bytes,
        on_message: Callable[[bytes, bytes], None],
        on_reconnect: Callable[[], None],
        *,
        heartbeat_ttl: float = 10.0,
    ) -> None:
        self.url = check_url(url)
        self.instance = instance
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self.heartbeat_ttl = heartbeat_ttl
        self.connected = False
        self.error: str | None = None
        self._wanted: set[bytes] = set()
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._queue: deque[tuple[bytes, bytes]] = deque()
        self._queued = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _new_client(self) -> aioredis.Redis:
        # No retries inside redis-py: a failure shows at once, and this module decides what
        # a failure costs (the subscriber reconnects; a publish is dropped, the store has it).
        return aioredis.Redis.from_url(
            self.url, socket_connect_timeout=3, socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )

    async def start(self) -> None:
        """Connect (raises ClusterError with a one-line reason if Redis cannot be used), then
        run the subscriber, the publisher and the heartbeat."""
        self._client = self._new_client()
        try:
            await self._client.ping()
            await self._beat()
        except (RedisError, OSError) as exc:
            await self._client.aclose()
            raise ClusterError(f"cannot use Redis at {_redacted(self.url)}: {exc}") from exc
        first = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._subscriber(first), name="tandem-redis-subscriber"),
            asyncio.create_task(self._publisher(), name="tandem-redis-publisher"),
            asyncio.create_task(self._heartbeat(), name="tandem-redis-heartbeat"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(first), timeout=5)

    async def close(self) -> None:
        """Publish what is queued (briefly), drop the heartbeat key, disconnect."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), timeout=2)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            with contextlib.suppress(*_FAILURES):
                await asyncio.wait_for(self._client.delete(heartbeat_key(self.instance)), 2)
            await self._client.aclose()

    async def _drained(self) -> None:
        for _ in range(200):  # the publisher empties the queue in batches
            if not self._queue or not self.connected:
                return
            await asyncio.sleep(0.01)

    # --- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, channel: bytes, timeout: float = 2.0) -> None:
        """Subscribe, and wait until Redis confirms it (what is published from then on arrives).
        With Redis down this returns at once: the resubscription after it is back, and the
        store, cover what is missed."""
        self._wanted.add(channel)
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(waiter)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(waiter, timeout)
        except (*_FAILURES, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("subscribing to %r was not confirmed: %s", channel, exc)
        finally:
            waiters = self._confirmations.get(channel, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def unsubscribe(self, channel: bytes) -> None:
        self._wanted.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None and self.connected:
            asyncio.get_running_loop().create_task(self._unsubscribe(pubsub, channel))

    async def _unsubscribe(self, pubsub: aioredis.client.PubSub, channel: bytes) -> None:
        if channel in self._wanted:
            return  # wanted again meanwhile
        try:
            await pubsub.unsubscribe(channel)
        except _FAILURES as exc:
            log.info("unsubscribing from %r failed (the reconnect drops it): %s", channel, exc)

    async def _subscriber(self, first: asyncio.Future[None]) -> None:
        delay = 0.2
        reconnect = False
        while True:
            client = self._new_client()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(CONTROL_CHANNEL, *self._wanted)
                self._pubsub = pubsub
                delay = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message["type"]
                    if kind == "subscribe":
                        if message["channel"] == CONTROL_CHANNEL:
                            self._up(reconnect)
                            reconnect = True
                            if not first.done():
                                first.set_result(None)
                        for waiter in self._confirmations.pop(message["channel"], []):
                            if not waiter.done():
                                waiter.set_result(None)
                    elif kind == "message":
                        self._on_message(message["channel"], message["data"])
            except _FAILURES as exc:
                self._down(exc)
            finally:
                self._pubsub = None
                with contextlib.suppress(*_FAILURES):
                    await pubsub.aclose()
                with contextlib.suppress(*_FAILURES):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _up(self, reconnect: bool) -> None:
        self.connected = True
        self.error = None
        metrics.CLUSTER_REDIS_UP.set(1)
        if reconnect:
            log.info("Redis is back: resubscribed, reading what was missed from the store")
            self._on_reconnect()

    def _down(self, exc: BaseException) -> None:
        if self.connected:
            log.error("lost Redis (serving on, catching up from the store): %s", exc)
        self.connected = False
        self.error = str(exc) or type(exc).__name__
        metrics.CLUSTER_REDIS_UP.set(0)
        for waiters in self._confirmations.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._confirmations.clear()

    # --- publishing ----------------------------------------------------------------------------

    def publish(self, channel: bytes, data: bytes) -> None:
        """Queue a message; never waits, never fails the caller."""
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            metrics.CLUSTER_DROPPED.inc()
        self._queue.append((channel, data))
        self._queued.set()

    async def _publisher(self) -> None:
        assert self._client is not None
        client = self._client
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                    metrics.CLUSTER_PUBLISHED.inc(len(batch))
                except _FAILURES as exc:
                    # Dropped: it is committed, and the others read it from the store.
                    metrics.CLUSTER_DROPPED.inc(len(batch))
                    log.debug("publishing %d messages failed: %s", len(batch), exc)
                    await asyncio.sleep(0.5)

    # --- liveness ------------------------------------------------------------------------------

    async def _beat(self) -> None:
        assert self._client is not None
        await self._client.set(
            heartbeat_key(self.instance), b"1", px=int(self.heartbeat_ttl * 1000)
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_ttl / 4)
            try:
                await self._beat()
            except _FAILURES as exc:
                log.debug("heartbeat failed: %s", exc)

    async def alive(self, instances: Iterable[bytes]) -> set[bytes] | None:
        """Which of ``instances`` keep their heartbeat key (None: Redis cannot tell now)."""
        wanted = list(instances)
        if not wanted or self._client is None:
            return set()
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for instance in wanted:
                    pipe.exists(heartbeat_key(instance))
                found = await pipe.execute()
        except _FAILURES:
            return None
        return {instance for instance, exists in zip(wanted, found, strict=True) if exists}


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))
