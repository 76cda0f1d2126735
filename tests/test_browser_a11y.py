"""Accessibility in Chromium: axe-core (tests/node's, injected into the page) finds no violation
on the home page, the editor (with another person's caret, the find panel and the keyboard help
open; on a phone with its top "More" menu open), the open History panel and an error page, in
the light and the dark theme.

One Chromium and one server are shared by the module. The pages' CSP allows no inline script,
so the contexts bypass it to inject axe; the WCAG 2.5.3 rule (label-content-name-mismatch, off
by default in axe) is turned on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from .browser import focus_end, new_person, open_editor, type_keys, wait_text
from .conftest import ServerProcess, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

AXE = Path(__file__).resolve().parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
SCHEMES = ["light", "dark"]
TEXT = (
    "# Release notes\n\n## What changed\n\nSome **bold**, _italic_, ~~gone~~ and `code`, "
    "a [link](https://example.org).\n\n- a list\n- [ ] a task\n\n> a quote\n\n```\nfenced\n```\n"
)
PHONE = {"width": 390, "height": 844}
INSERT = "t => window.tandem.view.dispatch({ changes: { from: 0, insert: t } })"


@pytest_asyncio.fixture(loop_scope="module")
async def people(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """The contexts a test opens (closed after it)."""
    contexts: list[BrowserContext] = []
    yield contexts
    for context in contexts:
        await context.close()


async def person(
    browser: Browser, people: list[BrowserContext], name: str, scheme: str
) -> BrowserContext:
    context = await new_person(browser, name, color_scheme=scheme, bypass_csp=True)
    people.append(context)
    return context


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (id, help and the elements)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    return await page.evaluate(
        """async () => {
            const result = await axe.run(document, {
                resultTypes: ['violations'],
                rules: { 'label-content-name-mismatch': { enabled: true } }
            })
            return result.violations.map(v => ({
                id: v.id, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)
            }))
        }"""
    )


async def assert_no_violations(page: Page, where: str) -> None:
    found = await violations(page)
    assert found == [], f"{where}: {json.dumps(found, indent=1)}"


async def check_theme(page: Page, scheme: str) -> None:
    """The page really is in that theme (axe checks the colours it shows)."""
    await expect(page.locator("html")).to_have_attribute("data-theme", scheme)


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_home_page_has_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    context = await person(browser, people, "Ada", scheme)
    await open_editor(context, server.url, unique("listed"))  # the list has an entry
    page = await context.new_page()
    await page.goto(server.url + "/")
    await expect(page.get_by_test_id("doc-item").first).to_be_visible()
    await check_theme(page, scheme)
    await assert_no_violations(page, f"home, {scheme}")
    # the name error shown
    await page.get_by_test_id("open-button").click()
    await expect(page.get_by_test_id("doc-name-error")).to_be_visible()
    await assert_no_violations(page, f"home with an error, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_editor_has_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    name = unique("a11y-editor")
    ada = await open_editor(await person(browser, people, "Ada", scheme), server.url, name)
    bob = await open_editor(await person(browser, people, "Bob", scheme), server.url, name)
    await focus_end(ada)
    await ada.evaluate(INSERT, TEXT)
    await wait_text(bob, TEXT)
    await focus_end(bob)  # Bob's caret and name label in Ada's text
    await type_keys(bob, "Bob was here.")
    await expect(ada.locator(".cm-ySelectionInfo")).to_have_count(1)
    await check_theme(ada, scheme)
    await assert_no_violations(ada, f"editor, {scheme}")

    await ada.get_by_test_id("keyboard-help").locator("summary").click()
    await ada.locator("[data-testid=editor] .cm-content").click()
    await ada.keyboard.press("Control+f")
    await type_keys(ada, "bold")
    await expect(ada.locator(".cm-search")).to_be_visible()
    await assert_no_violations(ada, f"editor with find and the keyboard help, {scheme}")

    await ada.get_by_test_id("export-menu").click()
    await expect(ada.get_by_role("menu")).to_be_visible()
    await assert_no_violations(ada, f"editor with the Export menu, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_editor_on_a_phone_with_the_top_more_menu_has_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    context = await new_person(browser, "Ada", color_scheme=scheme, bypass_csp=True, viewport=PHONE)
    people.append(context)
    page = await open_editor(context, server.url, unique("a11y-phone"))
    await focus_end(page)
    await page.evaluate(INSERT, TEXT)
    await check_theme(page, scheme)
    await assert_no_violations(page, f"editor on a phone, {scheme}")
    await page.get_by_test_id("top-more").click()
    await expect(page.get_by_test_id("top-more-panel")).to_be_visible()
    await assert_no_violations(page, f"editor on a phone with the top More menu, {scheme}")
    await page.get_by_test_id("export-menu").click()
    await expect(page.get_by_role("menu", name="Export")).to_be_visible()
    await assert_no_violations(page, f"editor on a phone with Export in More, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_open_history_panel_has_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    page = await open_editor(
        await person(browser, people, "Ada", scheme), server.url, unique("a11y-history")
    )
    await focus_end(page)
    await page.evaluate(INSERT, TEXT)
    await page.get_by_test_id("history-button").click()
    await expect(page.get_by_test_id("history-panel")).to_be_visible()
    await page.get_by_test_id("save-version").click()
    await page.get_by_test_id("version-label-input").fill("First")
    await page.get_by_test_id("save-version-confirm").click()
    first = page.get_by_test_id("version-item").filter(has_text="First")
    await expect(first).to_have_count(1)
    await focus_end(page)
    await type_keys(page, "\nA new line.")
    await page.keyboard.press("Control+Home")
    await page.keyboard.press("Delete")
    await first.click()
    await expect(page.get_by_test_id("version-preview")).to_have_attribute("data-state", "loaded")
    diff = page.get_by_test_id("version-diff")
    await expect(diff.locator(".diff-add")).not_to_have_count(0)
    await expect(diff.locator(".diff-del")).not_to_have_count(0)
    await page.get_by_test_id("restore-version").click()
    await expect(page.get_by_test_id("restore-confirmation")).to_be_visible()
    await check_theme(page, scheme)
    await assert_no_violations(page, f"history panel, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_an_error_page_has_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    page = await (await person(browser, people, "Ada", scheme)).new_page()
    response = await page.goto(server.url + "/d/not%20a%20name")
    assert response is not None and response.status == 400
    await check_theme(page, scheme)
    await assert_no_violations(page, f"error page, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_duplicate_and_delete_dialogs_have_no_violations(
    server: ServerProcess, browser: Browser, people: list[BrowserContext], scheme: str
) -> None:
    context = await person(browser, people, "Ada", scheme)
    name = unique("a11y-dialogs")
    editor = await open_editor(context, server.url, name)
    await focus_end(editor)
    await editor.evaluate(INSERT, TEXT)
    await editor.get_by_test_id("document-menu").click()
    await expect(editor.get_by_role("menu", name="Document")).to_be_visible()
    await check_theme(editor, scheme)
    await assert_no_violations(editor, f"editor with the Document menu, {scheme}")
    await editor.get_by_test_id("document-duplicate").click()
    await editor.get_by_test_id("duplicate-name").fill("not a name")
    await editor.get_by_test_id("duplicate-confirm").click()
    await expect(editor.get_by_test_id("duplicate-error")).to_be_visible()
    await assert_no_violations(editor, f"editor's Duplicate dialog with an error, {scheme}")

    page = await context.new_page()
    await page.goto(server.url + "/")
    item = page.locator(f'[data-testid=doc-item][data-name="{name}"]')
    await item.get_by_test_id("doc-delete").click()
    await expect(page.get_by_test_id("delete-dialog")).to_be_visible()
    await assert_no_violations(page, f"home's Delete dialog, {scheme}")
    await page.get_by_test_id("delete-cancel").click()
    await item.get_by_test_id("doc-duplicate").click()
    await expect(page.get_by_test_id("duplicate-dialog")).to_be_visible()
    await assert_no_violations(page, f"home's Duplicate dialog, {scheme}")
