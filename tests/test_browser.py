"""The browser editor in real Chromium: several people and tabs, offline, late joiners, undo.

One Chromium is shared by the module; each person is a browser context of their own (own
localStorage, IndexedDB and service worker), each tab a page. The server's copy of a document
is read with a real Node y-websocket client. ``TANDEM_SCREENSHOT=1`` regenerates
``docs/screenshot.png``.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from testkit.traces import SVELTE, load_trace

from .browser import (
    KEPT_ON_DEVICE,
    SAVED,
    editor_url,
    flush_indexeddb,
    focus_end,
    focus_start,
    new_person,
    open_editor,
    participant_names,
    service_worker_ready,
    status,
    text_of,
    type_keys,
    wait_editor_shows,
    wait_ready,
    wait_text,
)
from .conftest import ServerProcess, unique
from .nodeclient import node_harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO_ROOT / "docs" / "screenshot.png"

NewPerson = Callable[..., Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="module")
async def person(browser: Browser) -> AsyncIterator[NewPerson]:
    """``await person("Ada")``: a new browser context, closed after the test."""
    contexts: list[BrowserContext] = []

    async def make(name: str, color: str | None = None) -> BrowserContext:
        context = await new_person(browser, name, color)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def server_text(server: ServerProcess, room: str, want: str) -> None:
    """A fresh Node y-websocket client reads exactly ``want`` from the server."""
    async with node_harness() as node:
        await node.call("open", client="reader", url=server.ws_url, room=room)
        await node.call("wait_synced", client="reader", timeout=120)
        await node.call("wait_text", client="reader", text=want, timeout=60)


def save_status(page: Page) -> Locator:
    return page.get_by_test_id("save-status")


def connection_status(page: Page) -> Locator:
    return page.get_by_test_id("connection-status")


# --------------------------------------------------------------------------- two people


async def test_two_people_typing_at_once_end_with_the_same_text_everywhere(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("together")
    ada = await open_editor(await person("Ada"), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    # one empty line each: Ada writes on the first, Bob on the second
    await focus_end(ada)
    await type_keys(ada, "\n")
    await wait_text(bob, "\n")
    await focus_start(ada)
    await focus_end(bob)

    ada_words = "Ada writes the first line while Bob types."
    bob_words = "Bob writes the second line at the same time."
    await asyncio.gather(type_keys(ada, ada_words), type_keys(bob, bob_words))

    want = f"{ada_words}\n{bob_words}"
    for page in (ada, bob):
        await wait_text(page, want)
        await wait_editor_shows(page, want)
        await expect(save_status(page)).to_have_text(SAVED)
    await server_text(server, name, want)


async def test_each_sees_the_others_named_cursor_and_the_list_follows_who_is_here(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("presence")
    ada = await open_editor(await person("Anonymous A"), server.url, name)
    bob = await open_editor(await person("Anonymous B"), server.url, name)
    # rename through the page, as a person would
    await ada.get_by_test_id("name-input").fill("Ada Lovelace")
    await bob.get_by_test_id("name-input").fill("Grace Hopper")
    await focus_end(ada)
    await type_keys(ada, "Hello from Ada. ")
    await wait_text(bob, "Hello from Ada. ")
    await focus_end(bob)
    await type_keys(bob, "And from Grace.")
    await wait_text(ada, "Hello from Ada. And from Grace.")

    # the other's caret carries their name; one's own caret has no label
    await expect(ada.locator(".cm-ySelectionInfo")).to_have_text(["Grace Hopper"])
    await expect(bob.locator(".cm-ySelectionInfo")).to_have_text(["Ada Lovelace"])

    for page, me, other in (
        (ada, "Ada Lovelace", "Grace Hopper"),
        (bob, "Grace Hopper", "Ada Lovelace"),
    ):
        people = page.get_by_test_id("participant")
        await expect(people).to_have_count(2)
        await expect(people.and_(page.locator("[data-self=true]"))).to_contain_text(me)
        await expect(people.and_(page.locator(":not([data-self])"))).to_contain_text(other)
    assert sorted(await participant_names(ada)) == ["Ada Lovelace", "Grace Hopper"]

    await bob.close()
    await expect(ada.get_by_test_id("participant")).to_have_count(1)
    assert await participant_names(ada) == ["Ada Lovelace"]
    await expect(ada.locator(".cm-ySelectionInfo")).to_have_count(0)


async def test_two_tabs_of_one_person_stay_in_sync(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("tabs")
    me = await person("Tabby")
    first = await open_editor(me, server.url, name)
    second = await open_editor(me, server.url, name)
    await focus_end(first)
    await type_keys(first, "typed in the first tab")
    await wait_text(second, "typed in the first tab")
    await focus_end(second)
    await type_keys(second, ", then in the second")
    want = "typed in the first tab, then in the second"
    await wait_text(first, want)
    await wait_editor_shows(first, want)
    # each tab lists the other as "you, other tab"
    for page in (first, second):
        await expect(page.get_by_test_id("participant")).to_have_count(2)
        await expect(page.locator(".participant-tag")).to_have_text(["you", "you, other tab"])
        await expect(save_status(page)).to_have_text(SAVED)
    await server_text(server, name, want)


# --------------------------------------------------------------------------- offline


async def test_an_offline_tab_keeps_typing_survives_a_reload_and_merges_when_the_server_is_back(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--keepalive", "2").start()
    name = unique("offline")
    writer = await open_editor(await person("Writer"), srv.url, name)
    reader = await open_editor(await person("Reader"), srv.url, name)
    # the page shell is kept for offline use once the service worker is active
    assert (await service_worker_ready(writer)).endswith("/sw.js")

    before = "Before the outage. "
    await focus_end(writer)
    await type_keys(writer, before)
    await wait_text(reader, before)
    await expect(save_status(writer)).to_have_text(SAVED)

    assert await asyncio.to_thread(srv.stop) == 0
    # the network is up: the server is what cannot be reached
    for page in (writer, reader):
        await expect(connection_status(page)).to_have_text("Can't reach the server")
    offline = "Typed with no server, "
    await type_keys(writer, offline)
    await expect(save_status(writer)).to_have_text(KEPT_ON_DEVICE)
    pending = int(await save_status(writer).get_attribute("data-pending") or 0)
    assert pending >= 1
    assert (await status(writer))["save"] == "local"

    # Reload with the server still down: the service worker serves the page, IndexedDB the text.
    await flush_indexeddb(writer)
    await writer.reload()
    await wait_ready(writer)
    await wait_text(writer, before + offline)
    await wait_editor_shows(writer, before + offline)
    await expect(connection_status(writer)).to_have_text("Can't reach the server")
    await expect(save_status(writer)).to_have_text(KEPT_ON_DEVICE)
    assert int(await save_status(writer).get_attribute("data-pending") or 0) == pending
    after = "and after the reload."
    await focus_end(writer)
    await type_keys(writer, after)
    assert await text_of(reader) == before  # nothing can reach the other person yet

    await asyncio.to_thread(srv.start)  # same port, same database
    want = before + offline + after
    for page in (writer, reader):
        await expect(connection_status(page)).to_have_text("Connected")
        await wait_text(page, want)
        await wait_editor_shows(page, want)
    await expect(save_status(writer)).to_have_text(SAVED)
    await server_text(srv, name, want)


# --------------------------------------------------------------------------- late joiner


async def test_a_late_joiner_gets_a_long_document_whole(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("svelte")
    want = load_trace()["endContent"]
    async with node_harness() as node:
        await node.call("open", client="typist", url=server.ws_url, room=name)
        await node.call("wait_synced", client="typist", timeout=120)
        await node.call("replay", clients=["typist"], trace=str(SVELTE), block=50)
        # Until the server holds all of it: typing 18,000 edits this fast can pass the server's
        # message rate limit, which closes the socket (1008); y-websocket then reconnects and
        # sends the rest. A second client reads what the server has.
        await node.call("open", client="check", url=server.ws_url, room=name)
        await node.call("wait_synced", client="check", timeout=120)
        await node.call("wait_text", client="check", text=want, timeout=120)
    page = await open_editor(await person("Late"), server.url, name)
    await wait_text(page, want)
    await wait_editor_shows(page, want)
    assert await page.evaluate("() => window.tandem.view.state.doc.lines") == want.count("\n") + 1
    await expect(save_status(page)).to_have_text(SAVED)


# --------------------------------------------------------------------------- undo


async def test_undo_removes_only_ones_own_text(server: ServerProcess, person: NewPerson) -> None:
    name = unique("undo")
    ada = await open_editor(await person("Ada"), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    await focus_end(bob)
    await type_keys(bob, "\n")  # Bob's, so Ada's undo leaves it
    await wait_text(ada, "\n")
    await focus_start(ada)
    await type_keys(ada, "Ada's line")
    await focus_end(bob)
    await type_keys(bob, "Bob's line")
    await wait_text(ada, "Ada's line\nBob's line")
    await wait_text(bob, "Ada's line\nBob's line")

    # Ctrl+Z until Ada's own history is empty (typing may span several undo steps)
    await focus_end(ada)
    for _ in range(40):
        if await ada.evaluate("() => window.tandem.undoManager.undoStack.length") == 0:
            break
        await ada.keyboard.press("Control+z")
    else:
        raise AssertionError("Ada's undo stack never emptied")
    for page in (ada, bob):
        await wait_text(page, "\nBob's line")
    # one more undo does nothing: Bob's text is not Ada's to undo
    await ada.keyboard.press("Control+z")
    assert await text_of(ada) == "\nBob's line"
    # and redo brings Ada's line back for both
    for _ in range(40):
        if await ada.evaluate("() => window.tandem.undoManager.redoStack.length") == 0:
            break
        await ada.keyboard.press("Control+Shift+Z")
    for page in (ada, bob):
        await wait_text(page, "Ada's line\nBob's line")
    await server_text(server, name, "Ada's line\nBob's line")


# --------------------------------------------------------------------------- home page


async def test_the_home_page_lists_a_document_once_it_has_content_and_links_to_it(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("listed/notes")
    page = await (await person("Home")).new_page()
    await page.goto(server.url + "/")
    await expect(page.get_by_test_id("doc-list-message")).not_to_have_text("Loading…")
    await expect(page.locator(f'[data-testid=doc-item][data-name="{name}"]')).to_have_count(0)

    async with node_harness() as node:
        await node.call("open", client="w", url=server.ws_url, room=name, params={"ack": "1"})
        await node.call("wait_synced", client="w", timeout=120)
        await node.call("insert", client="w", pos=0, text="# Listed\n")
        await node.call("wait_acked", client="w", timeout=60)
        await node.call("close", client="w")

    await page.get_by_test_id("refresh").click()
    item = page.locator(f'[data-testid=doc-item][data-name="{name}"]')
    await expect(item).to_have_count(1)
    await expect(item.get_by_test_id("doc-link")).to_have_text(name)
    await item.get_by_test_id("doc-link").click()
    await page.wait_for_url(editor_url(server.url, name))
    await wait_ready(page)
    await wait_text(page, "# Listed\n")
    await expect(page).to_have_title(f"{name} — Tandem")


async def test_the_open_form_refuses_a_bad_name_and_opens_a_good_one(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await (await person("Form")).new_page()
    await page.goto(server.url + "/")
    error = page.get_by_test_id("doc-name-error")
    await expect(error).to_be_hidden()
    await page.get_by_test_id("doc-name-input").fill('<img src=x onerror="alert(1)">')
    await page.get_by_test_id("open-button").click()
    await expect(error).to_be_visible()
    await expect(error).to_have_text(
        "Use only letters A–Z and a–z, digits, and . _ ~ - / (no spaces)."
    )
    assert page.url == server.url + "/"
    assert await page.locator("img[src=x]").count() == 0

    await page.get_by_test_id("doc-name-input").fill("../secret")
    await page.get_by_test_id("open-button").click()
    await expect(error).to_have_text('A document name cannot contain "..".')
    assert page.url == server.url + "/"

    name = unique("formed")
    await page.get_by_test_id("doc-name-input").fill(name)
    await expect(error).to_be_hidden()
    await page.get_by_test_id("open-button").click()
    await page.wait_for_url(editor_url(server.url, name))
    await wait_ready(page)
    await expect(connection_status(page)).to_have_text("Connected")


# --------------------------------------------------------------------------- screenshot

NOTES = """# Launch plan

We ship **Tandem** on Friday. Notes from the call:

- Offline editing: *done*, merges on reconnect
- Remote cursors with names
- Export to Markdown, HTML and JSON

## Open questions

> Every keystroke is committed to SQLite before the "saved" tick.

1. Who writes the release notes?
2. Do we demo the `tandem backup` command?

## Timeline

- [x] Server: group commit, compaction, versions
- [x] Web client: CodeMirror 6 + Yjs, works offline
- [ ] Screenshots for the README
"""


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def put_caret(page: Page, after: str, then_type: str = "", select: int = 0) -> None:
    """Click into the text, put the caret after the first ``after`` (selecting ``select``
    characters from there) and type ``then_type``."""
    await page.locator("[data-testid=editor] .cm-content").click()
    await page.evaluate(
        """([after, select]) => {
            const view = window.tandem.view
            const pos = view.state.doc.toString().indexOf(after) + after.length
            view.dispatch({ selection: { anchor: pos, head: pos + select } })
        }""",
        [after, select],
    )
    if then_type:
        await type_keys(page, then_type)


async def test_screenshot_of_two_people_editing_with_a_third(
    server: ServerProcess, person: NewPerson, tmp_path: Path
) -> None:
    name = "team/launch-plan"  # the module's server starts on an empty database
    me = await open_editor(await person("Ada", "#1d4ed8"), server.url, name)
    grace = await open_editor(await person("Grace", "#be185d"), server.url, name)
    linus = await open_editor(await person("Linus", "#15803d"), server.url, name)
    await me.evaluate(
        "text => window.tandem.view.dispatch({ changes: { from: 0, insert: text } })", NOTES
    )
    for page in (grace, linus):
        await wait_text(page, NOTES)
    await put_caret(grace, "- Export to Markdown, HTML", " and PDF")
    await put_caret(linus, "We ship **Tandem** on ", select=len("Friday"))
    await put_caret(me, "Who writes the release notes?", " Ada")
    want = NOTES.replace("HTML", "HTML and PDF", 1).replace("notes?", "notes? Ada", 1)
    await wait_text(me, want)
    labels = me.locator(".cm-ySelectionInfo")
    await expect(labels).to_have_count(2)
    assert sorted(await labels.all_inner_texts()) == ["Grace", "Linus"]
    await expect(save_status(me)).to_have_text(SAVED)
    await expect(me.get_by_test_id("participant")).to_have_count(3)

    regenerate = os.environ.get("TANDEM_SCREENSHOT") == "1"
    target = SCREENSHOT if regenerate else tmp_path / "screenshot.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    data = await me.screenshot(path=str(target))
    assert png_size(data) == (1200, 800)
    assert len(data) > 20_000  # a blank page compresses to a few kB
    assert target.read_bytes() == data
