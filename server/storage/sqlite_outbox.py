"""The webhook outbox in SQLite (see :mod:`.events`): run inside the store's transactions."""

from __future__ import annotations

import aiosqlite

from .events import (
    CLAIMED_COLUMNS,
    CREATED,
    OUTBOX_COLUMNS,
    NewEvent,
    OutboxEvent,
    PendingChange,
    event_from_row,
    state_vector_of,
)

_INSERT = f"INSERT INTO webhook_outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


async def add(conn: aiosqlite.Connection, targets: tuple[str, ...], event: NewEvent) -> None:
    await conn.executemany(_INSERT, event.rows(targets))


async def note_commit(
    conn: aiosqlite.Connection,
    targets: tuple[str, ...],
    updates: dict[str, list[bytes]],
    now: float,
) -> None:
    """In an append's transaction, before its documents' rows are written: a document new to
    the store gets its ``document.created``; every document a change to report later."""
    names = list(updates)
    marks = ", ".join("?" for _ in names)
    async with conn.execute(f"SELECT name FROM documents WHERE name IN ({marks})", names) as cur:
        known = {row[0] for row in await cur.fetchall()}
    for name in names:
        if name not in known:
            await add(conn, targets, NewEvent(CREATED, name, now, state_vector_of(updates[name])))
    await conn.executemany(
        "INSERT INTO webhook_pending (doc, first_at, last_at, gen) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (doc) DO UPDATE SET last_at = excluded.last_at, gen = gen + 1",
        [(name, now, now) for name in names],
    )


async def forget_changes(conn: aiosqlite.Connection, doc: str) -> None:
    await conn.execute("DELETE FROM webhook_pending WHERE doc = ?", (doc,))


async def quiet_changes(
    conn: aiosqlite.Connection, now: float, quiet: float, max_wait: float
) -> list[PendingChange]:
    async with conn.execute(
        "SELECT doc, first_at, gen FROM webhook_pending WHERE last_at <= ? OR first_at <= ? "
        "ORDER BY first_at LIMIT 100",
        (now - quiet, now - max_wait),
    ) as cur:
        return [PendingChange(r[0], float(r[1]), int(r[2])) for r in await cur.fetchall()]


async def consume_change(
    conn: aiosqlite.Connection,
    targets: tuple[str, ...],
    change: PendingChange,
    event: NewEvent,
    now: float,
) -> bool:
    """Turn the note into its event, unless another consumer did: gone if nothing changed
    since it was read, else kept for what came after (its wait starting now)."""
    cur = await conn.execute(
        "DELETE FROM webhook_pending WHERE doc = ? AND gen = ?", (change.doc, change.gen)
    )
    if cur.rowcount == 0:
        cur = await conn.execute(
            "UPDATE webhook_pending SET first_at = ? WHERE doc = ? AND first_at = ?",
            (now, change.doc, change.first_at),
        )
        if cur.rowcount == 0:
            return False
    await add(conn, targets, event)
    return True


async def claim(
    conn: aiosqlite.Connection, now: float, lease: float, limit: int
) -> list[OutboxEvent]:
    async with conn.execute(
        f"UPDATE webhook_outbox SET leased_until = ? WHERE id IN ("
        "SELECT id FROM webhook_outbox WHERE next_at <= ? AND leased_until <= ? "
        f"ORDER BY id LIMIT ?) RETURNING {CLAIMED_COLUMNS}",
        (now + lease, now, now, limit),
    ) as cur:
        rows = await cur.fetchall()
    return sorted((event_from_row(r) for r in rows), key=lambda e: e.row)


async def due(conn: aiosqlite.Connection, now: float) -> bool:
    async with conn.execute(
        "SELECT 1 FROM webhook_outbox WHERE next_at <= ? AND leased_until <= ? LIMIT 1",
        (now, now),
    ) as cur:
        return await cur.fetchone() is not None


async def delivered(conn: aiosqlite.Connection, row: int) -> None:
    await conn.execute("DELETE FROM webhook_outbox WHERE id = ?", (row,))


async def retry(conn: aiosqlite.Connection, row: int, at: float) -> None:
    await conn.execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?, leased_until = 0 "
        "WHERE id = ?",
        (at, row),
    )
