"""What both backends' search SQL shares, pure: a person's query as safe terms, the FTS5 and
tsquery texts built from them, the token scopes as a filter, and highlighted snippets as parts.

A query never reaches FTS5 or ``to_tsquery`` as typed: it is cut into runs of letters and digits
(the words both engines index), and each run is quoted, so no operator, column filter, ``NEAR``
or stray quote in it can be a syntax error or change what is asked.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .base import SnippetPart

# Runs of letters and digits: what unicode61 (SQLite) and the 'simple' configuration
# (PostgreSQL) index as words; everything else separates them.
_WORD = re.compile(r"[^\W_]+")
# The token scope that covers every document (server.auth.ALL_DOCUMENTS).
ALL_DOCUMENTS = "*"
# At most this many words of a query are used (a query is at most a few hundred characters).
MAX_TERMS = 32
# What the snippets mark a hit with: control characters, taken out of every indexed text.
HIT_START = "\x02"
HIT_END = "\x03"
# How much of a document's text is indexed (its first two million characters).
MAX_INDEXED_CHARS = 2_000_000
# C0 controls but tab and newlines: never useful in a search, and NUL is refused by PostgreSQL.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Combining accents, once decomposed (what PostgreSQL's tandem_search_words takes out too).
_ACCENTS = re.compile("[\u0300-\u036f]+")


def query_terms(query: str) -> list[str]:
    """The words of ``query`` (none: nothing to search for)."""
    return _WORD.findall(query)[:MAX_TERMS]


def fts5_query(terms: list[str]) -> str:
    """Every term, each a quoted phrase (ANDed), the last one also as a prefix: what is typed
    so far finds the word being typed."""
    quoted = [f'"{term}"' for term in terms]  # a term holds no quote: see _WORD
    quoted[-1] += "*"
    return " ".join(quoted)


def folded(term: str) -> list[str]:
    """``term`` without its accents, as the PostgreSQL index holds words (``Über`` is
    ``Uber``; SQLite's unicode61 folds them itself): letters and digits only, so perhaps
    several words (a compatibility form such as ``⑴`` decomposes into ``(1)``)."""
    if term.isascii():
        return [term]
    return _WORD.findall(_ACCENTS.sub("", unicodedata.normalize("NFKD", term)))


def tsquery_text(terms: list[str]) -> str:
    """The same for PostgreSQL's ``to_tsquery``: quoted lexemes, ANDed, the last a prefix.
    Accents are taken out (see :func:`folded`); a lexeme is letters and digits only (no
    quote, no backslash, no operator)."""
    quoted = [f"'{word}'" for term in terms for word in folded(term)]
    if quoted:
        quoted[-1] += ":*"
    return " & ".join(quoted)


def headline_tsquery_text(terms: list[str]) -> str:
    """What ``ts_headline`` marks in a snippet: any of the terms, as typed or without accents
    (it reads the text as it is, accents and all); the last one also as a prefix."""
    words: dict[str, bool] = {}
    for at, term in enumerate(terms):
        for word in (term, *folded(term)):
            words[word] = words.get(word, False) or at == len(terms) - 1
    return " | ".join(f"'{word}'" + (":*" if prefix else "") for word, prefix in words.items())


def indexable(text: str) -> str:
    """``text`` as it is stored in the index: without control characters (they would pass
    for the snippets' marks)."""
    return _CONTROLS.sub(" ", text)


@dataclass(frozen=True, slots=True)
class Entry:
    """A document's title and text as the index stores them, and their digest (the same
    entry is not written again)."""

    title: str | None
    body: str
    digest: bytes

    @classmethod
    def of(cls, title: str | None, body: str) -> Entry:
        title = None if title is None else indexable(title)
        body = indexable(body[:MAX_INDEXED_CHARS])
        digest = hashlib.sha256()
        digest.update((title or "").encode("utf-8", "replace") + b"\0")
        digest.update(body.encode("utf-8", "replace"))
        return cls(title, body, digest.digest())


def snippet_parts(marked: str) -> tuple[SnippetPart, ...]:
    """A snippet with its hits between HIT_START and HIT_END as parts, hits marked."""
    parts: list[SnippetPart] = []
    hit = False
    for piece in re.split(f"([{HIT_START}{HIT_END}])", marked):
        if piece == HIT_START:
            hit = True
        elif piece == HIT_END:
            hit = False
        elif piece:
            if parts and parts[-1].hit == hit:
                parts[-1] = SnippetPart(parts[-1].text + piece, hit)
            else:
                parts.append(SnippetPart(piece, hit))
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """Which documents some token scopes cover (the rule of :meth:`server.auth.Grant.covers`):
    every one, these names, or the names starting with these prefixes."""

    everything: bool
    names: tuple[str, ...]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, scopes: Iterable[str]) -> ScopeFilter:
        scopes = tuple(scopes)
        return cls(
            ALL_DOCUMENTS in scopes,
            tuple(s for s in scopes if s and s != ALL_DOCUMENTS and not s.endswith("/")),
            tuple(s for s in scopes if s.endswith("/")),
        )

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.names or self.prefixes)

    def sqlite(self, column: str) -> tuple[str, list[object]]:
        """A SQLite condition on ``column`` and its parameters. Not LIKE: SQLite's is
        case-insensitive, and names are not; a prefix is compared as it is."""
        if self.everything:
            return "1", []
        clauses: list[str] = []
        params: list[object] = []
        for name in self.names:
            clauses.append(f"{column} = ?")
            params.append(name)
        for prefix in self.prefixes:
            clauses.append(f"substr({column}, 1, ?) = ?")
            params += [len(prefix), prefix]
        return ("(" + " OR ".join(clauses) + ")") if clauses else "0", params

    def like_patterns(self) -> list[str]:
        """The prefixes as PostgreSQL LIKE patterns (backslash, its default escape, before
        each wildcard: ``%`` or ``_`` in a scope is that character, never a wildcard)."""
        return [re.sub(r"([\\%_])", r"\\\1", prefix) + "%" for prefix in self.prefixes]
