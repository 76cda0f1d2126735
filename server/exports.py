"""Rendering a document state into the export formats. Pure: bytes and strings in and out."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from pycrdt import Doc, Text

from .contract import CONTENT_TEXT
from .markdown_dialect import HIGHLIGHT_CSS, create_markdown

FORMATS = ("txt", "md", "html", "json", "yjs")

# The editor preview's dialect (GitHub-flavoured; raw HTML shown as text; links only to http(s),
# mailto and relative addresses).
_MARKDOWN = create_markdown()

# The exported page runs no script at all, wherever it is opened.
EXPORT_CSP = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.6;
       font-family: system-ui, sans-serif; color: #1f2328; }}
pre, code {{ background: #f6f8fa; border-radius: 4px; }}
pre {{ padding: .8rem; overflow-x: auto; }}
blockquote {{ border-left: 4px solid #d0d7de; margin: 0; padding-left: 1rem; color: #57606a; }}
table {{ border-collapse: collapse; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #d0d7de; padding: .3rem .7rem; }}
.contains-task-list {{ list-style: none; padding-left: 1.2rem; }}
.task-list-item-checkbox {{ margin: 0 .4em 0 -1.2rem; }}
img {{ max-width: 100%; }}
{highlight_css}
</style>
</head>
<body>
{body}
</body>
</html>
"""


class UnknownFormat(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    content_type: str
    filename: str


# What stands in a text for something that is not text (an embed other Yjs apps put there):
# one unit of pycrdt's text index, as an embed is, so offsets in the one are offsets in the other.
NOT_TEXT = "\x00"


def indexed_text(text: Text) -> str:
    """``text`` with each embed as one NOT_TEXT: pycrdt counts an embed as one index unit,
    ``str()`` leaves it out, so offsets taken from ``str()`` are wrong past an embed."""
    return "".join(part if isinstance(part, str) else NOT_TEXT for part, _attrs in text.diff())


def _content(state: bytes) -> Text | None:
    """The Y.Text ``content`` of a full Yjs state (None if there is none)."""
    if not state:
        return None
    doc = Doc()
    doc.apply_update(state)
    try:
        return doc.get(CONTENT_TEXT, type=Text)
    except (TypeError, ValueError):
        return None  # `content` holds another type in this (third-party) document


def indexed_text_of(state: bytes) -> str:
    """:func:`indexed_text` of ``content`` in a full state ("" if there is none)."""
    text = _content(state)
    return "" if text is None else indexed_text(text)


def text_of(state: bytes) -> str:
    """The text of Y.Text ``content`` in a full Yjs state ("" if there is none)."""
    text = _content(state)
    return "" if text is None else str(text)


def render_html(name: str, text: str) -> str:
    return _PAGE.format(
        csp=EXPORT_CSP,
        title=html.escape(name),
        body=_MARKDOWN.render(text),
        highlight_css=HIGHLIGHT_CSS,
    )


def safe_filename(name: str, extension: str) -> str:
    stem = name.replace("/", "_").strip(".") or "document"
    return f"{stem}.{extension}"


def render(
    fmt: str,
    *,
    name: str,
    state: bytes,
    version: int | None,
    updated_at: float | None,
    size_bytes: int,
) -> Rendered:
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "yjs":
        return Rendered(state, "application/octet-stream", safe_filename(name, "yjs"))
    text = text_of(state)
    if fmt == "txt":
        return Rendered(text.encode(), "text/plain; charset=utf-8", safe_filename(name, "txt"))
    if fmt == "md":
        return Rendered(text.encode(), "text/markdown; charset=utf-8", safe_filename(name, "md"))
    if fmt == "html":
        page = render_html(name, text)
        return Rendered(page.encode(), "text/html; charset=utf-8", safe_filename(name, "html"))
    body = {
        "name": name,
        "text": text,
        "version": version,
        "updated_at": updated_at,
        "size_bytes": size_bytes,
    }
    return Rendered(
        json.dumps(body, ensure_ascii=False).encode(),
        "application/json; charset=utf-8",
        safe_filename(name, "json"),
    )
