"""The preview in real Chromium: Edit / Split / View, remembered per browser; split-view scroll
sync both ways; live rendering of everyone's edits; the table of contents; the word count; and
hostile documents that never run a script, in the preview or in the exported HTML page.

One Chromium and one server for the module; each person is a browser context of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from .browser import SAVED, focus_end, new_person, open_editor, type_keys, wait_ready
from .conftest import ServerProcess, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

DATA = Path(__file__).resolve().parent / "data"
NewPerson = Callable[..., Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="module")
async def person(browser: Browser) -> AsyncIterator[NewPerson]:
    contexts: list[BrowserContext] = []

    async def make(name: str) -> BrowserContext:
        context = await new_person(browser, name)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def put_text(page: Page, text: str) -> None:
    await page.evaluate("text => window.tandem.ytext.insert(0, text)", text)


async def rendered(page: Page) -> None:
    """Until the preview shows the current text."""
    await page.wait_for_function("() => window.tandem.preview.current()")


async def choose(page: Page, mode: str) -> None:
    await page.get_by_test_id(f"view-mode-{mode}").click()
    await expect(page.locator("body")).to_have_attribute("data-view-mode", mode)


def sections(count: int) -> str:
    """A long document: each section a heading, prose, a list and some code (12 lines)."""
    return "".join(
        f"## Section {i}\n\nProse of section {i}, long enough to wrap on a narrow pane, "
        f"and then some more words.\n\n- point {i}.1\n- point {i}.2\n\n```\ncode {i}\n"
        f"more code {i}\n```\n\n"
        for i in range(count)
    )


# the source line of what is at the top of the rendered side, read from the page itself
PREVIEW_TOP_LINE = """() => {
    const preview = document.querySelector('[data-testid=preview]')
    const box = preview.getBoundingClientRect()
    let element = null
    for (let y = box.top + 2; y < box.top + 160 && !element; y += 4) {
        element = document.elementFromPoint(box.left + 40, y)
        element = element?.closest('[data-source-line], [data-line-offset]') ?? null
    }
    if (!element) return null
    if (element.dataset.sourceLine) return Number(element.dataset.sourceLine)
    const block = element.closest('[data-source-line]')
    return Number(block.dataset.sourceLine) + Number(element.dataset.lineOffset)
}"""
EDITOR_TOP_LINE = "() => Math.floor(window.tandem.preview.editorLine())"


# --------------------------------------------------------------------------- modes


async def test_edit_split_and_view_show_the_source_the_rendered_text_or_both(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("modes"))
    await put_text(page, "# Title\n\nSome *emphasis* and **strength**.\n")
    editor = page.get_by_test_id("editor")
    preview = page.get_by_test_id("preview")
    toc = page.get_by_test_id("toc")

    # Edit is the default: the source alone
    await expect(page.locator("body")).to_have_attribute("data-view-mode", "edit")
    await expect(page.get_by_test_id("view-mode-edit")).to_have_attribute("aria-pressed", "true")
    await expect(editor).to_be_visible()
    await expect(preview).to_be_hidden()

    await choose(page, "split")
    await rendered(page)
    await expect(page.get_by_test_id("view-mode-split")).to_have_attribute("aria-pressed", "true")
    await expect(page.get_by_test_id("view-mode-edit")).to_have_attribute("aria-pressed", "false")
    await expect(editor).to_be_visible()
    await expect(preview).to_be_visible()
    await expect(toc).to_be_hidden()
    await expect(preview.locator("h1")).to_have_text("Title")
    await expect(preview.locator("em")).to_have_text("emphasis")
    await expect(preview.locator("strong")).to_have_text("strength")
    source, output = await editor.bounding_box(), await preview.bounding_box()
    assert source and output and output["x"] >= source["x"] + source["width"] - 2  # side by side

    await choose(page, "view")
    await expect(editor).to_be_hidden()
    await expect(preview).to_be_visible()
    await expect(toc).to_be_visible()

    await choose(page, "edit")
    await expect(editor).to_be_visible()
    await expect(preview).to_be_hidden()
    # typing works in the editor after the round trip
    await focus_end(page)
    await type_keys(page, "more")
    await page.wait_for_function("() => window.tandem.ytext.toString().endsWith('more')")


async def test_the_mode_is_remembered_by_the_browser_not_by_the_document(
    server: ServerProcess, person: NewPerson
) -> None:
    ada = await person("Ada")
    page = await open_editor(ada, server.url, unique("remember"))
    await choose(page, "view")
    await page.reload()
    await wait_ready(page)
    await expect(page.locator("body")).to_have_attribute("data-view-mode", "view")
    await expect(page.get_by_test_id("view-mode-view")).to_have_attribute("aria-pressed", "true")
    assert await page.evaluate("() => localStorage.getItem('tandem:view-mode')") == "view"
    # another document in the same browser opens in View too; another person's browser does not
    other = await open_editor(ada, server.url, unique("remember-other"))
    await expect(other.locator("body")).to_have_attribute("data-view-mode", "view")
    bob = await open_editor(await person("Bob"), server.url, unique("remember-bob"))
    await expect(bob.locator("body")).to_have_attribute("data-view-mode", "edit")


# --------------------------------------------------------------------------- scroll sync


async def test_split_view_scrolls_in_step_both_ways(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("sync"))
    await put_text(page, sections(150))
    await choose(page, "split")
    await rendered(page)
    editor_box = await page.get_by_test_id("editor").bounding_box()
    preview_box = await page.get_by_test_id("preview").bounding_box()
    assert editor_box and preview_box

    async def in_step(tolerance: int) -> None:
        await page.wait_for_function(
            f"""() => {{
                const top = ({PREVIEW_TOP_LINE})()
                const line = ({EDITOR_TOP_LINE})()
                return top !== null && line > 30 && Math.abs(top - line) <= {tolerance}
            }}"""
        )

    # the editor leads: wheel over it, the rendered side follows
    await page.mouse.move(editor_box["x"] + 200, editor_box["y"] + 200)
    for _ in range(6):
        await page.mouse.wheel(0, 600)
    await in_step(8)
    first = await page.evaluate(EDITOR_TOP_LINE)

    # the rendered side leads: wheel over it, the editor follows, further down
    await page.mouse.move(preview_box["x"] + 200, preview_box["y"] + 200)
    for _ in range(8):
        await page.mouse.wheel(0, 600)
    await page.wait_for_function(f"() => ({EDITOR_TOP_LINE})() > {first + 40}")
    await in_step(8)

    # and back up
    for _ in range(20):
        await page.mouse.wheel(0, -600)
    await page.wait_for_function(f"() => ({EDITOR_TOP_LINE})() <= 2")


# --------------------------------------------------------------------------- live updates


async def test_the_rendered_side_follows_everyones_edits(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("live")
    ada = await open_editor(await person("Ada"), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    await choose(ada, "split")
    preview = ada.get_by_test_id("preview")

    await focus_end(bob)
    await type_keys(bob, "## From Bob\n\nBob writes **bold** words")
    await expect(preview.locator("h2")).to_have_text("From Bob")
    await expect(preview.locator("strong")).to_have_text("bold")
    await expect(preview.locator("p")).to_have_text("Bob writes bold words")
    await expect(ada.get_by_test_id("word-count")).to_have_attribute("data-words", "6")

    # Ada's own typing shows too, and Bob's next line lands beside it
    await focus_end(ada)
    await type_keys(ada, "\n\n- [x] done by Ada")
    await expect(preview.locator("li.task-list-item")).to_have_text("done by Ada")
    await expect(preview.locator("input[type=checkbox]")).to_be_checked()
    await expect(preview.locator("input[type=checkbox]")).to_be_disabled()
    await bob.evaluate(
        "text => window.tandem.ytext.insert(window.tandem.ytext.length, text)",
        "\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    )
    await expect(preview.locator("table td")).to_have_text(["1", "2"])


# --------------------------------------------------------------------------- contents, counts


async def test_view_mode_lists_the_headings_and_clicking_one_scrolls_to_it(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("toc"))
    await put_text(page, "# Guide\n\n[jump to section 40](#section-40)\n\n" + sections(60))
    await choose(page, "view")
    await rendered(page)
    items = page.get_by_test_id("toc-item")
    await expect(items).to_have_count(61)
    await expect(items.first).to_have_text("Guide")
    await expect(items.nth(31)).to_have_text("Section 30")

    preview = page.get_by_test_id("preview")
    heading_top = """id => {
        const heading = document.getElementById(id)
        const preview = document.querySelector('[data-testid=preview]')
        return heading.getBoundingClientRect().top - preview.getBoundingClientRect().top
    }"""
    await items.nth(31).click()
    await page.wait_for_function(f"() => Math.abs(({heading_top})('user-content-section-30')) < 40")
    await expect(items.nth(31)).to_have_attribute("aria-current", "location")
    # headings have unique ids, prefixed so none takes the id of the page's own elements
    ids = await preview.locator("h1, h2").evaluate_all("hs => hs.map(h => h.id)")
    assert len(ids) == len(set(ids)) == 61
    assert ids[0] == "user-content-guide" and ids[41] == "user-content-section-40"

    # an in-document link scrolls the rendered side too
    await items.first.click()
    await preview.get_by_role("link", name="jump to section 40").click()
    await page.wait_for_function(f"() => Math.abs(({heading_top})('user-content-section-40')) < 40")
    assert "#" not in page.url


async def test_words_and_characters_are_counted_live(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("count")
    ada = await open_editor(await person("Ada"), server.url, name)
    count = ada.get_by_test_id("word-count")
    await expect(count).to_have_text("0 words · 0 characters")
    await focus_end(ada)
    await type_keys(ada, "# Hello **wonderful** world")
    # Markdown marks are not words; characters are what was typed, line breaks aside
    await expect(count).to_have_text("3 words · 27 characters")
    await type_keys(ada, "\n- one 😀")
    await expect(count).to_have_text("4 words · 34 characters")
    await expect(count).to_have_attribute("data-characters", "34")

    bob = await open_editor(await person("Bob"), server.url, name)
    await focus_end(bob)
    await type_keys(bob, " and two")
    await expect(count).to_have_attribute("data-words", "6")
    await choose(ada, "view")  # counted in every mode
    await focus_end(bob)
    await type_keys(bob, " three")
    await expect(count).to_have_attribute("data-words", "7")


# --------------------------------------------------------------------------- hostile text

# every element and attribute the rendered side holds, checked in the page
DOM_REPORT = """(root) => {
    const report = { tags: [], handlers: [], hrefs: [], srcs: [] }
    for (const element of root.querySelectorAll('*')) {
        report.tags.push(element.tagName.toLowerCase())
        for (const attribute of element.attributes) {
            if (attribute.name.startsWith('on')) report.handlers.push(attribute.name)
        }
        if (element.hasAttribute('href')) report.hrefs.push(element.getAttribute('href'))
        if (element.hasAttribute('src')) report.srcs.push(element.getAttribute('src'))
    }
    return report
}"""
FORBIDDEN = {"script", "iframe", "object", "embed", "svg", "style", "form", "button", "frame"}


def assert_inert(report: dict[str, Any]) -> None:
    assert not FORBIDDEN & set(report["tags"]), report["tags"]
    assert report["handlers"] == []
    for href in report["hrefs"]:
        assert not href.lower().lstrip().startswith(("javascript:", "data:", "vbscript:")), href
    for src in report["srcs"]:
        assert not src.lower().lstrip().startswith(("javascript:", "data:")), src


async def watch_for_scripts(page: Page) -> list[str]:
    """Dialogs a script would open (dismissed and recorded)."""
    dialogs: list[str] = []

    async def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    return dialogs


async def test_hostile_text_never_runs_a_script_in_the_preview_or_the_export(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("hostile")
    context = await person("Mallory")
    page = await open_editor(context, server.url, name)
    dialogs = await watch_for_scripts(page)
    hostile = (DATA / "hostile.md").read_text()
    await put_text(page, hostile)
    await choose(page, "split")
    await rendered(page)
    preview = page.get_by_test_id("preview")
    await expect(preview.locator("h1")).to_have_text("Hostile")
    # raw HTML is shown as text
    await expect(preview).to_contain_text("<script>window.__pwned = 'script'; alert(1)</script>")
    assert_inert(await preview.evaluate(DOM_REPORT))
    # move over and click everything that could carry a handler or a link
    for link in await preview.locator("a:not([target])").all():
        await link.click()
    await preview.locator("pre").first.hover()
    await choose(page, "view")
    assert await page.evaluate("() => window.__pwned") is None
    assert dialogs == []

    # the sanitizer stands behind markdown-it: raw HTML that reached it is disarmed
    sanitized = await page.evaluate(
        """() => window.tandem.preview.sanitized(
            '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>' +
            '<a href="javascript:window.__pwned=3" target="_self">x</a>' +
            '<svg><script>window.__pwned=4</script></svg><iframe src="about:blank"></iframe>' +
            '<h1 id="editor">clash</h1><a href="https://example.com" target="_top">out</a>')"""
    )
    for bad in ("onerror", "<script", "javascript:", "<iframe", "<svg", "_self", "_top"):
        assert bad not in sanitized
    assert 'id="user-content-editor"' in sanitized
    assert 'rel="noopener noreferrer"' in sanitized
    assert await page.evaluate("() => window.__pwned") is None

    # the exported web page: opened in Chromium as shipped, and with its CSP taken out
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)
    response = await context.request.get(f"{server.url}/api/docs/{name}/export?format=html")
    assert response.status == 200
    exported = await response.text()
    assert "default-src 'none'" in exported
    without_csp = exported.replace('<meta http-equiv="Content-Security-Policy"', "<meta x")
    assert "Content-Security-Policy" not in without_csp
    pages = {
        "http://export.test/as-shipped.html": exported,
        "http://export.test/no-csp.html": without_csp,
    }

    async def serve(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html", body=pages[route.request.url])

    viewer = await context.new_page()
    viewer_dialogs = await watch_for_scripts(viewer)
    await viewer.route("http://export.test/**", serve)
    for url in pages:
        await viewer.goto(url)
        await expect(viewer.locator("h1")).to_have_text("Hostile")
        assert_inert(await viewer.locator("body").evaluate(DOM_REPORT))
        for element in await viewer.locator("body *").all():
            await element.hover(timeout=2_000, trial=False, force=True)
        assert await viewer.evaluate("() => window.__pwned") is None, url
    assert viewer_dialogs == []
