"""Posting due events: each to its target with a timeout, retried with capped exponential
backoff, given up after ``max_age`` (a log line and a metric). A slow or dead receiver holds
only its own deliveries: editing never waits for any of this."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import aiohttp

from .. import metrics
from ..storage import Store, StoreError
from ..storage.events import OutboxEvent
from . import payload

log = logging.getLogger("tandem.webhooks")

MAX_IN_FLIGHT = 64
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 300.0


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (±20 % jitter, so
    receivers coming back are not hit by every sender at once)."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2**attempts) * random.uniform(0.8, 1.2)


class Delivery:
    def __init__(
        self,
        store: Store,
        targets: tuple[str, ...],
        secret: str,
        *,
        timeout: float = 10.0,
        max_age: float = 86_400.0,
        poll: float = 0.2,
        user_agent: str = "Tandem",
    ) -> None:
        self.store = store
        self.targets = set(targets)
        self.secret = secret
        self.timeout = timeout
        self.max_age = max_age
        self.poll = poll
        self.user_agent = user_agent
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            try:
                while True:
                    claimed = 0
                    try:
                        claimed = await self._claim(session)
                    except StoreError as exc:
                        log.warning("webhook deliveries wait for the store: %s", exc)
                    if not claimed:
                        await asyncio.sleep(self.poll)
            finally:
                for task in list(self._in_flight):
                    task.cancel()

    async def _claim(self, session: aiohttp.ClientSession) -> int:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        now = time.time()
        if room <= 0 or not await self.store.events_due(now):
            return 0
        # Held past the attempt's timeout: another instance takes it only if this one died.
        events = await self.store.claim_events(now, self.timeout + 30, room)
        for event in events:
            task = asyncio.create_task(self._deliver(session, event))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(events)

    async def _deliver(self, session: aiohttp.ClientSession, event: OutboxEvent) -> None:
        failure = await self._post(session, event) if event.target in self.targets else None
        if event.target not in self.targets:
            log.warning(
                "dropped event %s for %s: no longer a --webhook", event.event_id, event.target
            )
        try:
            await self._settle(event, failure)
        except StoreError as exc:  # the lease runs out and the event is tried again
            log.warning("could not record the delivery of %s: %s", event.event_id, exc)

    async def _post(self, session: aiohttp.ClientSession, event: OutboxEvent) -> str | None:
        """None if the receiver took it, else why not."""
        data = payload.body(event)
        headers = payload.headers(self.secret, event, data, self.user_agent)
        failure: str | None = None
        try:
            async with session.post(
                event.target,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                if not 200 <= resp.status < 300:
                    failure = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            failure = str(exc) or type(exc).__name__
        return failure

    async def _settle(self, event: OutboxEvent, failure: str | None) -> None:
        if failure is None:
            if event.target in self.targets:
                metrics.WEBHOOK_DELIVERED.inc()
            await self.store.event_delivered(event.row)
            return
        metrics.WEBHOOK_FAILED.inc()
        now = time.time()
        if now - event.created_at >= self.max_age:
            metrics.WEBHOOK_GIVEN_UP.inc()
            log.error(
                "gave up on %s event %s for %r to %s after %d attempts (%s)",
                event.kind,
                event.event_id,
                event.doc,
                event.target,
                event.attempts + 1,
                failure,
            )
            await self.store.event_delivered(event.row)
            return
        delay = backoff(event.attempts)
        log.info(
            "%s event for %r to %s failed (%s): again in %.1f s",
            event.kind,
            event.doc,
            event.target,
            failure,
            delay,
        )
        await self.store.retry_event(event.row, now + delay)
