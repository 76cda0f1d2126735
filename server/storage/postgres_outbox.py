"""The webhook outbox in PostgreSQL (see :mod:`.events`): run inside the store's
transactions. Several instances share it: claims skip rows another instance holds."""

from __future__ import annotations

import asyncpg

from .events import (
    CLAIMED_COLUMNS,
    CREATED,
    OUTBOX_COLUMNS,
    NewEvent,
    OutboxEvent,
    PendingChange,
    event_from_row,
)

_INSERT = (
    f"INSERT INTO webhook_outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


async def add(conn: asyncpg.Connection, targets: tuple[str, ...], event: NewEvent) -> None:
    await conn.executemany(_INSERT, event.rows(targets))


async def note_commit(
    conn: asyncpg.Connection,
    targets: tuple[str, ...],
    created: dict[str, bytes],
    names: list[str],
    now: float,
) -> None:
    """In an append's transaction: ``created`` (documents the commit made, with their state
    vectors) get their ``document.created``; every document a change to report later."""
    for name, state_vector in created.items():
        await add(conn, targets, NewEvent(CREATED, name, now, state_vector))
    await conn.execute(
        "INSERT INTO webhook_pending AS p (doc, first_at, last_at, gen) "
        "SELECT name, $2, $2, 1 FROM unnest($1::text[]) AS t(name) "
        "ON CONFLICT (doc) DO UPDATE SET last_at = excluded.last_at, gen = p.gen + 1",
        names,
        now,
    )


async def forget_changes(conn: asyncpg.Connection, doc: str) -> None:
    await conn.execute("DELETE FROM webhook_pending WHERE doc = $1", doc)


async def quiet_changes(
    conn: asyncpg.Connection, now: float, quiet: float, max_wait: float
) -> list[PendingChange]:
    rows = await conn.fetch(
        "SELECT doc, first_at, gen FROM webhook_pending WHERE last_at <= $1 OR first_at <= $2 "
        "ORDER BY first_at LIMIT 100",
        now - quiet,
        now - max_wait,
    )
    return [PendingChange(r["doc"], float(r["first_at"]), int(r["gen"])) for r in rows]


async def consume_change(
    conn: asyncpg.Connection,
    targets: tuple[str, ...],
    change: PendingChange,
    event: NewEvent,
    now: float,
) -> bool:
    """As in SQLite; the row locks make two instances consuming one note take turns, and the
    second finds it gone (or moved on) and writes nothing."""
    deleted = await conn.fetchval(
        "DELETE FROM webhook_pending WHERE doc = $1 AND gen = $2 RETURNING doc",
        change.doc,
        change.gen,
    )
    if deleted is None:
        updated = await conn.fetchval(
            "UPDATE webhook_pending SET first_at = $1 WHERE doc = $2 AND first_at = $3 "
            "RETURNING doc",
            now,
            change.doc,
            change.first_at,
        )
        if updated is None:
            return False
    await add(conn, targets, event)
    return True


async def claim(
    conn: asyncpg.Connection, now: float, lease: float, limit: int
) -> list[OutboxEvent]:
    rows = await conn.fetch(
        "UPDATE webhook_outbox SET leased_until = $1 WHERE id IN ("
        "SELECT id FROM webhook_outbox WHERE next_at <= $2 AND leased_until <= $2 "
        f"ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {CLAIMED_COLUMNS}",
        now + lease,
        now,
        limit,
    )
    return sorted((event_from_row(r) for r in rows), key=lambda e: e.row)


async def due(conn: asyncpg.Connection, now: float) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM webhook_outbox WHERE next_at <= $1 AND leased_until <= $1 LIMIT 1", now
    )
    return found is not None


async def delivered(conn: asyncpg.Connection, row: int) -> None:
    await conn.execute("DELETE FROM webhook_outbox WHERE id = $1", row)


async def retry(conn: asyncpg.Connection, row: int, at: float) -> None:
    await conn.execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $1, leased_until = 0 "
        "WHERE id = $2",
        at,
        row,
    )
