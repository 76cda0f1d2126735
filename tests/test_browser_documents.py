"""Deleting, duplicating and importing documents from the pages, in real Chromium against a real
server: the home page's row actions and its file import (drop or the file input), the editor's
Document menu (also in the phone's "⋯" panel), their confirmations, and what the token allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Locator, Page, expect

from server.auth import Role, mint
from testkit.serverproc import ServerProcess

from .browser import NewPerson, focus_end, open_editor, type_keys, wait_text
from .conftest import unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-documents-secret-long-enough-for-hs256"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("documents-auth") / "tandem.db"
    proc = ServerProcess(db, "--keepalive", "2", "--auth-secret", SECRET).start()
    yield proc
    proc.kill()


async def api(
    server: ServerProcess, method: str, path: str, token: str | None = None, **kwargs: object
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, headers=headers, **kwargs) as resp:  # type: ignore[arg-type]
            return resp.status, await resp.read()


async def make_document(
    server: ServerProcess, name: str, text: str, token: str | None = None
) -> None:
    status, body = await api(
        server, "POST", f"/api/docs/{name}/import", token, data=text.encode("utf-8")
    )
    assert status == 201, body


async def listed(server: ServerProcess, token: str | None = None) -> set[str]:
    status, body = await api(server, "GET", "/api/docs", token)
    assert status == 200, body
    return {d["name"] for d in json.loads(body)["documents"]}


async def server_text(server: ServerProcess, name: str, token: str | None = None) -> str | None:
    status, body = await api(server, "GET", f"/api/docs/{name}/export?format=txt", token)
    return body.decode("utf-8") if status == 200 else None


async def home(context: BrowserContext, server: ServerProcess, token: str | None = None) -> Page:
    page = await context.new_page()
    await page.goto(server.url + "/" + (f"?token={token}" if token else ""))
    await expect(page.get_by_test_id("doc-list")).to_have_attribute("aria-busy", "false")
    return page


def row(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid=doc-item][data-name="{name}"]')


# The rows the page shows now, marked: a refresh replaces every one of them.
ROWS = "[...document.querySelectorAll('[data-testid=doc-item]')]"
MARK_ROWS = f"() => {ROWS}.forEach((li) => {{ li.dataset.old = '1' }})"
ROWS_REPLACED = f"() => {ROWS}.every((li) => !li.dataset.old)"


async def test_the_lists_refresh_keeps_the_keyboard_focus_where_it_was(
    server: ServerProcess, person: NewPerson
) -> None:
    names = [unique("focus-a"), unique("focus-b")]
    for name in names:
        await make_document(server, name, "text\n")
    page = await home(await person("Ada"), server)

    await row(page, names[1]).get_by_test_id("doc-duplicate").focus()
    await page.evaluate(MARK_ROWS)
    await page.get_by_test_id("refresh").evaluate("(button) => button.click()")  # focus stays put
    await page.wait_for_function(ROWS_REPLACED)
    await expect(row(page, names[1]).get_by_test_id("doc-duplicate")).to_be_focused()

    # the periodic and on-return refreshes take the same path
    await row(page, names[0]).get_by_test_id("doc-link").focus()
    await page.evaluate(MARK_ROWS)
    await page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    await page.wait_for_function(ROWS_REPLACED)
    await expect(row(page, names[0]).get_by_test_id("doc-link")).to_be_focused()


# --- delete -----------------------------------------------------------------------------------


async def test_deleting_from_the_home_page_asks_first_and_cancel_keeps_the_document(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("to-delete")
    await make_document(server, name, "short-lived\n")
    page = await home(await person("Ada"), server)
    await expect(row(page, name)).to_have_count(1)

    await row(page, name).get_by_test_id("doc-delete").click()
    dialog = page.get_by_test_id("delete-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(name)
    # the safe choice has the focus; Esc and "Keep it" both keep the document
    await expect(page.get_by_test_id("delete-cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(row(page, name).get_by_test_id("doc-delete")).to_be_focused()  # back on it
    await row(page, name).get_by_test_id("doc-delete").click()
    await page.get_by_test_id("delete-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, name)).to_have_count(1)
    assert name in await listed(server)

    await row(page, name).get_by_test_id("doc-delete").click()
    await page.get_by_test_id("delete-confirm").click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, name)).to_have_count(0)
    await expect(page.get_by_test_id("home-notice")).to_contain_text(f"Deleted “{name}”")
    assert name not in await listed(server)
    assert (await api(server, "GET", f"/api/docs/{name}"))[0] == 404
    # the focus is on the page, not lost
    assert await page.evaluate("() => document.activeElement !== document.body")


async def test_deleting_from_the_editor_goes_home_and_forgets_this_devices_copy(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("editor-delete")
    context = await person("Ada")
    page = await open_editor(context, server.url, name)
    await focus_end(page)
    await type_keys(page, "typed in the editor")
    await expect(page.get_by_test_id("save-status")).to_have_text("All changes saved")

    await page.get_by_test_id("document-menu").click()
    await page.get_by_test_id("document-delete").click()
    await expect(page.get_by_test_id("delete-dialog")).to_be_visible()
    await page.get_by_test_id("delete-cancel").click()
    await expect(page.get_by_test_id("delete-dialog")).to_be_hidden()
    await expect(page.get_by_test_id("document-menu")).to_be_focused()
    assert name in await listed(server)

    await page.get_by_test_id("document-menu").press("ArrowDown")  # the keyboard way in
    await page.keyboard.press("End")
    await page.keyboard.press("Enter")
    await page.get_by_test_id("delete-confirm").click()
    await page.wait_for_url(server.url + "/")
    await expect(page.get_by_test_id("doc-list")).to_have_attribute("aria-busy", "false")
    await expect(row(page, name)).to_have_count(0)
    assert (await api(server, "GET", f"/api/docs/{name}"))[0] == 404
    databases = await page.evaluate("async () => (await indexedDB.databases()).map(d => d.name)")
    assert f"tandem:{name}" not in databases


# --- duplicate --------------------------------------------------------------------------------


async def test_duplicating_from_the_home_page_lists_the_copy_which_opens_with_the_same_text(
    server: ServerProcess, person: NewPerson
) -> None:
    name, taken = unique("original"), unique("taken")
    text = "# Original\n\nwith ünïcode ✓\n"
    await make_document(server, name, text)
    await make_document(server, taken, "in the way\n")
    context = await person("Ada")
    page = await home(context, server)

    await row(page, name).get_by_test_id("doc-duplicate").click()
    dialog = page.get_by_test_id("duplicate-dialog")
    field = page.get_by_test_id("duplicate-name")
    await expect(dialog).to_be_visible()
    await expect(field).to_have_value(f"{name}-copy")
    await expect(field).to_be_focused()
    # a name that is not one, then one that is taken: said in the dialog, which stays open
    await field.fill("not a name")
    await page.get_by_test_id("duplicate-confirm").click()
    await expect(page.get_by_test_id("duplicate-error")).to_contain_text("no spaces")
    await field.fill(taken)
    await page.get_by_test_id("duplicate-confirm").click()
    await expect(page.get_by_test_id("duplicate-error")).to_contain_text("exists already")
    await expect(field).to_have_attribute("aria-invalid", "true")
    assert await server_text(server, taken) == "in the way\n"

    copy = f"{name}-copy"
    await field.fill(copy)
    await field.press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(row(page, copy)).to_have_count(1)
    await expect(row(page, copy).locator("a.doc-link")).to_be_focused()
    await expect(page.get_by_test_id("home-notice")).to_contain_text(f"a copy of “{name}”")
    assert await server_text(server, copy) == text

    await page.get_by_test_id("notice-open").click()
    await page.wait_for_url(f"{server.url}/d/{copy}")
    await page.wait_for_function("() => window.tandem && window.tandem.provider.synced")
    await wait_text(page, text)


async def test_duplicating_from_the_editors_document_menu_opens_the_copy_with_what_was_typed(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("menu-source")
    page = await open_editor(await person("Ada"), server.url, name)
    await focus_end(page)
    await type_keys(page, "typed just now, copied at once")
    await page.get_by_test_id("document-menu").click()
    await expect(page.get_by_role("menu", name="Document")).to_be_visible()
    await page.get_by_test_id("document-duplicate").click()
    field = page.get_by_test_id("duplicate-name")
    await expect(field).to_have_value(f"{name}-copy")
    await page.get_by_test_id("duplicate-confirm").click()
    await page.wait_for_url(f"{server.url}/d/{name}-copy")
    await page.wait_for_function("() => window.tandem && window.tandem.provider.synced")
    await wait_text(page, "typed just now, copied at once")
    # two documents of their own
    await focus_end(page)
    await type_keys(page, " (the copy)")
    await expect(page.get_by_test_id("save-status")).to_have_text("All changes saved")
    assert await server_text(server, name) == "typed just now, copied at once"
    assert await server_text(server, f"{name}-copy") == "typed just now, copied at once (the copy)"


async def test_the_document_menu_works_from_the_phones_more_panel(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("phone")
    page = await open_editor(await person("Ada", viewport=PHONE), server.url, name)
    await focus_end(page)
    await type_keys(page, "on a phone")
    await expect(page.get_by_test_id("document-menu")).to_be_hidden()  # in the "⋯" panel
    await page.get_by_test_id("top-more").click()
    await expect(page.get_by_test_id("top-more-panel")).to_be_visible()
    await page.get_by_test_id("document-menu").click()
    await page.get_by_test_id("document-duplicate").click()
    await expect(page.get_by_test_id("duplicate-dialog")).to_be_visible()
    await expect(page.get_by_test_id("duplicate-name")).to_be_focused()
    await expect(page.get_by_test_id("top-more-panel")).to_be_hidden()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("duplicate-dialog")).to_be_hidden()
    # the item it came from is hidden now
    await expect(page.get_by_test_id("top-more")).to_be_focused()

    await page.get_by_test_id("top-more").click()
    await page.get_by_test_id("document-menu").click()
    await page.get_by_test_id("document-duplicate").click()
    await page.get_by_test_id("duplicate-name").fill(f"{name}-phone")
    await page.get_by_test_id("duplicate-confirm").click()
    await page.wait_for_url(f"{server.url}/d/{name}-phone")
    await page.wait_for_function("() => window.tandem && window.tandem.provider.synced")
    await wait_text(page, "on a phone")


# --- import -----------------------------------------------------------------------------------

_DROP = """([name, type, bytes]) => {
    const transfer = new DataTransfer()
    transfer.items.add(new File([new Uint8Array(bytes)], name, { type }))
    return transfer
}"""


async def drop_file(page: Page, name: str, data: bytes, content_type: str = "") -> None:
    """A file dragged over the page (the highlight shows), then dropped on the Documents card."""
    transfer = await page.evaluate_handle(_DROP, [name, content_type, list(data)])
    zone = "[data-testid=drop-zone]"
    await page.dispatch_event(zone, "dragenter", {"dataTransfer": transfer})
    await expect(page.get_by_test_id("drop-zone")).to_have_attribute("data-drop-active", "true")
    await page.dispatch_event(zone, "dragover", {"dataTransfer": transfer})
    await page.dispatch_event(zone, "drop", {"dataTransfer": transfer})
    await expect(page.get_by_test_id("drop-zone")).not_to_have_attribute("data-drop-active", "true")


async def test_a_markdown_file_dropped_on_the_home_page_becomes_a_document_named_after_it(
    server: ServerProcess, person: NewPerson
) -> None:
    stamp = unique("notes").split("-")[-1]
    text = "# My notes\n\nÜber alles ✓\n"
    page = await home(await person("Ada"), server)
    await drop_file(page, f"My Notes {stamp}.md", text.encode("utf-8"), "text/markdown")
    name = f"My-Notes-{stamp}"
    await expect(row(page, name)).to_have_count(1)
    await expect(page.get_by_test_id("home-notice")).to_contain_text(f"Imported “{name}”")
    assert await server_text(server, name) == text

    # the same file again: a name of its own, the first one untouched
    await drop_file(page, f"My Notes {stamp}.md", b"second\n", "text/markdown")
    await expect(row(page, f"{name}-2")).to_have_count(1)
    assert await server_text(server, f"{name}-2") == "second\n"
    assert await server_text(server, name) == text

    await page.get_by_test_id("notice-open").click()
    await page.wait_for_url(f"{server.url}/d/{name}-2")
    await page.wait_for_function("() => window.tandem && window.tandem.provider.synced")
    await wait_text(page, "second\n")


async def test_files_that_cannot_be_imported_are_refused_with_a_reason(
    server: ServerProcess, person: NewPerson
) -> None:
    page = await home(await person("Ada"), server)
    before = await listed(server)
    notice = page.get_by_test_id("home-notice")
    await drop_file(page, "picture.png", b"\x89PNG\r\n\x1a\n", "image/png")
    await expect(notice).to_contain_text("only .md, .markdown and .txt")
    await drop_file(page, "latin1.txt", "caf\xe9 na\xefve".encode("latin-1"), "text/plain")
    await expect(notice).to_contain_text("not UTF-8")
    await drop_file(page, "empty.md", b"", "text/markdown")
    await expect(notice).to_contain_text("empty")
    await drop_file(page, "huge.md", b"x" * (2 * 1024 * 1024 + 1), "text/markdown")
    await expect(notice).to_contain_text("too big")
    assert await listed(server) == before


async def test_the_import_button_takes_a_file_from_the_file_picker(
    server: ServerProcess, person: NewPerson, tmp_path: Path
) -> None:
    stamp = unique("picked").split("-")[-1]
    picked = tmp_path / f"Plan Été {stamp}.txt"
    picked.write_text("chosen with the keyboard\n", encoding="utf-8")
    page = await home(await person("Ada"), server)
    button = page.get_by_test_id("import-button")
    await expect(button).to_be_visible()
    async with page.expect_file_chooser() as chooser:
        await button.focus()
        await page.keyboard.press("Enter")
    await (await chooser.value).set_files(picked)
    name = f"Plan-Ete-{stamp}"
    await expect(row(page, name)).to_have_count(1)
    assert await server_text(server, name) == "chosen with the keyboard\n"


# --- what the token allows ---------------------------------------------------------------------


async def test_the_pages_offer_only_what_the_token_allows(
    secured: ServerProcess, person: NewPerson
) -> None:
    folder = unique("team") + "/"
    name = folder + "notes"
    admin = mint(SECRET, "*", Role.admin, 600)
    await make_document(secured, name, "team notes\n", admin)
    reader = mint(SECRET, "*", Role.read, 600)
    writer = mint(SECRET, folder, Role.write, 600)
    context = await person("Ada")

    page = await home(context, secured, reader)
    await expect(row(page, name)).to_have_count(1)
    await expect(page.get_by_test_id("doc-duplicate")).to_have_count(0)
    await expect(page.get_by_test_id("doc-delete")).to_have_count(0)
    await expect(page.get_by_test_id("import-button")).to_have_count(0)
    editor = await open_editor(context, secured.url, name, reader)
    await expect(editor.get_by_test_id("document-menu")).to_be_hidden()

    page = await home(context, secured, writer)
    await expect(row(page, name).get_by_test_id("doc-duplicate")).to_have_count(1)
    await expect(page.get_by_test_id("doc-delete")).to_have_count(0)
    await expect(page.get_by_test_id("import-button")).to_have_count(0)  # import is an admin's
    await row(page, name).get_by_test_id("doc-duplicate").click()
    await page.get_by_test_id("duplicate-name").fill(unique("elsewhere") + "/x")
    await page.get_by_test_id("duplicate-confirm").click()
    await expect(page.get_by_test_id("duplicate-error")).to_contain_text("does not allow")
    await page.get_by_test_id("duplicate-name").fill(folder + "copy")
    await page.get_by_test_id("duplicate-confirm").click()
    await expect(row(page, folder + "copy")).to_have_count(1)
    assert await server_text(secured, folder + "copy", admin) == "team notes\n"

    page = await home(context, secured, admin)
    await expect(row(page, name).get_by_test_id("doc-delete")).to_have_count(1)
    await expect(page.get_by_test_id("import-button")).to_be_visible()
    editor = await open_editor(context, secured.url, name, admin)
    await editor.get_by_test_id("document-menu").click()
    await expect(editor.get_by_test_id("document-delete")).to_be_visible()
