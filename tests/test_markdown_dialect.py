"""One Markdown dialect: the editor preview (client_web/src/markdown.js, run by Node) and the
HTML export (server/markdown_dialect.py) give the same HTML structure for the same text.

Structure is the tag tree with the attributes that matter (links, ids, classes, checkboxes,
alignment), and the text with whitespace collapsed. highlight.js spans inside code (browser
only) are dropped; boolean attributes count by presence (``disabled=""`` is
``disabled="disabled"``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from server.exports import render_html
from server.markdown_dialect import OPTIONS, create_markdown, slugify

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MARKDOWN_JS = REPO / "client_web" / "src" / "markdown.js"

KEY_ATTRIBUTES = {
    "href", "src", "alt", "title", "id", "class", "type", "start", "style", "target", "rel",
}  # fmt: skip
BOOLEAN_ATTRIBUTES = {"checked", "disabled"}
VOID = {"br", "hr", "img", "input", "meta", "link"}

# Node renders every text given on stdin (a JSON list) with the browser's renderer.
NODE_SCRIPT = """
import { readFileSync } from 'node:fs'
import { createMarkdown, renderMarkdown, OPTIONS } from %s
const texts = JSON.parse(readFileSync(0, 'utf8'))
const md = createMarkdown()
const out = texts.map((text) => renderMarkdown(md, text))
process.stdout.write(JSON.stringify({ options: OPTIONS, results: out }))
"""

Node = tuple[str, tuple[tuple[str, str], ...], tuple[Any, ...]]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: list[Any] = ["#root", (), []]
        self.stack: list[list[Any]] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kept = tuple(
            sorted(
                (name, "" if name in BOOLEAN_ATTRIBUTES else (value or ""))
                for name, value in attrs
                if name in KEY_ATTRIBUTES | BOOLEAN_ATTRIBUTES
            )
        )
        # Highlighting spans inside code (highlight.js's in the browser, Pygments' in the
        # export) are not the structure: their text counts, the spans do not.
        if tag == "span" and any(node[0] == "code" for node in self.stack):
            self.stack.append(["#skip", (), self.stack[-1][2]])  # children go to the parent
            return
        node: list[Any] = [tag, kept, []]
        self.stack[-1][2].append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1][2].append(data)


def _freeze(node: list[Any]) -> Node:
    children: list[Any] = []
    text = ""
    for child in node[2]:
        if isinstance(child, str):
            text += child
            continue
        if text:
            children.append(text)
            text = ""
        children.append(_freeze(child))
    if text:
        children.append(text)
    # whitespace collapsed; whitespace-only text between tags dropped
    cleaned = tuple(
        re.sub(r"\s+", " ", c).strip() if isinstance(c, str) else c
        for c in children
        if not (isinstance(c, str) and not c.strip())
    )
    return (node[0], node[1], cleaned)


def structure(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return _freeze(builder.root)


def attribute_names(html: str) -> set[str]:
    """Every attribute name in ``html`` (the structure keeps only the key ones)."""
    names: set[str] = set()

    class Names(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names.update(name for name, _ in attrs)

    Names().feed(html)
    return names


def _walk(node: Node) -> list[Node]:
    found = [node]
    for child in node[2]:
        if not isinstance(child, str):
            found += _walk(child)
    return found


def elements(html: str, tag: str) -> list[Node]:
    return [node for node in _walk(structure(html)) if node[0] == tag]


def attribute(node: Node, name: str) -> str | None:
    return dict(node[1]).get(name)


@pytest.fixture(scope="module")
def browser_render() -> Any:
    node = shutil.which("node")
    if node is None or not (REPO / "client_web" / "node_modules" / "markdown-it").exists():
        pytest.fail("needs Node and client_web/node_modules (make setup)")
    script = NODE_SCRIPT % json.dumps(MARKDOWN_JS.as_uri())

    def render(*texts: str) -> dict[str, Any]:
        done = subprocess.run(
            [node, "--input-type=module", "-e", script],
            input=json.dumps(list(texts)),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(done.stdout)

    return render


def server_render(text: str) -> str:
    return create_markdown().render(text)


FIXTURES = ["gfm_fixture.md", "hostile.md"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_both_renderers_give_the_same_structure(fixture: str, browser_render: Any) -> None:
    text = (DATA / fixture).read_text()
    browser = browser_render(text)["results"][0]["html"]
    server = server_render(text)
    assert structure(browser) == structure(server)


def test_both_sides_use_the_same_options(browser_render: Any) -> None:
    assert browser_render("")["options"] == OPTIONS
    assert OPTIONS["html"] is False and OPTIONS["linkify"] is True


def test_small_cases_match_too(browser_render: Any) -> None:
    cases = [
        "- [ ] a\n- [x] b",
        "| a |\n|---|\n| b |",
        "~~gone~~ ~one tilde~",
        "www.example.com/a_b_ and (https://example.com/x)",
        "# A\n# A\n# A-1\n# a",
        "# !!!\n# ???",
        "<b>x</b>",
        "[x](<javascript:alert(1)>)",
        "[a](HTTPS://EXAMPLE.COM) [b](//example.com/protocol-relative)",
        "```\n<script>\n```",
        "* * *\n\n1) one\n2) two",
        "Straight 'quotes' -- and (c) stay as typed...",
    ]
    browser = browser_render(*cases)["results"]
    for case, rendered in zip(cases, browser, strict=True):
        assert structure(rendered["html"]) == structure(server_render(case)), case


def test_the_fixture_uses_every_part_of_the_dialect() -> None:
    """The comparison above is only worth something if the fixture exercises everything."""
    html = server_render((DATA / "gfm_fixture.md").read_text())
    assert elements(html, "table") and elements(html, "th") and elements(html, "s")
    aligned = {attribute(th, "style") for th in elements(html, "th")}
    assert aligned == {"text-align:left", "text-align:center", "text-align:right"}
    boxes = elements(html, "input")
    assert len(boxes) == 4
    assert all(attribute(box, "type") == "checkbox" for box in boxes)
    assert all(attribute(box, "disabled") is not None for box in boxes)
    assert sum(attribute(box, "checked") is not None for box in boxes) == 2
    assert any(attribute(ul, "class") == "contains-task-list" for ul in elements(html, "ul"))
    codes = {attribute(code, "class") for code in elements(html, "code")}
    assert {"language-python", "language-js", "language-unknown-language"} <= codes
    hrefs = {attribute(a, "href") for a in elements(html, "a")}
    assert {
        "http://www.example.net",
        "https://example.com/linkified",
        "mailto:hello@example.com",
        "mailto:someone@example.com",
        "other-doc",
        "#tables",
        "https://example.com/reference",
    } <= hrefs
    # raw HTML is text
    assert "<div" not in html and "&lt;div class=&quot;raw&quot;&gt;" in html
    assert elements(html, "img")  # images with http(s) and relative sources


def test_headings_get_unique_github_like_ids() -> None:
    html = server_render((DATA / "gfm_fixture.md").read_text())
    ids = [attribute(h, "id") for h in _walk(structure(html)) if re.fullmatch(r"h[1-6]", str(h[0]))]
    assert len(ids) == len(set(ids))
    assert "headings-with-the-same-text" in ids and "headings-with-the-same-text-1" in ids
    assert "ünïcödé--punctuation-quoted-parens--dash" in ids
    assert "日本語の見出し" in ids
    assert "emoji--party" in ids
    assert "code-in-a-heading" in ids
    assert "setext-heading" in ids
    assert slugify("Hello, World!") == "hello-world"


def test_links_are_safe_and_external_ones_open_apart() -> None:
    html = server_render((DATA / "hostile.md").read_text() + "\n[ext](https://example.com)")
    for link in elements(html, "a"):
        href = attribute(link, "href") or ""
        assert re.match(r"^(https?:|mailto:|[^a-z:]*$|#)", href, re.IGNORECASE), href
        assert attribute(link, "rel") == "noopener noreferrer"
        external = href.lower().startswith(("http://", "https://", "//"))
        assert (attribute(link, "target") == "_blank") == external
    for image in elements(html, "img"):
        assert not (attribute(image, "src") or "").lower().startswith(("data:", "javascript:"))
    for tag in ("script", "iframe", "object", "embed", "svg", "style", "form"):
        assert not elements(html, tag), tag
    assert not [name for name in attribute_names(html) if name.startswith("on")]


def test_the_export_page_uses_the_dialect() -> None:
    page = render_html("doc", "# Title\n\n| a |\n|---|\n| b |\n\n- [x] done\n")
    assert '<h1 id="title">' in page and "<table>" in page and 'class="contains-task-list"' in page
    assert "default-src 'none'" in page


def test_the_export_highlights_the_languages_the_preview_highlights() -> None:
    page = render_html(
        "doc", '```python\nprint("<b>")\n```\n\n```js\nlet x = 1\n```\n\n```klingon\n<i>\n```\n'
    )
    # Highlighted (Pygments' spans, coloured by the page's own style), and still escaped.
    assert '<code class="language-python"><span class="nb">print</span>' in page
    assert "&lt;b&gt;" in page and "<b>" not in page.split("<body>")[1]
    assert '<code class="language-js"><span class="kd">let</span>' in page
    # A language the browser does not highlight stays plain on both sides.
    assert '<code class="language-klingon">&lt;i&gt;\n</code>' in page
    assert "pre code .nb" in page  # the colours travel with the page: no outside stylesheet
