"""Tandem's Markdown dialect for the HTML export: the twin of client_web/src/markdown.js.

GitHub-flavoured (tables, strikethrough, task lists, linkify, fenced code with a
``language-x`` class, highlighted by Pygments for the languages highlight.js has in the
browser, heading ids), raw HTML shown as text, links and images only to http(s), mailto
(links) and relative addresses. tests/test_markdown_dialect.py checks that both renderers give
the same HTML structure: change one, change the other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import pygments
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name

# the same as markdown.js OPTIONS
OPTIONS: dict[str, Any] = {
    "html": False,
    "linkify": True,
    "typographer": False,
    "breaks": False,
    "langPrefix": "language-",
}

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)


def is_safe_link(url: str) -> bool:
    """http(s), mailto, or no scheme (relative, #anchor); controls arrive percent-encoded."""
    scheme = _SCHEME.match(url.strip())
    return scheme is None or scheme.group(1).lower() in _LINK_SCHEMES


def _in_slug(char: str) -> bool:
    # the JavaScript side's [\p{L}\p{M}\p{N}\p{Pc} -]: Python's re has no \p classes
    category = unicodedata.category(char)
    return category[0] in "LMN" or category == "Pc" or char in " -"


def slugify(text: str) -> str:
    """GitHub's slug of a heading's text (before making it unique)."""
    return "".join(char for char in text.lower() if _in_slug(char)).replace(" ", "-")


def unique_slug(text: str, seen: dict[str, int]) -> str:
    """github-slugger's rule for repeats: "a", "a-1", "a-2"…; no slug characters: "section"."""
    base = slugify(text) or "section"
    slug = base
    while slug in seen:
        seen[base] = seen.get(base, 0) + 1
        slug = f"{base}-{seen[base]}"
    seen[slug] = 0
    return slug


def _inline_text(children: Sequence[Token]) -> str:
    """What a heading shows (its DOM textContent)."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child.children or []))
    return "".join(parts)


def _heading_ids(state: StateCore) -> None:
    seen: dict[str, int] = {}
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", unique_slug(_inline_text(tokens[index + 1].children or []), seen))


def _link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if _EXTERNAL.match(str(token.attrGet("href") or "")):
        token.attrSet("target", "_blank")
    token.attrSet("rel", "noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


# The languages the browser's highlight.js registers (with its aliases), as Pygments names them:
# a fence in any other language stays plain on both sides.
_LEXERS = {
    **dict.fromkeys(("bash", "sh", "zsh"), "bash"),
    **dict.fromkeys(("c", "h"), "c"),
    **dict.fromkeys(("cpp", "cc", "c++", "h++", "hpp", "hh", "hxx", "cxx"), "cpp"),
    "css": "css",
    **dict.fromkeys(("diff", "patch"), "diff"),
    **dict.fromkeys(("go", "golang"), "go"),
    **dict.fromkeys(("java", "jsp"), "java"),
    **dict.fromkeys(("javascript", "js", "jsx", "mjs", "cjs"), "javascript"),
    **dict.fromkeys(("json", "jsonc"), "json"),
    **dict.fromkeys(("markdown", "md", "mkdown", "mkd"), "markdown"),
    **dict.fromkeys(("python", "py", "gyp", "ipython"), "python"),
    **dict.fromkeys(("rust", "rs"), "rust"),
    "sql": "sql",
    **dict.fromkeys(("typescript", "ts", "tsx", "mts", "cts"), "typescript"),
    **dict.fromkeys(("xml", "html", "xhtml", "rss", "atom", "xsd", "xsl", "plist", "svg"), "xml"),
    **dict.fromkeys(("yaml", "yml"), "yaml"),
}
# Spans only (class names from Pygments' short names); EXPORT_STYLE colours them.
_FORMATTER = HtmlFormatter(nowrap=True)
HIGHLIGHT_CSS = _FORMATTER.get_style_defs("pre code")


def highlight(code: str, lang: str, _attrs: str) -> str:
    """The fence's code as highlighted HTML (escaped by Pygments), or "" for markdown-it to
    escape it plainly: the twin of markdown.js's highlight."""
    name = _LEXERS.get(lang.lower())
    if name is None:
        return ""
    return pygments.highlight(code, get_lexer_by_name(name), _FORMATTER)


def create_markdown() -> MarkdownIt:
    md = MarkdownIt("js-default", {**OPTIONS, "highlight": highlight})
    md.validateLink = is_safe_link  # type: ignore[method-assign]
    md.use(tasklists_plugin)  # disabled checkboxes, as in the browser
    md.core.ruler.push("heading_ids", _heading_ids)
    md.add_render_rule("link_open", _link_open)
    return md
