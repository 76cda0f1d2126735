"""Limits against hostile or broken clients: per-IP connection counts and message rates."""

from __future__ import annotations

import time
from collections import Counter


class ConnectionCounter:
    """Open WebSocket connections per client address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def try_open(self, address: str) -> bool:
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def close(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]


class TokenBucket:
    """``rate`` events per second on average, ``burst`` at once."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def tokens_at(self, now: float) -> float:
        return min(self.burst, self._tokens + (now - self._stamp) * self.rate)

    def take(self, amount: float = 1.0) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True


class RateLimits:
    """A :class:`TokenBucket` per key (a client address). Keys whose bucket has filled up
    again are forgotten once there are many, so memory follows the recent senders."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_idle()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take()

    def _forget_idle(self) -> None:
        now = time.monotonic()
        full = [
            key for key, bucket in self._buckets.items() if bucket.tokens_at(now) >= bucket.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: start over rather than grow
            self._buckets.clear()
