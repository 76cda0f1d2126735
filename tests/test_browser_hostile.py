"""The browser editor on what it did not write itself, in Chromium.

- Content other Yjs apps put in the Y.Text ``content``: embeds (``insert_embed``, one item of
  length 1) and formatting attributes. The other app is pycrdt: its edit is made on a copy of a
  real Node y-websocket client's document and sent through that client. The editor must stay
  responsive, show the text (an embed as one placeholder, U+FFFC, drawn as a widget) and keep
  positions right, for the person typing and for everyone else.
- A document deleted on the server (close code 4410): the editor says so, is read-only, does
  not reconnect, and offers its copy as a download, as a new document, or to discard it.

One Chromium is shared by the module; each person is a browser context of their own.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect
from pycrdt import Doc, Text

from server.auth import Role, mint

from .browser import (
    SAVED,
    editor_url,
    evaluate_within,
    flush_indexeddb,
    focus_end,
    new_person,
    open_editor,
    text_of,
    type_keys,
    wait_editor_shows,
    wait_ready,
    wait_text,
)
from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NewPerson = Callable[..., Awaitable[BrowserContext]]

EMBED = "\ufffc"  # what the editor shows for one embed
IMAGE = {"image": "https://example.invalid/cat.png", "alt": "a cat"}
SECRET = "browser-hostile-test-secret-0123456789"
DELETED_CODE = json.loads(
    (Path(__file__).resolve().parent.parent / "shared" / "protocol.json").read_text()
)["closeCodes"]["documentDeleted"]

# What a page logs when a Yjs change did not reach CodeMirror (y-codemirror.next's failure
# modes) or when the editor had to re-read the whole text (ysync.js's safety net).
BROKEN_SYNC = ("Caught error while handling a Yjs update", "plugin crashed", "re-reading the text")


@pytest_asyncio.fixture(loop_scope="module")
async def person(browser: Browser) -> AsyncIterator[NewPerson]:
    """``await person("Ada")``: a new browser context, closed after the test, which fails if a
    page of it threw an uncaught error or logged a broken sync."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def watch(page: Page) -> None:
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if any(sign in message.text for sign in BROKEN_SYNC)
                else None
            ),
        )

    async def make(name: str, color: str | None = None) -> BrowserContext:
        context = await new_person(browser, name, color)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        context.on("page", watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert errors == [], f"errors in the page: {errors}"


# --------------------------------------------------------------------------- helpers


async def other_app_edit(node: NodeHarness, client: str, edit: Callable[[Text], None]) -> None:
    """Another Yjs app edits ``content``: pycrdt makes ``edit`` on a copy of the Node client's
    document, and the client applies (and so sends) the resulting update."""
    state = base64.b64decode(await node.call("state", client=client))
    doc = Doc()
    doc.apply_update(state)
    before = doc.get_state()
    edit(doc.get("content", type=Text))
    update = doc.get_update(before)
    await node.call("apply", client=client, update_b64=base64.b64encode(update).decode())


async def server_delta(server: ServerProcess, room: str) -> list[tuple[Any, Any]]:
    """The server's ``content`` as (insert, attributes) pairs, read by a fresh Yjs client."""
    async with node_harness() as node:
        await node.call("open", client="reader", url=server.ws_url, room=room)
        await node.call("wait_synced", client="reader", timeout=120)
        state = base64.b64decode(await node.call("state", client="reader"))
    doc = Doc()
    doc.apply_update(state)
    return list(doc.get("content", type=Text).diff())


async def wait_app_text(node: NodeHarness, client: str, want: str) -> None:
    """Until the client's text (embeds left out) is ``want`` (the harness's own wait_text
    compares lengths first, and an embed counts in the length)."""

    async def check() -> bool:
        return await node.call("text", client=client) == want

    try:
        await eventually(check, timeout=60)
    except AssertionError:
        have = await node.call("text", client=client)
        raise AssertionError(f"{client} has {have!r}, want {want!r}") from None


def inserts(delta: list[tuple[Any, Any]]) -> list[Any]:
    """The inserts of a delta, adjacent strings joined (formatting set aside)."""
    out: list[Any] = []
    for insert, _attributes in delta:
        if isinstance(insert, str) and out and isinstance(out[-1], str):
            out[-1] += insert
        else:
            out.append(insert)
    return out


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, str]:
    """One HTTP request (a session of its own: the tests' loop is the module's); status, body."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.request(method, url, **kwargs) as response:
            return response.status, await response.text()


async def export_txt(base_url: str, name: str) -> tuple[int, str]:
    return await request("GET", f"{base_url}/api/docs/{name}/export?format=txt")


async def wait_export(base_url: str, name: str, want: str) -> None:
    async def check() -> bool:
        return await export_txt(base_url, name) == (200, want)

    try:
        await eventually(check, timeout=60)
    except AssertionError:
        have = await export_txt(base_url, name)
        raise AssertionError(f"export of {name} is {have!r}, want {want!r}") from None


async def responsive(page: Page) -> str:
    """The editor's own text; fails (instead of hanging) if the page does not answer."""
    return await evaluate_within(page, "() => window.tandem.view.state.doc.toString()", timeout=30)


async def caret_at(page: Page, pos: int) -> None:
    """Put the caret at ``pos`` with the keyboard: Ctrl+Home, then Right ``pos`` times (an
    embed is one step: the widget is atomic)."""
    await page.locator("[data-testid=editor] .cm-content").click()
    await page.keyboard.press("Control+Home")
    for _ in range(pos):
        await page.keyboard.press("ArrowRight")


async def head(page: Page) -> int:
    return await page.evaluate("() => window.tandem.view.state.selection.main.head")


# --------------------------------------------------------------------------- embeds and formats


async def test_an_open_editor_shows_the_text_of_an_embed_and_formatted_text_and_types_around_them(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("hostile-open")
    ada = await open_editor(await person("Ada"), server.url, name)
    await focus_end(ada)
    await type_keys(ada, "hello world")
    await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)

    async with node_harness() as node:
        await node.call("open", client="app", url=server.ws_url, room=name)
        await node.call("wait_synced", client="app")
        await node.call("wait_text", client="app", text="hello world")

        # one transaction with an embed, bold over existing text and italic new text
        def rich(text: Text) -> None:
            text.insert_embed(5, IMAGE)
            text.format(0, 5, {"bold": True})
            text.insert(len(text), " more", {"italic": True})

        await other_app_edit(node, "app", rich)

        # the editor shows the text, the embed as one atomic placeholder, and stays responsive
        want_shown = f"hello{EMBED} world more"
        await wait_editor_shows(ada, want_shown)
        await wait_text(ada, "hello world more")
        assert await responsive(ada) == want_shown
        assert await ada.evaluate("() => window.tandem.embeds()") == [5]
        embed = ada.locator("[data-testid=editor] [data-testid=embed]")
        await expect(embed).to_have_count(1)
        await expect(embed).to_be_visible()

        # formatting alone changes nothing shown
        await other_app_edit(node, "app", lambda text: text.format(6, 11, {"underline": True}))
        await wait_app_text(node, "app", "hello world more")
        assert await responsive(ada) == want_shown

        # typing right before and right after the embed, as a person moves the caret
        # (each letter its own undo step, however fast the keys come)
        stop_capturing = "() => window.tandem.undoManager.stopCapturing()"
        await caret_at(ada, 5)
        await ada.evaluate(stop_capturing)
        await type_keys(ada, "A")
        assert await head(ada) == 6
        await ada.keyboard.press("ArrowRight")  # over the embed, in one step
        assert await head(ada) == 7
        await ada.evaluate(stop_capturing)
        await type_keys(ada, "B")
        await wait_editor_shows(ada, f"helloA{EMBED}B world more")
        await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)

        # everyone else has the letters on either side of the embed: the other app ...
        await wait_app_text(node, "app", "helloAB world more")
        app_state = base64.b64decode(await node.call("state", client="app"))
        app_doc = Doc()
        app_doc.apply_update(app_state)
        assert inserts(list(app_doc.get("content", type=Text).diff())) == [
            "helloA",
            IMAGE,
            "B world more",
        ]
        # ... and the server, whose formatting is still there
        delta = await server_delta(server, name)
        assert inserts(delta) == ["helloA", IMAGE, "B world more"]
        assert any(attributes == {"bold": True} for _insert, attributes in delta), delta
        assert any(attributes and attributes.get("italic") for _insert, attributes in delta)
        await wait_export(server.url, name, "helloAB world more")

        # undo takes back only Ada's letters; the embed stays
        await ada.keyboard.press("Control+z")
        await ada.keyboard.press("Control+z")
        await wait_editor_shows(ada, want_shown)
        await wait_app_text(node, "app", "hello world more")
        assert inserts(await server_delta(server, name)) == ["hello", IMAGE, " world more"]
        await ada.keyboard.press("Control+Shift+Z")
        await wait_editor_shows(ada, f"helloA{EMBED} world more")
        await wait_app_text(node, "app", "helloA world more")


async def test_a_newcomer_sees_the_text_around_embeds_and_everyone_sees_where_they_type(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("hostile-newcomer")
    async with node_harness() as node:
        await node.call("open", client="app", url=server.ws_url, room=name, params={"ack": 1})
        await node.call("wait_synced", client="app")
        await node.call("insert", client="app", pos=0, text="start end")

        def rich(text: Text) -> None:
            text.insert_embed(0, {"kind": "header-image"})
            text.insert_embed(6, IMAGE)  # after "start"
            text.insert(len(text), "\nbold tail", {"bold": True})
            text.format(1, 6, {"italic": True})

        await other_app_edit(node, "app", rich)
        await node.call("wait_acked", client="app")

    shown = f"{EMBED}start{EMBED} end\nbold tail"
    ada = await open_editor(await person("Ada"), server.url, name)
    await wait_editor_shows(ada, shown)
    await wait_text(ada, "start end\nbold tail")
    assert await responsive(ada) == shown
    assert await ada.evaluate("() => window.tandem.embeds()") == [0, 6]
    await expect(ada.locator("[data-testid=editor] [data-testid=embed]")).to_have_count(2)

    # a second newcomer, then each types next to an embed
    bob = await open_editor(await person("Bob"), server.url, name)
    await wait_editor_shows(bob, shown)
    await caret_at(bob, 7)  # just after the second embed
    await type_keys(bob, "B")
    await caret_at(ada, 6)  # just before it
    await type_keys(ada, "A")
    shown = f"{EMBED}startA{EMBED}B end\nbold tail"
    for page in (ada, bob):
        await wait_editor_shows(page, shown)
        await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)

    # Ada sees Bob's caret right after the "B" he typed
    bob_head = await head(bob)
    assert bob_head == 9
    caret = ada.locator("[data-testid=editor] .cm-ySelectionCaret")
    await expect(caret).to_have_count(1)
    await ada.wait_for_function(
        """want => {
            const caret = document.querySelector('[data-testid=editor] .cm-ySelectionCaret')
            return caret !== null && window.tandem.view.posAtDOM(caret) === want
        }""",
        arg=bob_head,
    )

    assert inserts(await server_delta(server, name)) == [
        {"kind": "header-image"},
        "startA",
        IMAGE,
        "B end\nbold tail",
    ]
    await wait_export(server.url, name, "startAB end\nbold tail")
    # a third newcomer after all of it
    carol = await open_editor(await person("Carol"), server.url, name)
    await wait_editor_shows(carol, shown)
    assert await text_of(carol) == "startAB end\nbold tail"


async def test_a_text_with_carriage_returns_keeps_positions_right(
    server: ServerProcess, person: NewPerson
) -> None:
    """ "\\r\\n" from another app is two characters in the Y.Text: the editor must not make it
    one line break (every position after it would be off by one)."""
    name = unique("hostile-crlf")
    async with node_harness() as node:
        await node.call("open", client="app", url=server.ws_url, room=name, params={"ack": 1})
        await node.call("wait_synced", client="app")
        await node.call("insert", client="app", pos=0, text="one\r\ntwo\r\nthree")
        await node.call("wait_acked", client="app")
    ada = await open_editor(await person("Ada"), server.url, name)
    await wait_editor_shows(ada, "one\r\ntwo\r\nthree")
    await focus_end(ada)
    await type_keys(ada, "!")
    await wait_export(server.url, name, "one\r\ntwo\r\nthree!")


# --------------------------------------------------------------------------- deleted (4410)


def deleted_panel(page: Page) -> Any:
    return page.get_by_test_id("document-deleted")


async def expect_deleted(page: Page) -> None:
    """The page says the document was deleted, is read-only and offers the three ways out."""
    panel = deleted_panel(page)
    await expect(panel).to_be_visible()
    message = page.get_by_test_id("deleted-message")
    await expect(message).to_have_attribute("role", "alert")
    await expect(message).to_contain_text("deleted on the server")
    await expect(message).to_contain_text("on this device only")
    for testid in ("deleted-download", "deleted-save-as", "deleted-discard"):
        await expect(page.get_by_test_id(testid)).to_be_visible()
    # not the 4404 banner ("does not accept this document name")
    await expect(page.get_by_test_id("connection-detail")).to_be_hidden()
    await expect(page.get_by_text("does not accept this document name")).to_have_count(0)
    await expect(page.get_by_test_id("read-only-badge")).to_be_visible()
    content = page.locator("[data-testid=editor] .cm-content")
    await expect(content).to_have_attribute("contenteditable", "false")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Offline")
    assert await page.evaluate("() => window.tandem.view.state.readOnly") is True
    state = await page.evaluate("() => window.tandem.status()")
    assert state["deleted"] is True and state["save"] == "deleted", state
    assert state["refused"] == DELETED_CODE, state
    assert await page.evaluate("() => window.tandem.provider.shouldConnect") is False


async def doc_names(base_url: str) -> list[str]:
    status, text = await request("GET", f"{base_url}/api/docs")
    assert status == 200, text
    body = json.loads(text)
    items = body["documents"] if isinstance(body, dict) else body
    return [item["name"] for item in items]


async def test_a_deleted_document_is_read_only_offers_its_copy_and_can_be_saved_or_discarded(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("doomed")
    words = "Words only this tab still has."
    ada_context = await person("Ada")
    ada = await open_editor(ada_context, server.url, name)
    sockets: list[str] = []
    ada.on("websocket", lambda socket: sockets.append(socket.url))
    await focus_end(ada)
    await type_keys(ada, words)
    await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)

    status, body = await request("DELETE", f"{server.url}/api/docs/{name}")
    assert status == 200, body
    await expect_deleted(ada)
    assert await ada.evaluate("() => window.tandem.provider.ws") is None
    assert await ada.evaluate("() => window.tandem.provider.wsconnected") is False

    # read-only: typing changes nothing
    assert await text_of(ada) == words
    await ada.locator("[data-testid=editor] .cm-content").click()
    await ada.keyboard.press("Control+End")
    await ada.keyboard.type("more")
    await ada.keyboard.press("Backspace")
    await ada.keyboard.press("Control+z")
    assert await text_of(ada) == words

    # it does not reconnect, not even when the browser comes back online
    opened = len(sockets)
    await ada_context.set_offline(True)
    await ada_context.set_offline(False)
    await asyncio.sleep(6)  # longer than y-websocket's longest backoff (2.5 s), twice over
    assert len(sockets) == opened, sockets
    assert await ada.evaluate("() => window.tandem.provider.wsconnected") is False

    # the download is the local text
    async with ada.expect_download() as info:
        await ada.get_by_test_id("deleted-download").click()
    download = await info.value
    assert download.suggested_filename == f"{name}.md"
    assert Path(await download.path()).read_text(encoding="utf-8") == words

    # a reload brings the IndexedDB copy back, and the server refuses it again: 4410, not stored
    await flush_indexeddb(ada)
    await ada.reload()
    await wait_ready(ada)
    await expect_deleted(ada)
    await wait_text(ada, words)
    assert await ada.evaluate("() => window.tandem.provider.ws") is None
    assert name not in await doc_names(server.url)
    status, _body = await export_txt(server.url, name)
    assert status == 404

    # Save as a new document: the name is checked first
    await ada.get_by_test_id("deleted-save-as").click()
    form = ada.get_by_test_id("deleted-save-form")
    await expect(form).to_be_visible()
    field = ada.get_by_test_id("deleted-new-name")
    await field.fill("no spaces allowed")
    await ada.get_by_test_id("deleted-save-confirm").click()
    error = ada.get_by_test_id("deleted-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("no spaces")
    await field.fill(name)
    await field.press("Enter")
    await expect(error).to_contain_text("Choose another name")

    # a name that already has text: 409, said clearly, the copy stays
    taken = unique("taken")
    status, body = await request(
        "POST", f"{server.url}/api/docs/{taken}/import", data="already here"
    )
    assert status == 201, body
    await field.fill(taken)
    await ada.get_by_test_id("deleted-save-confirm").click()
    await expect(error).to_contain_text("already has text")
    await expect(ada.get_by_test_id("deleted-download")).to_be_visible()

    new_name = unique("rescued")
    await field.fill(new_name)
    await ada.get_by_test_id("deleted-save-confirm").click()
    await ada.wait_for_url(editor_url(server.url, new_name))
    await wait_ready(ada)
    await expect(ada.get_by_test_id("connection-status")).to_have_text("Connected")
    await wait_text(ada, words)
    await expect(deleted_panel(ada)).to_be_hidden()
    await wait_export(server.url, new_name, words)
    assert new_name in await doc_names(server.url)

    # back to the old name: still the deleted copy; discard it (after a confirmation)
    old = await ada_context.new_page()
    await old.goto(editor_url(server.url, name))
    await wait_ready(old)
    await expect_deleted(old)
    await wait_text(old, words)
    await old.get_by_test_id("deleted-discard").click()
    confirmation = old.get_by_test_id("deleted-discard-confirmation")
    await expect(confirmation).to_be_visible()
    await old.get_by_test_id("deleted-discard-cancel").click()
    await expect(confirmation).to_be_hidden()
    await old.get_by_test_id("deleted-discard").click()
    async with old.expect_navigation():
        await old.get_by_test_id("deleted-discard-confirm").click()
    await wait_ready(old)
    # the page now opens whatever the server has under the name: a new, empty document
    await expect(old.get_by_test_id("connection-status")).to_have_text("Connected")
    await old.wait_for_function("() => window.tandem.provider.synced")
    await expect(deleted_panel(old)).to_be_hidden()
    assert await text_of(old) == ""
    unsaved = await old.evaluate("key => localStorage.getItem(key)", f"tandem:unsaved:{name}")
    assert unsaved in (None, "0"), unsaved

    # and so does a fresh tab; what it types is the new document's
    fresh = await open_editor(ada_context, server.url, name)
    assert await text_of(fresh) == ""
    await focus_end(fresh)
    await type_keys(fresh, "A new start.")
    await expect(fresh.get_by_test_id("save-status")).to_have_text(SAVED)
    await wait_text(old, "A new start.")
    await wait_export(server.url, name, "A new start.")


async def test_saving_a_deleted_copy_without_the_admin_role_says_so_and_keeps_the_copy(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET, "--keepalive", "2").start()
    prefix = unique("team") + "/"
    name = prefix + "notes"
    write_token = mint(SECRET, prefix, Role.write, 3600)
    admin_token = mint(SECRET, "*", Role.admin, 3600)
    page = await open_editor(await person("Writer"), srv.url, name, token=write_token)
    await focus_end(page)
    await type_keys(page, "kept")
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)

    headers = {"Authorization": f"Bearer {admin_token}"}
    status, body = await request("DELETE", f"{srv.url}/api/docs/{name}", headers=headers)
    assert status == 200, body
    await expect_deleted(page)

    await page.get_by_test_id("deleted-save-as").click()
    await page.get_by_test_id("deleted-new-name").fill(prefix + "rescued")
    await page.get_by_test_id("deleted-save-confirm").click()
    error = page.get_by_test_id("deleted-error")
    await expect(error).to_contain_text("Only an admin")
    await expect(error).to_contain_text("download")
    await expect(page.get_by_test_id("deleted-download")).to_be_enabled()
    assert await text_of(page) == "kept"
