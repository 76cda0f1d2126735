"""Editing in Chromium: formatting keys and toolbar, closed brackets, the keyboard help, the find
panel, dark mode, a phone's layout, what the status says when the server is down, exports from
the device's copy, and the error pages.

One Chromium and one server are shared by the module (the server-down test starts its own, to
stop it); each person is a browser context of their own.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from .browser import (
    KEPT_ON_DEVICE,
    SAVED,
    NewPerson,
    focus_end,
    open_editor,
    text_of,
    type_keys,
    wait_ready,
    wait_text,
)
from .conftest import ServerProcess, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}


async def set_text(page: Page, text: str, anchor: int, head: int | None = None) -> None:
    """Replace the whole text (an edit through CodeMirror, as typing is) and select
    ``anchor``..``head``; the focus goes to the text."""
    await page.evaluate(
        """([text, anchor, head]) => {
            const view = window.tandem.view
            view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text },
                            selection: { anchor, head } })
            window.tandem.undoManager.stopCapturing() // what follows is an undo step of its own
            view.focus()
        }""",
        [text, anchor, anchor if head is None else head],
    )
    await wait_text(page, text)


async def selection(page: Page) -> list[list[int]]:
    return await page.evaluate(
        "() => window.tandem.view.state.selection.ranges.map(r => [r.from, r.to])"
    )


async def selected_text(page: Page) -> str:
    return await page.evaluate(
        """() => { const s = window.tandem.view.state
                   return s.sliceDoc(s.selection.main.from, s.selection.main.to) }"""
    )


# --------------------------------------------------------------------------- formatting


INLINE_KEYS = [
    ("Control+b", "**"),
    ("Control+i", "_"),
    ("Control+Shift+X", "~~"),
    ("Control+e", "`"),
    ("Control+`", "`"),
]


async def test_formatting_keys_wrap_the_selection_and_the_same_key_unwraps_it(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("keys"))
    for key, mark in INLINE_KEYS:
        await set_text(page, "make this bold", 5, 9)
        await page.keyboard.press(key)
        await wait_text(page, f"make {mark}this{mark} bold")
        assert await selected_text(page) == "this", key  # the text stays selected
        await page.keyboard.press(key)
        await wait_text(page, "make this bold")

    # a caret inside the marks is enough to remove them; one undo step per format
    await set_text(page, "a **strong** word", 6)
    await page.keyboard.press("Control+b")
    await wait_text(page, "a strong word")
    await page.keyboard.press("Control+z")
    await wait_text(page, "a **strong** word")

    # no selection: an empty pair to type into, and the key again takes it away
    await set_text(page, "x ", 2)
    await page.keyboard.press("Control+b")
    await type_keys(page, "bold")
    await wait_text(page, "x **bold**")
    await set_text(page, "x ", 2)
    await page.keyboard.press("Control+b")
    await page.keyboard.press("Control+b")
    await wait_text(page, "x ")

    # link: the url placeholder is selected, typing replaces it; again, back to the text
    await set_text(page, "see the docs", 4, 12)
    await page.keyboard.press("Control+k")
    await wait_text(page, "see [the docs](url)")
    assert await selected_text(page) == "url"
    await type_keys(page, "https://example.org")
    await wait_text(page, "see [the docs](https://example.org)")
    await page.keyboard.press("Control+k")
    await wait_text(page, "see the docs")

    # several selections at once (Ctrl-D selects the next occurrence)
    await set_text(page, "cat dog cat", 0, 3)
    await page.keyboard.press("Control+d")
    assert await selection(page) == [[0, 3], [8, 11]]
    await page.keyboard.press("Control+b")
    await wait_text(page, "**cat** dog **cat**")
    await page.keyboard.press("Control+b")
    await wait_text(page, "cat dog cat")


async def test_headings_lists_and_quotes_from_keys_toggle_per_line(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("lines"))
    await set_text(page, "Title", 2)
    await page.keyboard.press("Control+Alt+2")
    await wait_text(page, "## Title")
    await page.keyboard.press("Control+Alt+1")
    await wait_text(page, "# Title")
    await page.keyboard.press("Control+Alt+1")
    await wait_text(page, "Title")
    await page.keyboard.press("Control+Shift+H")  # the next level
    await page.keyboard.press("Control+Shift+H")
    await wait_text(page, "## Title")
    await page.keyboard.press("Control+Alt+0")
    await wait_text(page, "Title")

    lines = "one\ntwo\nthree"
    for key, want in (
        ("Control+Shift+8", "- one\n- two\n- three"),
        ("Control+Shift+7", "1. one\n2. two\n3. three"),
        ("Control+Shift+9", "- [ ] one\n- [ ] two\n- [ ] three"),
        ("Control+Shift+.", "> one\n> two\n> three"),
    ):
        await set_text(page, lines, 0, len(lines))
        await page.keyboard.press(key)
        await wait_text(page, want)
        await page.keyboard.press(key)  # all lines have it: removed
        await wait_text(page, lines)

    # a bulleted list becomes a numbered one, not a mix
    await set_text(page, "- a\n- b", 0, 7)
    await page.keyboard.press("Control+Shift+7")
    await wait_text(page, "1. a\n2. b")


async def test_the_toolbar_runs_the_same_commands_and_names_its_keys(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("toolbar"))
    toolbar = page.get_by_role("toolbar", name="Text formatting")
    await expect(toolbar).to_be_visible()
    buttons = toolbar.locator("button.format-button:not(.format-more-button)")
    names = await buttons.evaluate_all(
        "bs => bs.map(b => [b.getAttribute('aria-label'), b.getAttribute('aria-keyshortcuts')])"
    )
    assert [name for name, _ in names] == [
        "Bold",
        "Italic",
        "Strikethrough",
        "Inline code",
        "Link",
        "Heading",
        "Bulleted list",
        "Numbered list",
        "Task list",
        "Quote",
    ]
    assert all(keys and keys.startswith("Control+") for _, keys in names), names
    await expect(page.get_by_test_id("format-more")).to_be_hidden()  # everything fits here

    for testid, want in (
        ("format-bold", "one **two** three"),
        ("format-italic", "one _two_ three"),
        ("format-strikethrough", "one ~~two~~ three"),
        ("format-code", "one `two` three"),
        ("format-link", "one [two](url) three"),
    ):
        await set_text(page, "one two three", 4, 7)
        await page.get_by_test_id(testid).click()
        await wait_text(page, want)
        await expect(page.locator("[data-testid=editor] .cm-content")).to_be_focused()
    await page.get_by_test_id("format-link").click()  # inside the link: back to text
    await wait_text(page, "one two three")

    await set_text(page, "Title\nitem", 1)
    for testid, want in (
        ("format-heading", "# Title\nitem"),
        ("format-heading", "## Title\nitem"),
    ):
        await page.get_by_test_id(testid).click()
        await wait_text(page, want)
    await set_text(page, "a\nb", 0, 3)
    for testid, want in (
        ("format-bullet-list", "- a\n- b"),
        ("format-numbered-list", "1. a\n2. b"),
        ("format-task-list", "- [ ] a\n- [ ] b"),
        ("format-task-list", "a\nb"),
        ("format-quote", "> a\n> b"),
    ):
        await page.get_by_test_id(testid).click()
        await wait_text(page, want)

    # a toolbar is one Tab stop; the arrow keys move between its buttons
    bold = page.get_by_test_id("format-bold")
    assert await bold.get_attribute("tabindex") == "0"
    assert await page.get_by_test_id("format-italic").get_attribute("tabindex") == "-1"
    await bold.focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_test_id("format-italic")).to_be_focused()
    await page.keyboard.press("End")
    await expect(page.get_by_test_id("format-quote")).to_be_focused()
    await page.keyboard.press("ArrowRight")
    await expect(bold).to_be_focused()


async def test_brackets_quotes_and_backticks_close_as_they_are_typed(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("brackets"))
    await focus_end(page)
    await type_keys(page, "(")
    await wait_text(page, "()")
    await type_keys(page, "x)")  # the closing one is typed over, not doubled
    await wait_text(page, "(x)")
    await type_keys(page, " `")
    await wait_text(page, "(x) ``")
    await type_keys(page, "code` [")
    await wait_text(page, "(x) `code` []")
    await page.keyboard.press("Backspace")  # an empty pair goes at once
    await wait_text(page, "(x) `code` ")
    await type_keys(page, "don't")  # an apostrophe is no quote to close
    await wait_text(page, "(x) `code` don't")


async def test_the_keyboard_help_lists_every_shortcut_and_nothing_is_cut_off(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("help"))
    help_box = page.get_by_test_id("keyboard-help")
    await help_box.locator("summary").click()
    terms = await help_box.locator("dt").all_inner_texts()
    assert terms == [
        "Bold",
        "Italic",
        "Strikethrough",
        "Inline code",
        "Link",
        "Heading 1 to 6",
        "Next heading level",
        "Plain text (no heading)",
        "Bulleted list",
        "Numbered list",
        "Task list",
        "Quote",
        "Undo your own changes",
        "Redo",
        "Find and replace",
        "Leave the text (Tab indents)",
    ]
    for label in await page.locator("[role=toolbar] button[aria-label]").evaluate_all(
        "bs => bs.map(b => b.getAttribute('aria-label'))"
    ):
        assert any(label.lower() in term.lower() for term in terms), label

    clipped = """box => {
        const side = box.closest('.sidebar').getBoundingClientRect()
        return [box, ...box.querySelectorAll('dl, dl > div, dt, dd, p')]
            .filter(e => e.scrollWidth > e.clientWidth + 1
                || e.getBoundingClientRect().right > side.right + 1)
            .map(e => e.textContent)
    }"""
    assert await help_box.evaluate(clipped) == []
    # the side column is narrower while the history is open
    await page.get_by_test_id("history-button").click()
    await expect(page.get_by_test_id("history-panel")).to_be_visible()
    assert await help_box.evaluate(clipped) == []
    sidebar = page.locator(".sidebar")
    assert await sidebar.evaluate("s => s.scrollWidth <= s.clientWidth")


async def test_find_and_replace_is_laid_out_on_one_line_in_the_page_style(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await open_editor(await person("Ada"), server.url, unique("find"))
    await set_text(page, "find the word, the word", 0)
    await page.keyboard.press("Control+f")
    panel = page.locator(".cm-search")
    await expect(panel).to_be_visible()
    find_row = await panel.evaluate(
        """p => [...p.querySelectorAll(
                '[name=search], [name=next], [name=prev], [name=select], label')]
            .map(e => ({ tag: e.tagName, top: e.getBoundingClientRect().top,
                         bottom: e.getBoundingClientRect().bottom,
                         display: getComputedStyle(e).display }))"""
    )
    assert len(find_row) == 7
    # the page's form labels are blocks; the panel's checkbox labels are not
    assert all(i["display"] != "block" for i in find_row if i["tag"] == "LABEL"), find_row
    tops = [item["top"] for item in find_row]
    bottoms = [item["bottom"] for item in find_row]
    assert max(tops) < min(bottoms), find_row  # they all share one line
    field = panel.locator("[name=search]")
    assert await field.evaluate("f => getComputedStyle(f).borderRadius") == "6px"
    await expect(field).to_be_focused()
    await type_keys(page, "word")
    await expect(page.locator(".cm-searchMatch")).to_have_count(2)


# --------------------------------------------------------------------------- dark mode


def luminance(rgb: str) -> float:
    """Relative luminance of a computed ``rgb(…)`` colour."""
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


async def colours(page: Page) -> dict[str, float]:
    found = await page.evaluate(
        """() => {
            const bg = (s) => getComputedStyle(document.querySelector(s)).backgroundColor
            const fg = (s) => getComputedStyle(document.querySelector(s)).color
            return { page: bg('body'), editor: bg('.cm-editor'), text: fg('.cm-content') }
        }"""
    )
    return {key: luminance(value) for key, value in found.items()}


async def test_dark_mode_follows_the_system_and_a_remembered_choice(
    server: ServerProcess, person: NewPerson
) -> None:
    context = await person("Ada", color_scheme="light")
    page = await open_editor(context, server.url, unique("dark"))
    root = page.locator("html")
    select = page.get_by_test_id("theme-select")
    await expect(root).to_have_attribute("data-theme", "light")
    await expect(select).to_have_value("system")
    light = await colours(page)
    assert light["page"] > 0.8 and light["text"] < 0.1, light

    await page.emulate_media(color_scheme="dark")  # the system changes: so does the page
    await expect(root).to_have_attribute("data-theme", "dark")
    dark = await colours(page)
    assert dark["page"] < 0.05 and dark["editor"] < 0.05 and dark["text"] > 0.7, dark

    await page.emulate_media(color_scheme="light")
    await expect(root).to_have_attribute("data-theme", "light")
    await select.select_option("dark")  # the person's choice wins over the system's
    await expect(root).to_have_attribute("data-theme", "dark")
    assert await page.evaluate("() => localStorage.getItem('tandem:theme')") == "dark"
    await page.reload()
    await wait_ready(page)
    await expect(root).to_have_attribute("data-theme", "dark")
    await expect(select).to_have_value("dark")
    assert (await colours(page))["editor"] < 0.05

    home = await context.new_page()  # every page, the home page too
    await home.goto(server.url + "/")
    await expect(home.locator("html")).to_have_attribute("data-theme", "dark")
    await home.get_by_test_id("theme-select").select_option("light")
    await expect(home.locator("html")).to_have_attribute("data-theme", "light")
    await expect(root).to_have_attribute("data-theme", "light")  # the other tab follows

    await select.select_option("system")
    assert await page.evaluate("() => localStorage.getItem('tandem:theme')") is None
    await page.emulate_media(color_scheme="dark")
    await expect(root).to_have_attribute("data-theme", "dark")


# --------------------------------------------------------------------------- phone


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width


def inside(box: dict[str, float] | None, viewport: dict[str, int]) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= viewport["width"] + 0.5
        and box["y"] + box["height"] <= viewport["height"] + 0.5
    )


async def test_a_phone_gets_one_toolbar_row_people_above_the_text_and_a_fitting_history(
    server: ServerProcess, person: NewPerson, tmp_path: Path
) -> None:
    context = await person("Ada", viewport=PHONE)
    home = await context.new_page()
    await home.goto(server.url + "/")
    await expect(home.get_by_test_id("open-form")).to_be_visible()
    await no_sideways_scroll(home)
    await home.screenshot(path=tmp_path / "phone-home.png")

    page = await open_editor(context, server.url, unique("phone"))
    await page.screenshot(path=tmp_path / "phone-editor.png", full_page=True)
    await no_sideways_scroll(page)

    # the top bar: one row (name, connection dot, save mark, Edit/Split/View, "⋯"), no more
    # than about 60 px high; the words of the statuses are still there for screen readers
    topbar = page.locator("header.topbar")
    row = await topbar.evaluate(
        """bar => ({ height: bar.getBoundingClientRect().height,
            items: [...bar.querySelectorAll('.brand, .doc-title, .connection, .save, .view-mode, '
                + '#top-more')].filter(e => e.offsetParent !== null).map(e => {
                const r = e.getBoundingClientRect()
                return { id: e.dataset.testid || e.className, middle: r.top + r.height / 2,
                         right: r.right }
            }) })"""
    )
    assert row["height"] <= 60, row
    assert len(row["items"]) >= 7, row
    middles = [item["middle"] for item in row["items"]]
    assert max(middles) - min(middles) <= 4, row
    assert all(item["right"] <= PHONE["width"] for item in row["items"]), row
    await expect(page.get_by_test_id("connection-status")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    for testid in ("export-menu", "history-button", "copy-link", "theme-select"):
        await expect(page.get_by_test_id(testid)).to_be_hidden()
    top_more = page.get_by_test_id("top-more")
    await expect(top_more).to_have_attribute("aria-haspopup", "dialog")
    await top_more.click()
    await expect(top_more).to_have_attribute("aria-expanded", "true")
    top_panel = page.get_by_test_id("top-more-panel")
    await expect(top_panel).to_be_visible()
    for testid in ("export-menu", "history-button", "copy-link", "theme-select"):
        await expect(top_panel.get_by_test_id(testid)).to_be_visible()
    assert inside(await top_panel.bounding_box(), PHONE)
    await expect(page.get_by_test_id("export-menu")).to_be_focused()
    await page.keyboard.press("ArrowDown")  # opens Export's own menu
    await expect(page.locator("#export-list")).to_be_visible()
    assert inside(await top_panel.bounding_box(), PHONE)
    await page.keyboard.press("Escape")  # closes Export's menu only
    await expect(page.locator("#export-list")).to_be_hidden()
    await expect(top_panel).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(top_panel).to_be_hidden()
    await expect(top_more).to_have_attribute("aria-expanded", "false")
    await expect(top_more).to_be_focused()
    await no_sideways_scroll(page)

    # the formatting toolbar: one row; what does not fit is in "More"
    toolbar = page.get_by_role("toolbar", name="Text formatting")
    shown = await toolbar.evaluate(
        """t => [...t.querySelectorAll('button')].filter(b => b.offsetParent !== null)
            .map(b => ({ top: Math.round(b.getBoundingClientRect().top),
                         right: b.getBoundingClientRect().right, name: b.textContent }))"""
    )
    assert len({item["top"] for item in shown}) == 1, shown
    assert all(item["right"] <= PHONE["width"] for item in shown), shown
    more = page.get_by_test_id("format-more")
    await expect(more).to_be_visible()
    hidden = await toolbar.locator("button.format-button[hidden]").count()
    assert hidden > 0
    await set_text(page, "a quote", 0)
    await more.click()
    menu = page.get_by_test_id("format-more-menu")
    await expect(menu).to_be_visible()
    await expect(menu.get_by_role("menuitem")).to_have_count(hidden)
    assert inside(await menu.bounding_box(), PHONE)
    await menu.get_by_role("menuitem", name="Quote").click()
    await wait_text(page, "> a quote")
    await expect(menu).to_be_hidden()

    # who is here and your name: on the first screen, before the text
    await page.evaluate("() => window.scrollTo(0, 0)")
    pane_top = (await page.locator(".editor-pane").bounding_box() or {})["y"]
    for testid in ("participants", "name-input"):
        box = await page.get_by_test_id(testid).bounding_box()
        assert inside(box, PHONE) and box is not None and box["y"] < pane_top, (testid, box)

    # the history, from "⋯": a sheet that fits the screen, nothing wider than it
    await top_more.click()
    await page.get_by_test_id("history-button").click()
    await expect(top_panel).to_be_hidden()
    panel = page.get_by_test_id("history-panel")
    await expect(panel).to_be_visible()
    await page.get_by_test_id("save-version").click()
    await page.get_by_test_id("save-version-confirm").click()
    await page.get_by_test_id("version-item").first.click()
    await expect(page.get_by_test_id("version-preview")).to_have_attribute("data-state", "loaded")
    await page.screenshot(path=tmp_path / "phone-history.png")
    assert inside(await panel.bounding_box(), PHONE)
    assert await panel.evaluate("p => p.scrollWidth <= p.clientWidth")
    await no_sideways_scroll(page)


# --------------------------------------------------------------------------- server down


async def test_server_down_says_so_keeps_unsaved_changes_and_exports_from_the_device(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--keepalive", "2").start()
    name = unique("down")
    context = await person("Ada")
    page = await open_editor(context, srv.url, name)
    status = page.get_by_test_id("connection-status")
    save = page.get_by_test_id("save-status")
    await focus_end(page)
    await type_keys(page, "# Notes\n\nkept <here>")
    await expect(save).to_have_text(SAVED)

    assert await asyncio.to_thread(srv.stop) == 0
    # the network is up: it is the server that cannot be reached, not "Offline"
    await expect(status).to_have_text("Can't reach the server")
    await expect(status).to_have_attribute("data-state", "unreachable")
    await expect(page.get_by_test_id("connection-detail")).to_contain_text("Can't reach the server")

    # a burst of typing is one unsaved edit, not one per key; a pause starts the next
    await type_keys(page, " and more")
    await expect(save).to_have_text(KEPT_ON_DEVICE)
    await expect(save).to_have_attribute("data-pending", "1")
    await asyncio.sleep(1.2)
    await type_keys(page, "!")
    await expect(save).to_have_attribute("data-pending", "2")
    await expect(save).to_have_attribute("title", re.compile(r"^2 edits not on the server"))
    text = "# Notes\n\nkept <here> and more!"
    await wait_text(page, text)

    # the export comes from this device's copy
    for fmt, check in (
        ("md", lambda body: body == text),
        ("txt", lambda body: body == text),
        ("html", lambda body: "kept &#60;here&#62;" in body or "kept &lt;here&gt;" in body),
    ):
        await page.get_by_test_id("export-menu").click()
        async with page.expect_download() as info:
            await page.get_by_test_id(f"export-{fmt}").click()
        download = await info.value
        assert download.suggested_filename == f"{name}.{fmt}"
        body = Path(await download.path()).read_text(encoding="utf-8")
        assert check(body), (fmt, body)
        await expect(page.get_by_test_id("notice")).to_contain_text("from the copy on this device")
    assert "<here>" not in body  # the web page shows the text, it does not run it

    # the browser goes offline: now it is "Offline"; back online, the server is still down
    await context.set_offline(True)
    await expect(status).to_have_text("Offline")
    await context.set_offline(False)
    await expect(status).to_have_text("Can't reach the server")

    await asyncio.to_thread(srv.start)  # same port, same database
    await expect(status).to_have_text("Connected")
    await expect(save).to_have_text(SAVED)
    assert await text_of(page) == text


# --------------------------------------------------------------------------- error pages


async def test_bad_addresses_get_styled_pages_with_a_way_home(
    server: ServerProcess, person: NewPerson
) -> None:
    context = await person("Ada", color_scheme="dark")
    page = await context.new_page()
    for path, status, heading, home in (
        ("/d/has%20space", 400, "Not a document name", "/"),
        ("/d/a..b?token=t%26k", 400, "Not a document name", "/?token=t%26k"),
        ("/d/", 404, "No document here", "/"),
        ("/d", 404, "No document here", "/"),
    ):
        response = await page.goto(server.url + path)
        assert response is not None and response.status == status, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        card = page.get_by_test_id("error-page")
        await expect(card).to_be_visible()
        await expect(page.locator("h1")).to_have_text(heading)
        # the site's stylesheet and theme are there: a card, in the dark
        assert await card.evaluate("c => getComputedStyle(c).borderRadius") == "14px"
        await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        link = page.get_by_test_id("error-home")
        assert await link.get_attribute("href") == home, path
    await expect(page.locator(".lede")).to_contain_text("names no document")
    await page.goto(server.url + "/d/has%20space")
    await expect(page.locator(".lede")).to_contain_text("“has space” cannot be a document name")
    await page.get_by_test_id("error-home").click()
    await expect(page.get_by_test_id("open-form")).to_be_visible()
