""" "Show authors" in real Chromium: two people, each with a token naming them, type a line each;
with the toggle on, each person's characters (and only those) are marked with their name in a
colour of their own, the legend lists both, the marks follow new typing, the choice survives a
reload, the History panel says who edited since a version, and axe finds nothing to fault in
either theme."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from server.auth import Role, mint

from .browser import SAVED, NewPerson, focus_end, open_editor, type_keys, wait_text
from .conftest import ServerProcess, unique
from .test_browser_a11y import assert_no_violations

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-authors-secret-long-enough-for-hs256"
ADA_LINE = "Ada wrote this line"
BOB_LINE = "Bob wrote the next one"

# The text under each data-author mark of the editor, without the remote carets' name labels
# (y-codemirror.next draws them inside the text).
MARKED = """() => {
    const found = {}
    const selector = '[data-testid=editor] .cm-content [data-author]'
    for (const mark of document.querySelectorAll(selector)) {
        const copy = mark.cloneNode(true)
        for (const caret of copy.querySelectorAll('.cm-ySelectionCaret')) caret.remove()
        const author = mark.dataset.author
        found[author] = (found[author] ?? '') + copy.textContent
    }
    return found
}"""
COLOURS = """() => {
    const colours = {}
    const selector = '[data-testid=editor] .cm-content [data-author]'
    for (const mark of document.querySelectorAll(selector)) {
        colours[mark.dataset.author] = getComputedStyle(mark).backgroundColor
    }
    return colours
}"""


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db: Path = tmp_path_factory.mktemp("browser-authors") / "tandem.db"
    srv = ServerProcess(db, "--auth-secret", SECRET).start()
    yield srv
    srv.kill()


def token(name: str, subject: str) -> str:
    return mint(SECRET, name, Role.write, 3600, subject)


async def marked(page: Page) -> dict[str, str]:
    return dict(await page.evaluate(MARKED))


async def wait_marked(page: Page, want: dict[str, str]) -> None:
    """Until the marks cover exactly these texts; a readable failure otherwise."""
    try:
        await page.wait_for_function(
            f"want => JSON.stringify(({MARKED})()) === JSON.stringify(want)", arg=want
        )
    except PlaywrightTimeout as error:
        raise AssertionError(f"marked {await marked(page)!r}, expected {want!r}") from error


async def two_lines(
    person: NewPerson, locked: ServerProcess, **options: Any
) -> tuple[str, Page, Page]:
    """Ada and Bob on one document, each having typed a line of their own."""
    name = unique("authors")
    ada = await open_editor(
        await person("Ada Browser", **options),
        locked.url,
        name,
        token(name, "Ada"),
    )
    bob = await open_editor(
        await person("Bob Browser", **options),
        locked.url,
        name,
        token(name, "Bob"),
    )
    await focus_end(ada)
    await type_keys(ada, ADA_LINE)
    await ada.keyboard.press("Enter")
    await wait_text(bob, ADA_LINE + "\n")
    await focus_end(bob)
    await type_keys(bob, BOB_LINE)
    await wait_text(ada, f"{ADA_LINE}\n{BOB_LINE}")
    for page in (ada, bob):
        await expect(page.get_by_test_id("save-status")).to_have_text(SAVED)
    return name, ada, bob


async def test_show_authors_marks_each_persons_text_in_their_colour(
    person: NewPerson, locked: ServerProcess
) -> None:
    name, ada, bob = await two_lines(person, locked)
    toggle = ada.get_by_test_id("show-authors")
    await expect(toggle).not_to_be_checked()  # off by default
    assert await marked(ada) == {}
    await expect(ada.get_by_test_id("authors-legend")).to_be_hidden()

    await toggle.check()
    await wait_marked(ada, {"Ada": ADA_LINE, "Bob": BOB_LINE})
    colours = await ada.evaluate(COLOURS)
    assert colours["Ada"] != colours["Bob"]
    legend = ada.get_by_test_id("author-entry")
    await expect(legend).to_have_count(2)
    assert sorted(await legend.locator(".author-name").all_inner_texts()) == ["Ada", "Bob"]
    # the legend's swatch is the colour of the marks' underline
    swatch = (
        await legend.filter(has_text="Bob")
        .locator(".author-swatch")
        .evaluate("el => getComputedStyle(el).backgroundColor")
    )
    bob_line = await ada.locator("[data-author=Bob]").first.evaluate(
        "el => getComputedStyle(el).getPropertyValue('--author-line').trim()"
    )
    assert swatch != "rgba(0, 0, 0, 0)" and bob_line

    # Live: what Bob types next is his, what Ada types in the middle of his line hers.
    await type_keys(bob, "!")
    await wait_marked(ada, {"Ada": ADA_LINE, "Bob": BOB_LINE + "!"})
    await focus_end(ada)
    await ada.keyboard.press("Home")
    await type_keys(ada, ">")
    await wait_marked(ada, {"Ada": ADA_LINE + ">", "Bob": BOB_LINE + "!"})

    # Remembered by this browser; Bob's page is still off.
    await ada.reload()
    await expect(ada.get_by_test_id("show-authors")).to_be_checked()
    await wait_marked(ada, {"Ada": ADA_LINE + ">", "Bob": BOB_LINE + "!"})
    await expect(bob.get_by_test_id("show-authors")).not_to_be_checked()
    assert await marked(bob) == {}

    # What the server writes itself (an append over HTTP) has no author: "Unknown".
    status = await ada.evaluate(
        """async ([name, token]) => (await fetch(`/api/docs/${name}/append`, {
            method: 'POST', body: ' (server)', headers: { Authorization: `Bearer ${token}` }
        })).status""",
        [name, token(name, "Ada")],
    )
    assert status == 200
    await wait_marked(ada, {"Ada": ADA_LINE + ">", "Bob": BOB_LINE + "!", "Unknown": " (server)"})
    await expect(ada.get_by_test_id("author-entry")).to_have_count(3)

    await toggle.uncheck()
    await wait_marked(ada, {})
    await expect(ada.get_by_test_id("authors-legend")).to_be_hidden()


async def test_the_history_panel_says_who_edited_since_a_version(
    person: NewPerson, locked: ServerProcess
) -> None:
    _, ada, bob = await two_lines(person, locked)
    await ada.get_by_test_id("history-button").click()
    await ada.get_by_test_id("save-version").click()
    await ada.get_by_test_id("save-version-confirm").click()
    await expect(ada.get_by_test_id("version-item")).to_have_count(1)
    await ada.get_by_test_id("version-item").click()
    editors = ada.get_by_test_id("version-editors")
    await expect(editors).to_be_hidden()  # nothing changed since

    await type_keys(bob, " (Bob again)")
    await expect(bob.get_by_test_id("save-status")).to_have_text(SAVED)
    await expect(editors).to_have_text("Edited by Bob")
    await focus_end(ada)  # the focus was in the History panel
    await type_keys(ada, " and Ada")
    await expect(editors).to_have_text("Edited by Ada, Bob")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_author_marks_and_legend_pass_axe(
    person: NewPerson, locked: ServerProcess, scheme: str
) -> None:
    _, ada, _ = await two_lines(person, locked, color_scheme=scheme, bypass_csp=True)
    await expect(ada.locator("html")).to_have_attribute("data-theme", scheme)
    await ada.get_by_test_id("show-authors").check()
    await wait_marked(ada, {"Ada": ADA_LINE, "Bob": BOB_LINE})
    await assert_no_violations(ada, f"the editor with authors shown ({scheme})")
