"""What the search index holds of a document: its title and its text. Pure; :func:`stored_entry`
runs in the workers (integrating a stored log can take seconds of CPU)."""

from __future__ import annotations

from pycrdt import Text

from .contract import CONTENT_TEXT
from .integrate import load_doc
from .panics import CrdtFailures
from .titles import title_of


class Unreadable(ValueError):
    """pycrdt cannot read a stored log (its panics are no exception a caller catches)."""


_UNREADABLE = CrdtFailures(lambda exc: Unreadable(f"pycrdt cannot read it: {exc}"))


def entry(text: str) -> tuple[str | None, str]:
    """The title and the text of a document whose text is ``text``."""
    return title_of(text), text


def stored_entry(updates: list[bytes]) -> tuple[str | None, str]:
    """The title and the text of a document stored as ``updates`` (snapshot first)."""
    with _UNREADABLE:
        doc = load_doc(updates)
        text = str(doc.get(CONTENT_TEXT, type=Text))
    return entry(text)
