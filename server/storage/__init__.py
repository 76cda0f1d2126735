"""Document storage: the interface the rest of the server uses (:mod:`.base`) and its backends
(SQLite, PostgreSQL). Only this package speaks SQL. ``open_store`` picks the backend for a
``--db`` value: a ``postgresql://`` URL is PostgreSQL, anything else a SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Synchronous
from .base import (
    AckCallback,
    AuthorInfo,
    DocumentInfo,
    NewestVersion,
    Store,
    StoredDocument,
    StoredFile,
    StoreError,
    StoreHealth,
    VersionInfo,
)
from .compaction import compact_updates

__all__ = [
    "AckCallback",
    "AuthorInfo",
    "DocumentInfo",
    "NewestVersion",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoredDocument",
    "StoredFile",
    "VersionInfo",
    "compact_updates",
    "is_postgres",
    "open_store",
]


def is_postgres(db: Path | str) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


async def open_store(
    db: Path | str,
    *,
    synchronous: Synchronous = "FULL",
    compact_updates: int = 500,
    compact_bytes: int = 1024 * 1024,
) -> Store:
    """The store for ``db``: a ``postgresql://`` URL is PostgreSQL (migrated if needed), a path
    a SQLite file (created and migrated if needed). Raises StoreError with a one-line reason."""
    if is_postgres(db):
        from .postgres import PostgresStore

        return await PostgresStore.open(
            str(db), compact_updates=compact_updates, compact_bytes=compact_bytes
        )
    from .sqlite import SQLiteStore

    return await SQLiteStore.open(
        db, synchronous=synchronous, compact_updates=compact_updates, compact_bytes=compact_bytes
    )
