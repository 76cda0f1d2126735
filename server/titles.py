"""A document's title: its first Markdown heading (ATX ``# Title`` or setext, a line underlined
with ``===`` or ``---``), outside fenced code, as plain text. Pure, and it reads only as far as
that heading."""

from __future__ import annotations

import re
from collections.abc import Iterator

# The longest title kept (a heading can be a whole paragraph).
MAX_TITLE = 200

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
# Lines that cannot be a setext heading's text: blank, indented code, quotes, list items,
# thematic breaks, tables, HTML.
_NOT_PARAGRAPH = re.compile(
    r"\s*$| {4}|\t| {0,3}(>|[-+*][ \t]|\d{1,9}[.)][ \t]|[-*_][ \t]*[-*_][ \t]*[-*_]|\||<)"
)
# Inline Markdown a title is shown without: images and links (their text), code, emphasis.
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"\*\*|__|~~|`")
_EMPHASIS = re.compile(r"(?<![\w*\\])[*_](?=\S)(.*?[^\s\\])[*_](?![\w*])")
_BACKSLASH = re.compile(r"\\([!-/:-@\[-`{-~])")


def title_of(text: str) -> str | None:
    """The text of the first heading of ``text`` (None when it has none, or an empty one)."""
    fence: str | None = None
    paragraph: list[str] = []  # the lines before, if they could be a setext heading's text
    for line in _lines(text):
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            continue
        opening = _FENCE.fullmatch(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            paragraph = []
            continue
        atx = _ATX.fullmatch(line)
        if atx:
            return _plain(atx.group(2) or "")
        if paragraph and _SETEXT.fullmatch(line):
            return _plain(" ".join(paragraph))
        if _NOT_PARAGRAPH.match(line):
            paragraph = []
        else:
            paragraph.append(line)
    return None


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, one at a time: a title is almost always near the top, and a
    large text is not split whole for it."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:].rstrip("\r")
            return
        yield text[start:end].rstrip("\r")
        start = end + 1


def _plain(heading: str) -> str | None:
    """The heading's text without its inline Markdown, on one line, at most MAX_TITLE long."""
    text = _LINK.sub(r"\1", heading)
    text = _EMPHASIS.sub(r"\1", _MARKS.sub("", text))
    text = " ".join(_BACKSLASH.sub(r"\1", text).split())
    return text[:MAX_TITLE] or None
