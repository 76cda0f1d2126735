"""The editor's Share dialog and Copy link, in Chromium, against real servers (one with a
secret, one in open mode): an admin makes a read link that really opens a read-only editor; a
writer is told only an admin makes links; open mode says anyone with the address can edit; the
dialog is a modal with its focus kept and returned, on a wide screen and from a phone's "⋯".

One Chromium is shared by the module; each person is a browser context of their own. The
server's copy of a document is read through its HTTP export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from playwright.async_api import Page, expect

from server.auth import ALGORITHM, Role, mint

from .browser import (
    SAVED,
    NewPerson,
    focus_end,
    open_editor,
    text_of,
    type_keys,
    wait_text,
)
from .conftest import ServerProcess, unique
from .test_browser_a11y import assert_no_violations

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-share-test-secret-0123456789abcdef"
PHONE = {"width": 390, "height": 844}
DAY = 86_400


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("share") / "tandem.db"
    srv = ServerProcess(db, "--auth-secret", SECRET, "--keepalive", "2").start()
    yield srv
    srv.kill()


async def export_text(base_url: str, name: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        url = f"{base_url}/api/docs/{name}/export?format=txt"
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.text()


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, SECRET, algorithms=[ALGORITHM])


def token_of(url: str) -> str:
    assert "?token=" in url, url
    return url.split("?token=", 1)[1]


async def option_labels(page: Page, testid: str) -> list[str]:
    return await page.get_by_test_id(testid).locator("option").all_inner_texts()


async def created_link(page: Page) -> str:
    """The link the dialog made, once the server has answered."""
    field = page.get_by_test_id("share-link")
    await expect(field).to_have_value(re.compile(r"\?token="), timeout=30_000)
    return await field.input_value()


async def open_share(page: Page) -> None:
    await page.get_by_test_id("share-button").click()
    await expect(page.get_by_test_id("share-dialog")).to_be_visible()


async def test_an_admin_makes_a_read_link_that_opens_a_read_only_editor(
    locked: ServerProcess, person: NewPerson
) -> None:
    name = f"team/{unique('share')}"
    admin = mint(SECRET, "team/", Role.admin, 2 * DAY)
    ada = await person("Ada")
    await ada.grant_permissions(["clipboard-read", "clipboard-write"], origin=locked.url)
    page = await open_editor(ada, locked.url, name, token=admin)
    written = "Shared with a reader."
    await focus_end(page)
    await type_keys(page, written)
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)

    # Copy link: the page's own address, its token kept
    copy_link = page.get_by_test_id("copy-link")
    await expect(copy_link).to_have_attribute("data-url", f"{locked.url}/d/{name}?token={admin}")

    share = page.get_by_test_id("share-button")
    await expect(share).to_have_attribute("aria-haspopup", "dialog")
    await open_share(page)
    dialog = page.get_by_test_id("share-dialog")
    await expect(dialog).to_have_attribute("data-mode", "admin")
    await expect(page.get_by_role("dialog", name=f"Share {name}")).to_be_visible()
    # the first choice has the focus; the page behind is inert
    await expect(page.get_by_test_id("share-role")).to_be_focused()
    assert await page.evaluate(
        "() => document.querySelector('[data-testid=share-dialog]').matches(':modal')"
    )
    assert await option_labels(page, "share-role") == [
        "View only (read)",
        "Edit (write)",
        "Edit, restore and share (admin)",
    ]
    assert await option_labels(page, "share-scope") == [
        f"This document ({name})",
        "Every document in team/",
    ]
    # two days left on the page's token: nothing longer is offered
    assert await option_labels(page, "share-expiry") == [
        "1 hour",
        "1 day",
        "Until this page’s own link expires",
    ]

    await page.get_by_test_id("share-role").select_option("read")
    await page.get_by_test_id("share-expiry").select_option(label="1 hour")
    await page.get_by_test_id("share-create").click()
    link_field = page.get_by_test_id("share-link")
    await expect(link_field).to_be_visible()
    await expect(link_field).to_be_focused()
    await expect(link_field).to_have_attribute("readonly", "")
    link = await link_field.input_value()
    assert link.startswith(f"{locked.url}/d/{name}?token=")
    made = claims(token_of(link))
    assert (made["doc"], made["role"]) == (name, "read")
    assert made["exp"] <= claims(admin)["exp"]
    await expect(page.get_by_test_id("share-expires")).to_contain_text("read access")
    await page.get_by_test_id("share-link-copy").click()
    await expect(page.get_by_test_id("share-link-copy")).to_have_text("Link copied")
    assert await page.evaluate("() => navigator.clipboard.readText()") == link

    # Esc closes it; the focus is back on Share
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(share).to_be_focused()

    # the link in another browser: a read-only editor that changes nothing on the server
    reader = await open_editor(await person("Reader"), link.split("/d/")[0], name, token_of(link))
    await wait_text(reader, written)
    badge = reader.get_by_test_id("read-only-badge")
    await expect(badge).to_be_visible()
    await expect(reader.locator("[data-testid=editor] .cm-content")).to_have_attribute(
        "contenteditable", "false"
    )
    await reader.locator("[data-testid=editor] .cm-content").click()
    await reader.keyboard.press("Control+End")
    await reader.keyboard.type("the reader was here")
    await reader.keyboard.press("Backspace")
    assert await text_of(reader) == written
    # the admin's next edit reaches the reader; the server holds the admin's text only
    await focus_end(page)
    await type_keys(page, " More.")
    await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)
    await wait_text(reader, written + " More.")
    assert await export_text(locked.url, name, admin) == written + " More."
    # a reader's Share dialog offers only its own link
    await open_share(reader)
    await expect(reader.get_by_test_id("share-note")).to_contain_text(
        "Only an admin can create new links"
    )
    assert await reader.get_by_test_id("share-page-link").input_value() == link


async def test_a_folder_link_and_a_refusal_from_the_server_shown_in_the_dialog(
    locked: ServerProcess, person: NewPerson
) -> None:
    name = f"team/{unique('folder')}"
    admin = mint(SECRET, "team/", Role.admin, 60 * DAY)
    page = await open_editor(await person("Ada"), locked.url, name, token=admin)
    await open_share(page)
    assert await option_labels(page, "share-expiry") == ["1 hour", "1 day", "7 days", "30 days"]
    await page.get_by_test_id("share-role").select_option("write")
    await page.get_by_test_id("share-scope").select_option("team/")
    await page.get_by_test_id("share-expiry").select_option(label="7 days")
    await page.get_by_test_id("share-create").click()
    link = await created_link(page)
    # the folder link still opens this document
    assert link.startswith(f"{locked.url}/d/{name}?token=")
    made = claims(token_of(link))
    assert (made["doc"], made["role"], made["exp"] - made["iat"]) == ("team/", "write", 7 * DAY)
    await expect(page.get_by_test_id("share-expires")).to_contain_text("every document in team/")
    # a new choice hides the link made for the old one
    await page.get_by_test_id("share-role").select_option("read")
    await expect(page.get_by_test_id("share-result")).to_be_hidden()

    # a hostile page edits the choices: the server refuses, the dialog says so in words
    await page.evaluate(
        """() => {
            const select = document.querySelector('[data-testid=share-scope]')
            select.append(new Option('everything', '*'))
            select.value = '*'
        }"""
    )
    await page.get_by_test_id("share-create").click()
    error = page.get_by_test_id("share-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("The server refused to create this link")
    await expect(error).to_contain_text("not within")
    await expect(page.get_by_test_id("share-result")).to_be_hidden()


async def test_a_writer_is_told_only_an_admin_makes_links(
    locked: ServerProcess, person: NewPerson
) -> None:
    name = unique("writer")
    writer = mint(SECRET, name, Role.write, 3600)
    page = await open_editor(await person("Walt"), locked.url, name, token=writer)
    await expect(page.get_by_test_id("copy-link")).to_have_attribute(
        "data-url", f"{locked.url}/d/{name}?token={writer}"
    )
    await open_share(page)
    await expect(page.get_by_test_id("share-dialog")).to_have_attribute("data-mode", "limited")
    note = page.get_by_test_id("share-note")
    await expect(note).to_contain_text("Only an admin can create new links")
    await expect(note).to_contain_text("write access")
    await expect(page.get_by_test_id("share-create")).to_have_count(0)
    field = page.get_by_test_id("share-page-link")
    await expect(field).to_be_focused()
    assert await field.input_value() == f"{locked.url}/d/{name}?token={writer}"
    await page.get_by_test_id("share-done").click()
    await expect(page.get_by_test_id("share-dialog")).to_be_hidden()


async def test_in_open_mode_the_dialog_says_anyone_with_the_address_can_edit(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("open")
    page = await open_editor(await person("Olga"), server.url, name)
    await expect(page.get_by_test_id("copy-link")).to_have_attribute(
        "data-url", f"{server.url}/d/{name}"
    )
    await open_share(page)
    await expect(page.get_by_test_id("share-dialog")).to_have_attribute("data-mode", "open")
    await expect(page.get_by_test_id("share-note")).to_contain_text(
        "anyone with the address can read and edit this document"
    )
    assert await page.get_by_test_id("share-address").input_value() == f"{server.url}/d/{name}"
    await expect(page.get_by_test_id("share-create")).to_have_count(0)
    await page.get_by_test_id("share-close").click()
    await expect(page.get_by_test_id("share-dialog")).to_be_hidden()
    await expect(page.get_by_test_id("share-button")).to_be_focused()


async def test_tab_stays_in_the_dialog(locked: ServerProcess, person: NewPerson) -> None:
    name = unique("focus")
    page = await open_editor(
        await person("Tab"), locked.url, name, token=mint(SECRET, name, Role.admin, 3600)
    )
    await open_share(page)
    close, done = page.get_by_test_id("share-close"), page.get_by_test_id("share-done")
    await done.focus()
    await page.keyboard.press("Tab")
    await expect(close).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(done).to_be_focused()
    # every control in between is reached, and none outside the dialog
    seen: list[str] = []
    for _ in range(12):
        await page.keyboard.press("Tab")
        inside = await page.evaluate(
            "() => !!document.activeElement.closest('[data-testid=share-dialog]')"
        )
        assert inside
        seen.append(await page.evaluate("() => document.activeElement.dataset.testid || ''"))
    assert {"share-role", "share-expiry", "share-create", "share-done", "share-close"} <= set(seen)


async def test_share_works_from_the_phones_more_menu(
    locked: ServerProcess, person: NewPerson
) -> None:
    name = unique("phone")
    admin = mint(SECRET, name, Role.admin, 3600)
    page = await open_editor(await person("Pia", viewport=PHONE), locked.url, name, token=admin)
    await expect(page.get_by_test_id("share-button")).to_be_hidden()
    top_more = page.get_by_test_id("top-more")
    await top_more.click()
    panel = page.get_by_test_id("top-more-panel")
    await expect(panel.get_by_test_id("share-button")).to_be_visible()
    await panel.get_by_test_id("share-button").click()
    dialog = page.get_by_test_id("share-dialog")
    await expect(dialog).to_be_visible()
    await expect(panel).to_be_hidden()
    box = await dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await page.get_by_test_id("share-create").click()
    link = await created_link(page)
    assert claims(token_of(link))["role"] == "read"
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    # the Share button is in the closed panel: the focus goes back to "⋯"
    await expect(top_more).to_be_focused()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_share_dialogs_have_no_accessibility_violations(
    locked: ServerProcess, server: ServerProcess, person: NewPerson, scheme: str
) -> None:
    name = f"team/{unique('a11y')}"
    admin = mint(SECRET, "team/", Role.admin, 3600)
    context = await person("Ally", color_scheme=scheme, bypass_csp=True)
    page = await open_editor(context, locked.url, name, token=admin)
    await open_share(page)
    await assert_no_violations(page, f"admin Share dialog, {scheme}")
    await page.get_by_test_id("share-create").click()
    await expect(page.get_by_test_id("share-link")).to_be_visible()
    await assert_no_violations(page, f"admin Share dialog with a link, {scheme}")
    await page.evaluate(
        """() => {
            const select = document.querySelector('[data-testid=share-scope]')
            select.append(new Option('everything', '*'))
            select.value = '*'
        }"""
    )
    await page.get_by_test_id("share-create").click()
    await expect(page.get_by_test_id("share-error")).to_be_visible()
    await assert_no_violations(page, f"admin Share dialog with an error, {scheme}")
    opened = await open_editor(context, server.url, unique("a11y-open"))
    await open_share(opened)
    await assert_no_violations(opened, f"open-mode Share dialog, {scheme}")
