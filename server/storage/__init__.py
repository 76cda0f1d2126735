"""Document storage: the interface the rest of the server uses (:mod:`.base`) and its backends.

Only this package speaks SQL. ``open_store`` picks the backend for a ``--db`` value.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Synchronous
from .base import (
    AckCallback,
    DocumentInfo,
    NewestVersion,
    Store,
    StoredDocument,
    StoreError,
    StoreHealth,
    VersionInfo,
)
from .compaction import compact_updates

__all__ = [
    "AckCallback",
    "DocumentInfo",
    "NewestVersion",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoredDocument",
    "VersionInfo",
    "compact_updates",
    "open_store",
]


async def open_store(
    db: Path | str,
    *,
    synchronous: Synchronous = "FULL",
    compact_updates: int = 500,
    compact_bytes: int = 1024 * 1024,
) -> Store:
    """The store for ``db``: a path is a SQLite file (created and migrated if needed)."""
    from .sqlite import SQLiteStore

    return await SQLiteStore.open(
        db, synchronous=synchronous, compact_updates=compact_updates, compact_bytes=compact_bytes
    )
