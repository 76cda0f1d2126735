"""The editor's Export menu, History panel, read-only mode and names shown as text, in Chromium.

One Chromium is shared by the module; each person is a browser context of their own. Downloads
are Playwright's; the server's copy of a document is read through its HTTP export.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import (
    Download,
    Locator,
    Page,
    expect,
)

from server.auth import Role, mint

from .browser import (
    SAVED,
    NewPerson,
    editor_url,
    focus_end,
    open_editor,
    participant_names,
    text_of,
    type_keys,
    wait_editor_shows,
    wait_ready,
    wait_text,
)
from .conftest import ServerProcess, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-history-test-secret-0123456789"


async def export_text(base_url: str, name: str, token: str | None = None) -> str:
    """The server's text of ``name`` (HTTP export, txt)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        url = f"{base_url}/api/docs/{name}/export?format=txt"
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.text()


async def downloaded(page: Page, click: Callable[[], Awaitable[None]]) -> tuple[Download, str]:
    """Run ``click`` and return the download it starts, with its content."""
    async with page.expect_download() as info:
        await click()
    download = await info.value
    path = await download.path()
    return download, Path(path).read_text(encoding="utf-8")


def save_status(page: Page) -> Locator:
    return page.get_by_test_id("save-status")


def version_item(page: Page, text: str) -> Locator:
    return page.get_by_test_id("version-item").filter(has_text=text)


class _Heading(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.headings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1":
            self.inside = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.headings[-1] += data


# --------------------------------------------------------------------------- export


async def test_the_export_menu_downloads_markdown_and_an_html_page(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("export/notes")
    page = await open_editor(await person("Exporter"), server.url, name)
    text = "# Quarterly notes\n\nShip the *export* menu & keep <b>tags</b> as text.\n"
    await page.evaluate(
        "t => window.tandem.view.dispatch({ changes: { from: 0, insert: t } })", text
    )
    await expect(save_status(page)).to_have_text(SAVED)

    menu_button = page.get_by_test_id("export-menu")
    menu = page.get_by_role("menu")
    await expect(menu).to_be_hidden()
    await menu_button.click()
    await expect(menu).to_be_visible()
    await expect(menu_button).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_test_id("export-md")).to_be_focused()
    download, content = await downloaded(page, page.get_by_test_id("export-md").click)
    assert download.suggested_filename.endswith(".md")
    assert content == text
    await expect(menu).to_be_hidden()

    # by keyboard: ↓ opens the menu on Markdown; ↓ ↓ is the web page; Enter downloads it
    await menu_button.focus()
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_test_id("export-md")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_test_id("export-html")).to_be_focused()
    download, html = await downloaded(page, lambda: page.keyboard.press("Enter"))
    assert download.suggested_filename.endswith(".html")
    parser = _Heading()
    parser.feed(html)
    assert parser.headings == ["Quarterly notes"]
    assert "<b>tags</b>" not in html  # raw HTML is shown as text
    await expect(menu_button).to_be_focused()

    # Esc closes the menu and gives the focus back
    await page.keyboard.press("ArrowUp")
    await expect(page.get_by_test_id("export-yjs")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(menu_button).to_be_focused()

    # a narrow screen: Export and History are in the top bar's "⋯"; the menu and the history
    # panel stay inside the screen and work by keyboard
    await page.set_viewport_size({"width": 390, "height": 780})
    more = page.get_by_test_id("top-more")
    await more.click()
    await menu_button.click()
    box = await menu.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(menu_button).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("top-more-panel")).to_be_hidden()
    await expect(more).to_be_focused()
    history_button = page.get_by_test_id("history-button")
    await more.click()
    await history_button.click()
    panel = page.get_by_test_id("history-panel")
    await expect(panel).to_be_visible()
    await expect(page.locator("#history-heading")).to_be_focused()
    box = await panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(more).to_be_focused()  # History's own button is in the closed "⋯"
    await expect(history_button).to_have_attribute("aria-expanded", "false")
    # wide again: everything back in the top bar
    await page.set_viewport_size({"width": 1200, "height": 800})
    await expect(more).to_be_hidden()
    await expect(history_button).to_be_visible()
    await expect(menu_button).to_be_visible()


# --------------------------------------------------------------------------- history


async def test_save_a_version_see_its_text_and_diff_restore_it_and_undo_the_restore(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("history")
    ada = await open_editor(await person("Ada"), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    first = "First draft."
    await focus_end(ada)
    await type_keys(ada, first)
    await wait_text(bob, first)
    await expect(save_status(ada)).to_have_text(SAVED)

    await ada.get_by_test_id("history-button").click()
    panel = ada.get_by_test_id("history-panel")
    await expect(panel).to_be_visible()
    # Save version asks for a label inline (no window.prompt)
    dialogs: list[str] = []
    ada.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await ada.get_by_test_id("save-version").click()
    label_input = ada.get_by_test_id("version-label-input")
    await expect(label_input).to_be_focused()
    await label_input.fill("Sent to Grace")
    await label_input.press("Enter")
    saved = version_item(ada, "Sent to Grace")
    await expect(saved).to_have_count(1)
    await expect(label_input).to_be_hidden()
    version_id = int(await saved.get_attribute("data-version-id") or 0)
    assert version_id > 0
    # people see the document's own count of versions (the server's `number`), not the id
    number = int(await saved.get_attribute("data-version-number") or 0)
    assert number > 0
    await expect(saved.get_by_test_id("version-number")).to_have_text(f"Version {number}")
    await expect(ada.get_by_test_id("history-notice")).to_contain_text(f"Saved version {number}")
    # relative time, with the absolute time on hover
    time = saved.locator("time")
    await expect(time).to_have_text("just now")
    assert re.search(r"\d{4}", await time.get_attribute("title") or "")
    await expect(saved).to_contain_text(re.compile(r"\d+(\.\d)? (B|kB)"))

    more = "\nA second line."
    await focus_end(ada)
    await type_keys(ada, more)
    newer = first + more
    await wait_text(bob, newer)
    await expect(save_status(ada)).to_have_text(SAVED)

    # the version's own text, and what changed since
    await saved.click()
    await expect(saved).to_have_attribute("aria-current", "true")
    await expect(ada.get_by_test_id("version-preview")).to_have_text(first)
    diff = ada.get_by_test_id("version-diff")
    added = diff.locator(".diff-add", has_text="A second line.")
    await expect(added).to_have_count(1)
    await expect(added).to_have_text("+A second line.")
    await expect(diff.locator(".diff-del", has_text="second")).to_have_count(0)
    colours = await diff.evaluate(
        """d => [...d.querySelectorAll('.diff-add, .diff-del')]
            .map(e => getComputedStyle(e).backgroundColor)"""
    )
    assert len(set(colours)) == 2  # added and removed lines are coloured differently

    # Restore, confirmed inline: both editors get the old text as an edit from the server
    await ada.get_by_test_id("restore-version").click()
    confirm = ada.get_by_test_id("restore-confirm")
    await expect(confirm).to_be_visible()
    await expect(confirm).to_be_focused()
    await confirm.click()
    for page in (ada, bob):
        await wait_text(page, first)
        await wait_editor_shows(page, first)
    before = version_item(ada, f"before restoring version {number}")
    await expect(before).to_have_count(1)
    await expect(diff).to_contain_text("No changes")
    assert await export_text(server.url, name) == first

    # restoring "before restoring version N" undoes the restore
    await before.click()
    await expect(ada.get_by_test_id("version-preview")).to_have_text(newer)
    await ada.get_by_test_id("restore-version").click()
    await ada.get_by_test_id("restore-confirm").click()
    for page in (ada, bob):
        await wait_text(page, newer)
        await wait_editor_shows(page, newer)
    await expect(ada.get_by_test_id("history-error")).to_be_hidden()
    await expect(save_status(ada)).to_have_text(SAVED)
    assert await export_text(server.url, name) == newer

    # an unknown version is a readable error in the panel, not a crash
    await ada.evaluate("() => window.tandem.history.select(999999)")
    error = ada.get_by_test_id("history-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("no version 999999")
    assert dialogs == []


# --------------------------------------------------------------------------- access


async def test_a_reader_sees_the_text_read_only_and_cannot_change_it(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET, "--keepalive", "2").start()
    name = unique("readonly")
    write_token = mint(SECRET, name, Role.write, 3600)
    read_token = mint(SECRET, name, Role.read, 3600)

    writer = await open_editor(await person("Writer"), srv.url, name, token=write_token)
    written = "Written by the writer."
    await focus_end(writer)
    await type_keys(writer, written)
    await expect(save_status(writer)).to_have_text(SAVED)
    await expect(writer.get_by_test_id("read-only-badge")).to_be_hidden()

    reader = await open_editor(await person("Reader"), srv.url, name, token=read_token)
    await wait_text(reader, written)
    await wait_editor_shows(reader, written)
    badge = reader.get_by_test_id("read-only-badge")
    await expect(badge).to_be_visible()
    await expect(badge).to_have_text("Read-only")
    content = reader.locator("[data-testid=editor] .cm-content")
    await expect(content).to_have_attribute("contenteditable", "false")
    assert await reader.evaluate("() => window.tandem.view.state.readOnly") is True
    # it is read-only from its token alone: what it sends on connect (an empty or known step
    # 2) is no edit, so the server has no "permission denied" to tell it
    await expect(save_status(reader)).to_be_hidden()
    assert await reader.evaluate("() => window.tandem.access().denied") is False

    # typing, deleting, pasting-by-keys and undo change nothing
    await content.click()
    await reader.keyboard.press("Control+End")
    await reader.keyboard.type("reader was here")
    await reader.keyboard.press("Backspace")
    await reader.keyboard.press("Enter")
    await reader.keyboard.press("Control+z")
    assert await text_of(reader) == written
    # the writer sees the reader as a viewer
    viewer = writer.get_by_test_id("participant").filter(has_text="Reader")
    await expect(viewer.locator(".participant-role")).to_have_text("viewing")

    # the writer's later typing still reaches the reader, whose text never diverged
    later = " And more later."
    await focus_end(writer)
    await type_keys(writer, later)
    await wait_text(reader, written + later)
    await wait_editor_shows(reader, written + later)
    assert await text_of(writer) == await text_of(reader)
    await expect(save_status(writer)).to_have_text(SAVED)
    assert await export_text(srv.url, name, read_token) == written + later

    # a writer may save versions but not restore them
    await writer.get_by_test_id("history-button").click()
    await writer.get_by_test_id("save-version").click()
    await writer.get_by_test_id("version-label-input").fill("Checked by the writer")
    await writer.get_by_test_id("save-version-confirm").click()
    item = version_item(writer, "Checked by the writer")
    await item.click()
    await expect(writer.get_by_test_id("version-preview")).to_have_text(written + later)
    await expect(writer.get_by_test_id("restore-version")).to_be_disabled()

    # a reader may look at the history, with neither Save version nor Restore
    await reader.get_by_test_id("history-button").click()
    await expect(reader.get_by_test_id("history-panel")).to_be_visible()
    await expect(reader.get_by_test_id("save-version")).to_be_hidden()
    await version_item(reader, "Checked by the writer").click()
    await expect(reader.get_by_test_id("version-preview")).to_have_text(written + later)
    await expect(reader.get_by_test_id("restore-version")).to_be_hidden()
    # and the reader's export downloads with the token
    await reader.get_by_test_id("export-menu").click()
    _, exported = await downloaded(reader, reader.get_by_test_id("export-txt").click)
    assert exported == written + later

    # a token for another document: the server refuses, the panel says so in words
    elsewhere = mint(SECRET, "elsewhere", Role.admin, 3600)
    stranger = await (await person("Stranger")).new_page()
    await stranger.goto(editor_url(srv.url, name, elsewhere))
    await wait_ready(stranger)
    await expect(stranger.get_by_test_id("connection-detail")).to_contain_text("not allowed")
    await stranger.get_by_test_id("history-button").click()
    refused = stranger.get_by_test_id("history-error")
    await expect(refused).to_be_visible()
    await expect(refused).to_contain_text("You are not allowed to load the history")
    await expect(refused).to_contain_text("not for document")
    assert await export_text(srv.url, name, read_token) == written + later


async def test_permission_denied_from_the_server_makes_an_editor_read_only(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("denied")
    page = await open_editor(await person("Denied"), server.url, name)
    await expect(page.get_by_test_id("read-only-badge")).to_be_hidden()
    assert await page.evaluate("() => window.tandem.view.state.readOnly") is False
    # y-protocols auth message: type 2, permission denied 0, varString reason
    await page.evaluate(
        """() => {
            const reason = new TextEncoder().encode('read-only: edits are not applied')
            const frame = new Uint8Array([2, 0, reason.length, ...reason])
            window.tandem.provider.ws.onmessage({ data: frame.buffer })
        }"""
    )
    await expect(page.get_by_test_id("read-only-badge")).to_be_visible()
    assert await page.evaluate("() => window.tandem.view.state.readOnly") is True
    await expect(page.locator("[data-testid=editor] .cm-content")).to_have_attribute(
        "contenteditable", "false"
    )
    await page.get_by_test_id("history-button").click()
    await expect(page.get_by_test_id("save-version")).to_be_hidden()


# --------------------------------------------------------------------------- names

# every <img> of the page but CodeMirror's own empty widget buffers
PAGE_IMAGES = "() => document.querySelectorAll('img:not(.cm-widgetBuffer)').length"
IMAGES_FROM_NAMES = """() => [...document.querySelectorAll(
    '[data-testid=editor] img:not(.cm-widgetBuffer), [data-testid=participants] img, img[src=x],'
    + ' [data-testid=editor] img[src], [data-testid=editor] [onerror]')].map(e => e.outerHTML)"""


async def test_a_name_made_of_html_is_shown_as_text_everywhere(
    server: ServerProcess, person: NewPerson
) -> None:
    evil = "<img src=x onerror=alert(1)>"
    name = unique("names")
    mallory = await open_editor(await person(evil), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    dialogs: list[str] = []
    for page in (mallory, bob):
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    images_before = await bob.evaluate(PAGE_IMAGES)

    await focus_end(mallory)
    await type_keys(mallory, "Hello")
    await wait_text(bob, "Hello")

    # the caret label and the participants list show the name literally
    await expect(bob.locator(".cm-ySelectionInfo")).to_have_text([evil])
    other = bob.get_by_test_id("participant").and_(bob.locator(":not([data-self])"))
    await expect(other.locator(".participant-name")).to_have_text(evil)
    assert sorted(await participant_names(bob)) == sorted(["Bob", evil])
    mine = mallory.get_by_test_id("participant").and_(mallory.locator("[data-self=true]"))
    await expect(mine.locator(".participant-name")).to_have_text(evil)

    # No element was made from the name. (CodeMirror itself puts empty <img class=
    # "cm-widgetBuffer"> next to widgets such as the caret: those are not images of anyone's.)
    for page in (mallory, bob):
        assert await page.evaluate(IMAGES_FROM_NAMES) == []
        assert await page.locator(".cm-ySelectionInfo *").count() == 0
        assert await page.locator("[data-testid=participants] .participant-name *").count() == 0
    assert await bob.evaluate(PAGE_IMAGES) == images_before
    assert dialogs == []
