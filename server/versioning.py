"""Which automatic versions to keep: pure policy, no I/O.

Named versions are kept forever. Automatic ones are thinned as they age: all of the last hour,
then the newest of each hour for a week, then the newest of each day — so history stays
useful and the database stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable

from .storage import VersionInfo

HOUR = 3600.0
DAY = 24 * HOUR
KEEP_ALL_FOR = HOUR
HOURLY_FOR = 7 * DAY


def versions_to_drop(versions: Iterable[VersionInfo], now: float) -> list[int]:
    """Ids of automatic versions the policy no longer keeps."""
    kept_buckets: set[tuple[str, int]] = set()
    drop: list[int] = []
    for version in sorted(versions, key=lambda v: (v.created_at, v.id), reverse=True):
        if not version.auto:
            continue
        age = now - version.created_at
        if age < KEEP_ALL_FOR:
            continue
        bucket = (
            ("h", int(version.created_at // HOUR))
            if age < HOURLY_FOR
            else (
                "d",
                int(version.created_at // DAY),
            )
        )
        if bucket in kept_buckets:
            drop.append(version.id)  # an older one in a bucket whose newest is kept
        else:
            kept_buckets.add(bucket)
    return drop
