"""The home page's search in real Chromium: a word typed in the editor is found from the home
page once the index catches up, its hit highlighted in a <mark>, the result linking to the
document (with the page's token); the title shows beside the name in the results and in the
list; the keyboard works; no match and errors are said; axe finds nothing in either theme."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from server.auth import Role, mint

from .browser import SAVED, focus_end, new_person, open_editor, type_keys
from .conftest import ServerProcess, unique
from .test_browser_a11y import assert_no_violations

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-search-secret-long-enough-for-hs256"
FAST = ("--index-quiet", "0.5", "--keepalive", "2")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("search") / "tandem.db", *FAST).start()
    yield proc
    proc.kill()


class People:
    """The browser contexts (people) of one test, closed after it; an uncaught error in any of
    their pages fails the test."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    async def new(self, name: str, scheme: str = "light") -> BrowserContext:
        # bypass_csp: axe-core is injected into the page.
        context = await new_person(self.browser, name, color_scheme=scheme, bypass_csp=True)
        context.on("weberror", lambda error: self.errors.append(str(error.error)))
        self.contexts.append(context)
        return context


@pytest_asyncio.fixture(loop_scope="module")
async def people(browser: Browser) -> AsyncIterator[People]:
    crowd = People(browser)
    yield crowd
    for context in crowd.contexts:
        await context.close()
    assert crowd.errors == [], f"uncaught errors in the page: {crowd.errors}"


async def write(context: BrowserContext, base_url: str, name: str, text: str) -> None:
    """Type ``text`` into the editor of ``name`` and wait until the server has it."""
    editor = await open_editor(context, base_url, name)
    await focus_end(editor)
    await type_keys(editor, text)
    await expect(editor.get_by_test_id("save-status")).to_have_text(SAVED)
    await editor.close()


async def search_until_found(home: Page, words: str, name: str) -> None:
    """Search for ``words`` (Enter asks again) until the result for ``name`` is listed."""
    box = home.get_by_test_id("search-input")
    await box.fill(words)
    result = home.locator(f'[data-testid=search-result][data-name="{name}"]')
    for _ in range(120):
        await box.press("Enter")
        try:
            await expect(result).to_be_visible(timeout=1000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"{name} not found by {words!r}")


async def test_a_typed_word_is_found_from_the_home_page_with_its_hit_marked(
    people: People, server: ServerProcess
) -> None:
    name = unique("garden/plans")
    writer = await people.new("Ada")
    await write(writer, server.url, name, "# Garden plans\n\nThe marigoldix blooms in June.")

    home = await writer.new_page()
    await home.goto(server.url + "/")
    await search_until_found(home, "marigoldix", name)

    result = home.locator(f'[data-testid=search-result][data-name="{name}"]')
    await expect(result.locator("mark")).to_have_text(["marigoldix"])
    await expect(result.get_by_test_id("search-snippet")).to_contain_text("blooms in June")
    await expect(result.get_by_test_id("search-result-title")).to_have_text("Garden plans")
    link = result.get_by_test_id("search-result-link")
    await expect(link).to_have_text(name)
    await expect(link).to_have_attribute("href", f"/d/{name}")
    await expect(home.get_by_test_id("search-status")).to_have_text("1 document matches")

    # The documents list shows the title beside the name too (once it has reloaded).
    await home.get_by_test_id("refresh").click()
    item = home.locator(f'[data-testid=doc-item][data-name="{name}"]')
    await expect(item.get_by_test_id("doc-title")).to_have_text("Garden plans")

    # A prefix of the word being typed finds it as you type (no Enter).
    await home.get_by_test_id("search-input").fill("")
    await home.get_by_test_id("search-input").press_sequentially("marigol")
    await expect(result.locator("mark")).to_have_text(["marigoldix"])

    # The keyboard: down to the result, Escape back, Escape again clears.
    box = home.get_by_test_id("search-input")
    await box.press("ArrowDown")
    await expect(link).to_be_focused()
    await link.press("Escape")
    await expect(box).to_be_focused()
    await box.press("Escape")
    await expect(box).to_have_value("")
    await expect(home.get_by_test_id("search-result")).to_have_count(0)

    # Following a result opens the document.
    await search_until_found(home, "marigoldix", name)
    await link.click()
    await home.wait_for_url(f"**/d/{name}")


async def test_no_match_and_errors_are_said(people: People, server: ServerProcess) -> None:
    home = await (await people.new("Bo")).new_page()
    await home.goto(server.url + "/")
    box = home.get_by_test_id("search-input")
    await box.fill("zzqxnothingmatchesthis")
    await box.press("Enter")
    await expect(home.get_by_test_id("search-status")).to_contain_text("No documents match")
    await expect(home.get_by_test_id("search-result")).to_have_count(0)
    # Only punctuation: nothing to search for, said as no match (never an error page).
    await box.fill('"*(')
    await box.press("Enter")
    await expect(home.get_by_test_id("search-status")).to_contain_text("No documents match")


async def test_results_carry_the_page_token_and_a_token_sees_only_its_documents(
    people: People, tmp_path: Path
) -> None:
    srv = ServerProcess(tmp_path / "tandem.db", *FAST, "--auth-secret", SECRET).start()
    try:
        admin = mint(SECRET, "*", Role.admin, 3600)
        reader = mint(SECRET, "team/", Role.read, 3600)
        writer = await people.new("Cy")
        for name in ("team/ours", "other/theirs"):
            editor = await open_editor(writer, srv.url, name, admin)
            await focus_end(editor)
            await type_keys(editor, f"the pelicanthus of {name}")
            await expect(editor.get_by_test_id("save-status")).to_have_text(SAVED)
            await editor.close()

        home = await (await people.new("Di")).new_page()
        await home.goto(f"{srv.url}/?token={reader}")
        await search_until_found(home, "pelicanthus", "team/ours")
        await expect(home.get_by_test_id("search-result")).to_have_count(1)
        link = home.get_by_test_id("search-result-link")
        await expect(link).to_have_attribute("href", f"/d/team/ours?token={reader}")
    finally:
        srv.kill()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_search_is_accessible(people: People, server: ServerProcess, scheme: str) -> None:
    name = unique("a11y/search")
    context = await people.new("Ed", scheme)
    await write(context, server.url, name, "# Seen\n\nthe flamingoat stands")
    home = await context.new_page()
    await home.goto(server.url + "/")
    await search_until_found(home, "flamingoat", name)
    await expect(home.locator("html")).to_have_attribute("data-theme", scheme)
    await assert_no_violations(home, f"home page with search results ({scheme})")
