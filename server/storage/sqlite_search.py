"""The search index in SQLite (FTS5, see the schema's migration 9): written inside the store's
writer transactions, read on its reader connection."""

from __future__ import annotations

import time
from collections.abc import Iterable

import aiosqlite

from .base import DocumentInfo, SearchHit
from .fulltext import HIT_END, HIT_START, Entry, ScopeFilter, fts5_query, query_terms, snippet_parts

# Words of context a snippet shows around its hits.
SNIPPET_TOKENS = 16
# bm25 weights of the columns (title, body): a word in the title counts more.
_RANK = "bm25(doc_search, 4.0, 1.0)"
# Names per IN (...) list, well below SQLite's limit of bound parameters.
_CHUNK = 500


async def index(
    conn: aiosqlite.Connection, doc: str, entry: Entry, source_at: float | None
) -> bool:
    """In a writer transaction: see :meth:`server.storage.base.Store.index_document`."""
    async with conn.execute("SELECT 1 FROM documents WHERE name = ?", (doc,)) as cur:
        if await cur.fetchone() is None:
            return False  # deleted (or never stored): nothing to find it by
    # In the writer's turn, after every append queued before: a room's text is as of now.
    at = time.time() if source_at is None else source_at
    async with conn.execute(
        "SELECT id, digest, indexed_at FROM doc_search_state WHERE doc = ?", (doc,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "INSERT INTO doc_search_state (doc, title, digest, indexed_at) VALUES (?, ?, ?, ?)",
            (doc, entry.title, entry.digest, at),
        )
        row_id = cur.lastrowid
    else:
        row_id, digest, indexed_at = row
        if indexed_at > at:
            return False  # a newer text is indexed already
        if bytes(digest) == entry.digest:
            await conn.execute(
                "UPDATE doc_search_state SET indexed_at = ? WHERE id = ?", (at, row_id)
            )
            return True
        await conn.execute("DELETE FROM doc_search WHERE rowid = ?", (row_id,))
        await conn.execute(
            "UPDATE doc_search_state SET title = ?, digest = ?, indexed_at = ? WHERE id = ?",
            (entry.title, entry.digest, at, row_id),
        )
    await conn.execute(
        "INSERT INTO doc_search (rowid, title, body) VALUES (?, ?, ?)",
        (row_id, entry.title or "", entry.body),
    )
    return True


async def forget(conn: aiosqlite.Connection, doc: str) -> None:
    """In the transaction that deletes ``doc``."""
    await conn.execute(
        "DELETE FROM doc_search WHERE rowid IN (SELECT id FROM doc_search_state WHERE doc = ?)",
        (doc,),
    )
    await conn.execute("DELETE FROM doc_search_state WHERE doc = ?", (doc,))


async def search(
    reader: aiosqlite.Connection, query: str, scopes: Iterable[str], limit: int
) -> list[SearchHit]:
    terms = query_terms(query)
    within = ScopeFilter.of(scopes)
    if not terms or within.nothing:
        return []
    # The scope is a condition of the query itself: the LIMIT counts only covered documents.
    where, params = within.sqlite("st.doc")
    sql = f"""SELECT st.doc, st.title, snippet(doc_search, 1, ?, ?, '…', {SNIPPET_TOKENS})
        FROM doc_search JOIN doc_search_state AS st ON st.id = doc_search.rowid
        WHERE doc_search MATCH ? AND {where}
        ORDER BY {_RANK}, st.doc
        LIMIT ?"""
    async with reader.execute(sql, [HIT_START, HIT_END, fts5_query(terms), *params, limit]) as cur:
        rows = await cur.fetchall()
    return [SearchHit(row[0], row[1], snippet_parts(row[2] or "")) for row in rows]


async def titles(reader: aiosqlite.Connection, names: Iterable[str] | None) -> dict[str, str]:
    sql = "SELECT doc, title FROM doc_search_state WHERE title IS NOT NULL"
    if names is None:
        async with reader.execute(sql) as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}
    wanted = list(names)
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        async with reader.execute(f"{sql} AND doc IN ({marks})", chunk) as cur:
            found.update({row[0]: row[1] for row in await cur.fetchall()})
    return found


async def stale(
    reader: aiosqlite.Connection, after: str, before: float, limit: int
) -> list[DocumentInfo]:
    async with reader.execute(
        """SELECT d.name, d.size_bytes, d.created_at, d.updated_at
           FROM documents AS d LEFT JOIN doc_search_state AS s ON s.doc = d.name
           WHERE d.name > ? AND d.updated_at < ?
             AND (s.doc IS NULL OR s.indexed_at < d.updated_at)
           ORDER BY d.name LIMIT ?""",
        (after, before, limit),
    ) as cur:
        return [DocumentInfo(*row) for row in await cur.fetchall()]


async def indexed_through(reader: aiosqlite.Connection, scopes: Iterable[str]) -> float | None:
    within = ScopeFilter.of(scopes)
    if within.nothing:
        return None
    where, params = within.sqlite("d.name")
    async with reader.execute(
        f"""SELECT min(coalesce(s.indexed_at, d.created_at))
            FROM documents AS d LEFT JOIN doc_search_state AS s ON s.doc = d.name
            WHERE (s.doc IS NULL OR s.indexed_at < d.updated_at) AND {where}""",
        params,
    ) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])
