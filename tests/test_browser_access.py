"""Refused links and the save status per document, in real Chromium.

A token the server refuses (4401: expired, not valid; 4403: for other documents) turns the editor
read-only with a message in words, stops reconnecting, keeps what was typed (and says it is not
saved), and takes a new link that reloads the page with it. The tabs of one document in one
browser share one count of unsaved edits.

One Chromium is shared by the module; each person is a browser context (own IndexedDB), each
tab a page of it. The server's copy is read through its HTTP export.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest
from playwright.async_api import Browser, Page, expect

from server.auth import Role, mint

from .browser import (
    KEPT_ON_DEVICE,
    SAVED,
    NewPerson,
    editor_url,
    flush_indexeddb,
    focus_end,
    new_person,
    open_editor,
    status,
    text_of,
    type_keys,
    wait_ready,
    wait_text,
)
from .conftest import ServerProcess, eventually, unique
from .test_browser_a11y import SCHEMES, assert_no_violations

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-access-test-secret-0123456789abc"
# A link that expires soon: long enough for a busy machine to open the page and type with it.
SHORT_TTL = 20


def auth_server(factory: type[ServerProcess]) -> ServerProcess:
    return factory(None, "--auth-secret", SECRET, "--keepalive", "2").start()


async def export_text(base_url: str, name: str) -> str:
    """The server's text of ``name`` (HTTP export, txt), read with an admin token."""
    headers = {"Authorization": f"Bearer {mint(SECRET, '*', Role.admin, 3600)}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        url = f"{base_url}/api/docs/{name}/export?format=txt"
        async with session.get(url, headers=headers) as response:
            if response.status == 404:
                return ""
            assert response.status == 200, await response.text()
            return await response.text()


async def wait_export(base_url: str, name: str, want: str) -> None:
    async def check() -> bool:
        return await export_text(base_url, name) == want

    await eventually(check, timeout=90)


async def wait_until_expired(token: str) -> None:
    """Until the token's ``exp`` has passed (by the clock the server reads too)."""
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, exp - time.time()) + 1.5)


async def expect_refused(page: Page, banner: str, heading: str) -> None:
    """Read-only with the refusal said in the banner, the link field offered, no reconnecting."""
    await expect(page.get_by_test_id("connection-detail")).to_contain_text(banner)
    await expect(page.get_by_test_id("connection-detail")).to_have_attribute("role", "alert")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Access refused")
    panel = page.get_by_test_id("access-refused")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("refused-heading")).to_have_text(heading)
    await expect(page.get_by_test_id("refused-note")).to_contain_text("kept on this device")
    await expect(page.get_by_label("New link or token")).to_be_visible()
    await expect(page.get_by_test_id("read-only-badge")).to_be_visible()
    content = page.locator("[data-testid=editor] .cm-content")
    await expect(content).to_have_attribute("contenteditable", "false")
    await expect(page.get_by_test_id("format-toolbar")).to_be_hidden()
    assert await page.evaluate("() => window.tandem.view.state.readOnly") is True
    assert await page.evaluate("() => window.tandem.provider.shouldConnect") is False


async def type_refused(page: Page) -> None:
    """Typing, deleting and undo in a refused page: nothing may change."""
    await page.locator("[data-testid=editor] .cm-content").click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type("lost?")
    await page.keyboard.press("Backspace")
    await page.keyboard.press("Control+z")


async def paste_link(page: Page, link: str) -> None:
    field = page.get_by_label("New link or token")
    await field.fill(link)
    await page.get_by_test_id("refused-use").click()


# --------------------------------------------------------------------------- expired (4401)


async def test_an_expired_link_keeps_the_unsent_text_and_a_new_link_sends_it(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = auth_server(server_factory)
    name = unique("expiring")
    short = mint(SECRET, name, Role.write, SHORT_TTL)
    context = await person("Ada")
    page = await open_editor(context, srv.url, name, token=short)
    saved = "Saved in time. "
    await focus_end(page)
    await type_keys(page, saved)
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)

    # written while the server is down: kept on this device only
    assert await asyncio.to_thread(srv.stop) == 0
    await expect(page.get_by_test_id("connection-status")).to_have_text("Can't reach the server")
    kept = "Typed with no server."
    await type_keys(page, kept)
    await expect(page.get_by_test_id("save-status")).to_have_text(KEPT_ON_DEVICE)
    await flush_indexeddb(page)

    # the server is back once the link has expired: it refuses the reconnection (4401)
    await wait_until_expired(short)
    await asyncio.to_thread(srv.start)
    await expect_refused(page, "Your link has expired", "Link expired")
    save = page.get_by_test_id("save-status")
    await expect(save).to_have_text("1 unsaved change — not saved: access refused")
    await expect(save).to_have_attribute("data-state", "refused")
    assert (await status(page))["accessRefusal"] == "expired"
    await type_refused(page)
    assert await text_of(page) == saved + kept
    await expect(page.locator("[data-testid=editor] .cm-content")).to_contain_text(kept)
    assert await export_text(srv.url, name) == saved  # nothing of the refused page got through

    # a page opened with the link once it has expired: the same, not an endless "Connecting…"
    late = await context.new_page()
    await late.goto(editor_url(srv.url, name, short))
    await wait_ready(late)
    await expect_refused(late, "Your link has expired", "Link expired")
    await wait_text(late, saved + kept)  # the copy on this device
    await expect(late.get_by_test_id("save-status")).to_have_text(
        "1 unsaved change — not saved: access refused"
    )

    # a link for another document is refused in words; the page stays as it is
    elsewhere = mint(SECRET, "elsewhere", Role.write, 3600)
    await paste_link(page, editor_url(srv.url, "elsewhere", elsewhere))
    problem = page.get_by_test_id("refused-error")
    await expect(problem).to_be_visible()
    await expect(problem).to_contain_text('for another document ("elsewhere")')
    await expect(page.get_by_label("New link or token")).to_have_attribute("aria-invalid", "true")
    # so is the token alone, and the link that just expired
    await paste_link(page, elsewhere)
    await expect(problem).to_contain_text('for another document ("elsewhere")')
    await paste_link(page, editor_url(srv.url, name, short))
    await expect(problem).to_contain_text("expired")
    await paste_link(page, "not a link at all")
    await expect(problem).to_contain_text("neither a link nor a token")
    assert await page.evaluate("() => window.location.search") == f"?token={short}"

    # a fresh link: the page reloads with it, connects, and sends what was kept
    fresh = mint(SECRET, name, Role.write, 3600)
    async with page.expect_navigation():
        await paste_link(page, editor_url(srv.url, name, fresh))
    await wait_ready(page)
    assert await page.evaluate("() => window.location.search") == f"?token={fresh}"
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await expect(page.get_by_test_id("access-refused")).to_be_hidden()
    await expect(page.get_by_test_id("read-only-badge")).to_be_hidden()
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)
    await wait_export(srv.url, name, saved + kept)
    # and it edits again
    more = " Then more."
    await focus_end(page)
    await type_keys(page, more)
    await wait_export(srv.url, name, saved + kept + more)
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)
    # the still refused tab hears that nothing of the document is unsaved any more
    await expect(late.get_by_test_id("save-status")).to_have_text("No unsaved changes")


async def test_a_link_expiring_while_connected_turns_the_editor_read_only(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = auth_server(server_factory)
    name = unique("expires-live")
    short = mint(SECRET, name, Role.write, SHORT_TTL)
    page = await open_editor(await person("Bo"), srv.url, name, token=short)
    words = "Typed before the end."
    await focus_end(page)
    await type_keys(page, words)
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)

    # at its `exp` the server closes the socket with 4401
    await wait_until_expired(short)
    await expect_refused(page, "Your link has expired", "Link expired")
    await expect(page.get_by_test_id("save-status")).to_have_text("No unsaved changes")
    await type_refused(page)
    assert await text_of(page) == words
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    # the browser's "online" event does not reconnect it either
    await page.context.set_offline(True)
    await page.context.set_offline(False)
    await expect(page.get_by_test_id("connection-status")).to_have_text("Access refused")
    assert sockets == []

    # the token alone is enough
    fresh = mint(SECRET, name, Role.write, 3600)
    async with page.expect_navigation():
        await paste_link(page, f"  {fresh}  ")
    await wait_ready(page)
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await page.wait_for_function("() => window.tandem.provider.synced")
    await focus_end(page)
    await type_keys(page, " And after.")
    await wait_export(srv.url, name, words + " And after.")


# --------------------------------------------------------------------------- no access (4403)


async def test_a_link_for_other_documents_or_not_valid_says_so(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = auth_server(server_factory)
    name = unique("guarded")
    context = await person("Cy")
    other = mint(SECRET, "elsewhere", Role.admin, 3600)
    page = await context.new_page()
    await page.goto(editor_url(srv.url, name, other))
    await wait_ready(page)
    await expect_refused(
        page, "This link does not give access to this document", "No access to this document"
    )
    await expect(page.get_by_test_id("connection-detail")).to_contain_text("not allowed")
    assert (await status(page))["accessRefusal"] == "forbidden"
    await type_refused(page)
    assert await text_of(page) == ""
    await paste_link(page, other)
    await expect(page.get_by_test_id("refused-error")).to_contain_text(
        'for another document ("elsewhere")'
    )

    # a token signed with another secret: not valid here
    forged = jwt.encode(
        {"doc": name, "role": "admin", "exp": int(time.time()) + 3600},
        "another-secret-of-32-bytes-or-more-000",
        algorithm="HS256",
    )
    stranger = await context.new_page()
    await stranger.goto(editor_url(srv.url, name, forged))
    await wait_ready(stranger)
    await expect_refused(stranger, "This link is not valid on this server", "Link not valid")

    # a link that covers the document (here: all documents) opens it
    good = mint(SECRET, "*", Role.write, 3600)
    async with page.expect_navigation():
        await paste_link(page, editor_url(srv.url, name, good))
    await wait_ready(page)
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await expect(page.get_by_test_id("read-only-badge")).to_be_hidden()


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_refused_page_has_no_accessibility_violations(
    server_factory: type[ServerProcess], browser: Browser, scheme: str
) -> None:
    srv = auth_server(server_factory)
    name = unique("a11y-refused")
    context = await new_person(browser, "Fay", color_scheme=scheme, bypass_csp=True)
    try:
        page = await context.new_page()
        await page.goto(editor_url(srv.url, name, mint(SECRET, "elsewhere", Role.write, 3600)))
        await wait_ready(page)
        await expect_refused(
            page, "This link does not give access to this document", "No access to this document"
        )
        await expect(page.locator("html")).to_have_attribute("data-theme", scheme)
        await assert_no_violations(page, f"refused editor, {scheme}")
        await paste_link(page, "not a link at all")
        await expect(page.get_by_test_id("refused-error")).to_be_visible()
        await assert_no_violations(page, f"refused editor with an error, {scheme}")
    finally:
        await context.close()


# --------------------------------------------------------------------------- save status


async def pending_of(page: Page) -> str | None:
    return await page.get_by_test_id("save-status").get_attribute("data-pending")


async def test_the_tabs_of_a_document_show_one_count_of_unsaved_edits(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--keepalive", "2").start()
    name = unique("tabs")
    context = await person("Di")
    tabs = [await open_editor(context, srv.url, name) for _ in range(3)]
    first, second, third = tabs
    await focus_end(first)
    await type_keys(first, "Online. ")
    for tab in tabs:
        await wait_text(tab, "Online. ")
        await expect(tab.get_by_test_id("save-status")).to_have_text(SAVED)

    assert await asyncio.to_thread(srv.stop) == 0
    for tab in tabs:
        await expect(tab.get_by_test_id("connection-status")).to_have_text("Can't reach the server")
    # one burst of typing in one tab: all three say one unsaved edit
    await type_keys(first, "Offline in the first tab.")
    for tab in tabs:
        await expect(tab.get_by_test_id("save-status")).to_have_text(KEPT_ON_DEVICE)
        await expect(tab.get_by_test_id("save-status")).to_have_attribute("data-pending", "1")
    # another tab's burst is the second one, for all of them
    await focus_end(second)
    await type_keys(second, " And in the second.")
    for tab in tabs:
        await expect(tab.get_by_test_id("save-status")).to_have_attribute("data-pending", "2")
        await expect(tab.get_by_test_id("save-status")).to_have_attribute(
            "title", "2 edits not on the server yet; they are sent when the connection is back"
        )
    # the second tab is closed with its edit unsaved: the others still count it
    await flush_indexeddb(second)
    await second.close()
    for tab in (first, third):
        await expect(tab.get_by_test_id("save-status")).to_have_attribute("data-pending", "2")

    want = "Online. Offline in the first tab. And in the second."
    await asyncio.to_thread(srv.start)  # same port, same database
    for tab in (first, third):
        await expect(tab.get_by_test_id("connection-status")).to_have_text("Connected")
        await expect(tab.get_by_test_id("save-status")).to_have_text(SAVED)
        await expect(tab.get_by_test_id("save-status")).to_have_attribute("data-pending", "0")
    await wait_export_open(srv.url, name, want)
    # a new tab starts from the same count: nothing unsaved
    fourth = await open_editor(context, srv.url, name)
    await expect(fourth.get_by_test_id("save-status")).to_have_text(SAVED)
    assert await pending_of(fourth) == "0"


async def test_edits_acked_to_no_tab_are_sent_by_another_and_the_count_clears(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    """A tab whose edits reach the server but whose acks never come back (as if it was closed
    at once): another tab has those edits (BroadcastChannel), sends them itself, and every tab
    goes to "saved" once that is acked."""
    srv = server_factory(None, "--keepalive", "2").start()
    name = unique("unacked")
    context = await person("Ed")
    sender = await open_editor(context, srv.url, name)
    other = await open_editor(context, srv.url, name)
    # the sender's page hears no more acks
    await sender.evaluate("() => { window.tandem.provider.messageHandlers[101] = () => {} }")
    await focus_end(sender)
    await type_keys(sender, "Never acked to the sender.")
    await wait_text(other, "Never acked to the sender.")
    await wait_export_open(srv.url, name, "Never acked to the sender.")
    await expect(other.get_by_test_id("save-status")).to_have_text(SAVED)
    await expect(other.get_by_test_id("save-status")).to_have_attribute("data-pending", "0")
    # the sender's own socket still waits for its acks, but the document has nothing unsaved
    await expect(sender.get_by_test_id("save-status")).to_have_attribute("data-pending", "0")


async def wait_export_open(base_url: str, name: str, want: str) -> None:
    """The text of ``name`` on an open-mode server."""

    async def check() -> bool:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            url = f"{base_url}/api/docs/{name}/export?format=txt"
            async with session.get(url) as response:
                return response.status == 200 and await response.text() == want

    await eventually(check, timeout=90)
