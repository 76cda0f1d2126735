"""Drive the web client in real Chromium (Debian's package) through Playwright's async API.

Playwright's own browser download does not work here, so Chromium is launched from
``/usr/bin/chromium`` (``TANDEM_CHROMIUM`` overrides it). The helpers follow the DOM contract
of ``client_web/README.md``: ``data-testid`` names, status texts and ``window.tandem``.
Timeouts are generous on purpose (a page can take 30 s to load on a small, busy machine); no
assertion depends on how fast anything is.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1200, "height": 800}

# The ``person`` fixture (tests/conftest.py): ``await person("Ada")`` is a new browser context.
NewPerson = Callable[..., Awaitable[BrowserContext]]

SAVED = "All changes saved"
# While not connected with edits the server lacks (save-tracker.js); the number of those edits,
# one per burst of typing, is the element's data-pending.
KEPT_ON_DEVICE = "Unsaved changes, kept on this device"

expect.set_options(timeout=TIMEOUT_MS)


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


async def new_person(
    browser: Browser, name: str, color: str | None = None, **options: Any
) -> BrowserContext:
    """A browser context is one person: their own localStorage, IndexedDB and service worker.

    The person's display name (and colour, one of identity.js's palette) is stored before the
    first page runs, unless the person already renamed themselves. ``options`` go to
    ``new_context`` (e.g. ``viewport``, ``color_scheme``, ``bypass_csp`` to inject axe-core).
    """
    options = {"viewport": VIEWPORT, "device_scale_factor": 1} | options
    context = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    identity = {"tandem:name": name} | ({"tandem:color": color} if color else {})
    # (a page's first about:blank has no localStorage: reading it there throws)
    script = f"""try {{
        for (const [key, value] of Object.entries({json.dumps(identity)})) {{
            if (localStorage.getItem(key) === null) localStorage.setItem(key, value)
        }}
    }} catch {{}}"""
    await context.add_init_script(script)
    return context


def editor_url(base_url: str, name: str, token: str | None = None) -> str:
    """The editor page of ``name``; with ``token``, the page passes it to the server."""
    return f"{base_url}/d/{name}" + (f"?token={token}" if token else "")


async def wait_ready(page: Page) -> None:
    """Until the editor page has built ``window.tandem``."""
    await page.wait_for_function("() => window.tandem !== undefined")


async def open_editor(
    context: BrowserContext, base_url: str, name: str, token: str | None = None
) -> Page:
    """A new tab on document ``name``, once it is connected and synced with the server."""
    page = await context.new_page()
    await page.goto(editor_url(base_url, name, token))
    await wait_ready(page)
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await page.wait_for_function("() => window.tandem.provider.synced")
    return page


async def evaluate_within(page: Page, script: str, timeout: float = TIMEOUT_MS / 1000) -> Any:
    """``page.evaluate`` for a script that waits on the page: Playwright gives it no timeout."""
    try:
        return await asyncio.wait_for(page.evaluate(script), timeout)
    except TimeoutError:
        raise AssertionError(f"no result within {timeout} s from {script}") from None


async def text_of(page: Page) -> str:
    """The document text (the DOM text of the editor also holds the remote cursors' labels)."""
    return await page.evaluate("() => window.tandem.ytext.toString()")


async def wait_text(page: Page, want: str) -> None:
    """Until the page's document text is exactly ``want``; a readable failure otherwise."""
    try:
        await page.wait_for_function(
            "want => window.tandem.ytext.toString() === want", arg=want, timeout=TIMEOUT_MS
        )
    except PlaywrightTimeout as error:
        have = await text_of(page)
        raise AssertionError(f"text is {have!r}, expected {want!r}") from error


async def wait_editor_shows(page: Page, want: str) -> None:
    """Until CodeMirror's own document (what is on screen) is exactly ``want``."""
    await page.wait_for_function(
        "want => window.tandem.view.state.doc.toString() === want", arg=want, timeout=TIMEOUT_MS
    )


async def focus_end(page: Page) -> None:
    """Click into the text and put the caret at the end of the document."""
    await page.locator("[data-testid=editor] .cm-content").click()
    await page.keyboard.press("Control+End")


async def focus_start(page: Page) -> None:
    await page.locator("[data-testid=editor] .cm-content").click()
    await page.keyboard.press("Control+Home")


async def type_keys(page: Page, text: str) -> None:
    """Type ``text`` key by key, as a person would (each key is its own edit)."""
    await page.keyboard.type(text)


async def status(page: Page) -> dict[str, Any]:
    return await page.evaluate("() => window.tandem.status()")


async def participant_names(page: Page) -> list[str]:
    return await page.get_by_test_id("participant").locator(".participant-name").all_inner_texts()


async def flush_indexeddb(page: Page) -> None:
    """Until every update y-indexeddb has queued is committed to the page's IndexedDB.

    A read transaction on the same store starts only after the write transactions opened
    before it have finished, so its completion means they are on disk.
    """
    await evaluate_within(
        page,
        """() => new Promise((resolve, reject) => {
            const tx = window.tandem.persistence.db.transaction(['updates'], 'readonly')
            tx.objectStore('updates').count()
            tx.oncomplete = () => resolve(true)
            tx.onerror = () => reject(tx.error)
        })""",
    )


async def service_worker_ready(page: Page) -> str:
    """Until the page's service worker is active (its offline copy is complete); its script URL."""
    return await page.evaluate("async () => (await navigator.serviceWorker.ready).active.scriptURL")
