"""The search index in PostgreSQL (a tsvector column, see the schema's migration 5): written
inside the store's writer transactions, read on a pool connection."""

from __future__ import annotations

import time
from collections.abc import Iterable

import asyncpg

from .base import DocumentInfo, SearchHit
from .fulltext import (
    HIT_END,
    HIT_START,
    Entry,
    ScopeFilter,
    headline_tsquery_text,
    query_terms,
    snippet_parts,
    tsquery_text,
)

# A tsvector holds at most 1 MB: a text whose words pass it is indexed from its beginning,
# halved until they fit, down to this many characters.
_SHORTEST_CUT = 4096
# ts_headline's snippet: two fragments of a few words around the hits.
_HEADLINE = (
    f"StartSel={HIT_START}, StopSel={HIT_END}, MaxWords=14, MinWords=5, MaxFragments=2, "
    'FragmentDelimiter=" … "'
)
_UPSERT = """
    INSERT INTO doc_search AS s (doc, title, body, digest, indexed_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (doc) DO UPDATE SET
        title = excluded.title, body = excluded.body, digest = excluded.digest,
        indexed_at = excluded.indexed_at
    WHERE s.indexed_at <= excluded.indexed_at
"""


async def index(conn: asyncpg.Connection, doc: str, entry: Entry, source_at: float | None) -> bool:
    """In a writer transaction: see :meth:`server.storage.base.Store.index_document`."""
    # The key-share lock holds off another instance's deletion of the document (which would
    # miss this row) until this transaction ends, without holding up anyone's appends.
    if await conn.fetchval("SELECT 1 FROM documents WHERE name = $1 FOR KEY SHARE", doc) is None:
        return False  # deleted (or never stored): nothing to find it by
    # In the writer's turn, after every append queued before: a room's text is as of now.
    at = time.time() if source_at is None else source_at
    row = await conn.fetchrow(
        "SELECT digest, indexed_at FROM doc_search WHERE doc = $1 FOR UPDATE", doc
    )
    if row is not None:
        if row["indexed_at"] > at:
            return False  # a newer text is indexed already
        if bytes(row["digest"]) == entry.digest:
            await conn.execute("UPDATE doc_search SET indexed_at = $2 WHERE doc = $1", doc, at)
            return True
    body = entry.body
    while True:
        try:
            async with conn.transaction():  # a savepoint: a failed try leaves the rest intact
                await conn.execute(_UPSERT, doc, entry.title, body, entry.digest, at)
            return True
        except asyncpg.ProgramLimitExceededError:  # "string is too long for tsvector"
            if len(body) <= _SHORTEST_CUT:
                raise
            body = body[: len(body) // 2]


async def forget(conn: asyncpg.Connection, doc: str) -> None:
    """In the transaction that deletes ``doc``."""
    await conn.execute("DELETE FROM doc_search WHERE doc = $1", doc)


def _scope_params(scopes: Iterable[str]) -> tuple[ScopeFilter, list[object]]:
    within = ScopeFilter.of(scopes)
    return within, [within.everything, list(within.names), within.like_patterns()]


async def search(
    conn: asyncpg.Connection, query: str, scopes: Iterable[str], limit: int
) -> list[SearchHit]:
    terms = query_terms(query)
    within, params = _scope_params(scopes)
    wanted = tsquery_text(terms) if terms else ""
    if not wanted or within.nothing:
        return []
    # The scope is a condition of the query itself: the LIMIT counts only covered documents.
    # Snippets are made for the documents returned only (ts_headline reads the whole text).
    rows = await conn.fetch(
        """SELECT doc, title, ts_headline('simple', body, to_tsquery('simple', $5), $6)
                  AS snippet
           FROM (SELECT doc, title, body, ts_rank(tsv, query) AS rank
                 FROM doc_search, to_tsquery('simple', $1) AS query
                 WHERE tsv @@ query
                   AND ($2 OR doc = ANY($3::text[]) OR doc LIKE ANY($4::text[]))
                 ORDER BY rank DESC, doc
                 LIMIT $7) AS found
           ORDER BY rank DESC, doc""",
        wanted,
        *params,
        headline_tsquery_text(terms),
        _HEADLINE,
        limit,
    )
    return [SearchHit(r["doc"], r["title"], snippet_parts(r["snippet"] or "")) for r in rows]


async def titles(conn: asyncpg.Connection, names: Iterable[str] | None) -> dict[str, str]:
    if names is None:
        rows = await conn.fetch("SELECT doc, title FROM doc_search WHERE title IS NOT NULL")
    else:
        rows = await conn.fetch(
            "SELECT doc, title FROM doc_search WHERE title IS NOT NULL AND doc = ANY($1::text[])",
            list(names),
        )
    return {r["doc"]: r["title"] for r in rows}


async def stale(
    conn: asyncpg.Connection, after: str, before: float, limit: int
) -> list[DocumentInfo]:
    rows = await conn.fetch(
        """SELECT d.name, d.size_bytes, d.created_at, d.updated_at
           FROM documents AS d LEFT JOIN doc_search AS s ON s.doc = d.name
           WHERE d.name > $1 AND d.updated_at < $2
             AND (s.doc IS NULL OR s.indexed_at < d.updated_at)
           ORDER BY d.name LIMIT $3""",
        after,
        before,
        limit,
    )
    return [
        DocumentInfo(r["name"], r["size_bytes"], r["created_at"], r["updated_at"]) for r in rows
    ]


async def indexed_through(conn: asyncpg.Connection, scopes: Iterable[str]) -> float | None:
    within, params = _scope_params(scopes)
    if within.nothing:
        return None
    value = await conn.fetchval(
        """SELECT min(coalesce(s.indexed_at, d.created_at))
           FROM documents AS d LEFT JOIN doc_search AS s ON s.doc = d.name
           WHERE (s.doc IS NULL OR s.indexed_at < d.updated_at)
             AND ($1 OR d.name = ANY($2::text[]) OR d.name LIKE ANY($3::text[]))""",
        *params,
    )
    return None if value is None else float(value)
