"""Images in the browser editor, in real Chromium: pasted and dropped images are uploaded and
linked in the text, everyone's page shows them (readers with a token too), failures and offline
pastes say so and insert nothing, and an SVG opened alone runs nothing."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from server.auth import Role, mint

from . import imagefiles
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

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SECRET = "browser-images-secret-long-enough-for-hs256"
OFFLINE_MESSAGE = "Images need the server: try again when you are back online"
LINK = re.compile(r"!\[([^\]]*)\]\((/api/docs/[^)]+/files/[A-Za-z0-9_-]{22})\)")


_TRANSFER = """({ bytes, type, name }) => {
    const transfer = new DataTransfer()
    transfer.items.add(new File([new Uint8Array(bytes)], name, { type }))
    return transfer
}"""


async def paste_image(page: Page, data: bytes, content_type: str, file_name: str) -> bool:
    """A paste of one image file, as the browser makes it; whether the page took it."""
    return bool(
        await page.evaluate(
            f"""(file) => {{
                const clipboardData = ({_TRANSFER})(file)
                const init = {{ clipboardData, bubbles: true, cancelable: true }}
                const event = new ClipboardEvent('paste', init)
                document.querySelector('[data-testid=editor] .cm-content').dispatchEvent(event)
                return event.defaultPrevented
            }}""",
            {"bytes": list(data), "type": content_type, "name": file_name},
        )
    )


async def drop_image(page: Page, data: bytes, content_type: str, file_name: str) -> bool:
    """A drop of one image file at the end of the text."""
    return bool(
        await page.evaluate(
            f"""(file) => {{
                const dataTransfer = ({_TRANSFER})(file)
                const view = window.tandem.view
                const end = view.coordsAtPos(view.state.doc.length)
                const init = {{ dataTransfer, bubbles: true, cancelable: true,
                    clientX: end.right + 1, clientY: (end.top + end.bottom) / 2 }}
                view.contentDOM.dispatchEvent(new DragEvent('dragover', init))
                const event = new DragEvent('drop', init)
                view.contentDOM.dispatchEvent(event)
                return event.defaultPrevented
            }}""",
            {"bytes": list(data), "type": content_type, "name": file_name},
        )
    )


async def links_in(page: Page, count: int) -> list[tuple[str, str]]:
    """Until the page's text holds ``count`` image links; (alt, url) of each."""
    await page.wait_for_function(
        "([source, count]) => (window.tandem.ytext.toString().match(new RegExp(source, 'g')) "
        "?? []).length === count",
        arg=[LINK.pattern, count],
    )
    return LINK.findall(await text_of(page))


async def fetched(page: Page, url: str) -> dict[str, object]:
    """What a fetch of ``url`` from the page gets."""
    result: dict[str, object] = await page.evaluate(
        """async (url) => {
            const response = await fetch(url)
            const body = new Uint8Array(await response.arrayBuffer())
            return { status: response.status, type: response.headers.get('Content-Type'),
                     size: body.length }
        }""",
        url,
    )
    return result


async def preview_images_loaded(page: Page, count: int) -> list[int] | None:
    """In View mode, until ``count`` images of the preview have loaded; their natural widths.
    None when this build has no preview."""
    if await page.get_by_test_id("preview").count() == 0:
        return None
    await page.get_by_test_id("view-mode-view").click()
    await page.wait_for_function(
        """(count) => {
            const images = [...document.querySelectorAll('[data-testid=preview] img')]
            const loaded = (img) => img.complete && img.naturalWidth > 0
            return images.length === count && images.every(loaded)
        }""",
        arg=count,
    )
    widths: list[int] = await page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=preview] img')].map(i => i.naturalWidth)"
    )
    return widths


# --------------------------------------------------------------------------------------------


async def test_a_pasted_and_a_dropped_image_are_linked_and_everyone_sees_them(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("images/holiday")
    ada = await open_editor(await person("Ada"), server.url, name)
    bob = await open_editor(await person("Bob"), server.url, name)
    await focus_end(ada)
    await type_keys(ada, "Holiday:\n")
    await wait_text(bob, "Holiday:\n")

    assert await paste_image(ada, imagefiles.png(3, 2), "image/png", "beach photo.png")
    [(alt, url)] = await links_in(ada, 1)
    assert alt == "beach photo" and url.startswith(f"/api/docs/{name}/files/")
    assert await text_of(ada) == f"Holiday:\n![beach photo]({url})"
    await expect(ada.get_by_test_id("notice")).to_have_text("Image added.")
    # the caret is after the link: typing goes on from there
    await type_keys(ada, "\n")
    assert await drop_image(ada, imagefiles.GIF, "image/gif", "dot.gif")
    links = await links_in(ada, 2)
    assert links[0] == (alt, url) and links[1][0] == "dot"
    await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)

    # Bob's page has the same text, and the images load there.
    assert await links_in(bob, 2) == links
    assert await fetched(bob, url) == {
        "status": 200,
        "type": "image/png",
        "size": len(imagefiles.png(3, 2)),
    }
    assert (await fetched(bob, links[1][1]))["type"] == "image/gif"
    widths = await preview_images_loaded(bob, 2)
    assert widths in (None, [3, 1])


async def test_an_offline_paste_says_images_need_the_server_and_inserts_nothing(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("images/offline")
    context = await person("Ada")
    ada = await open_editor(context, server.url, name)
    await focus_end(ada)
    await type_keys(ada, "Offline notes")
    await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)
    await context.set_offline(True)
    await expect(ada.get_by_test_id("connection-status")).to_have_text("Offline")
    assert await paste_image(ada, imagefiles.png(), "image/png", "shot.png")
    notice = ada.get_by_test_id("notice")
    await expect(notice).to_have_text(OFFLINE_MESSAGE)
    await expect(notice).to_have_attribute("data-kind", "error")
    assert await text_of(ada) == "Offline notes"
    # a text paste still pastes text
    await context.set_offline(False)
    await expect(ada.get_by_test_id("connection-status")).to_have_text("Connected")


async def test_with_tokens_a_refused_upload_says_why_and_readers_see_the_images(
    server_factory: type[ServerProcess], person: NewPerson
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET, "--max-file-bytes", "4096").start()
    name = unique("images/tokens")
    writer = mint(SECRET, name, Role.write, 3600)
    reader = mint(SECRET, name, Role.read, 3600)
    ada = await open_editor(await person("Ada"), srv.url, name, token=writer)
    await focus_end(ada)
    await type_keys(ada, "Chart: ")
    await expect(ada.get_by_test_id("save-status")).to_have_text(SAVED)

    assert await paste_image(ada, imagefiles.noisy_png(60, 60), "image/png", "big.png")
    notice = ada.get_by_test_id("notice")
    await expect(notice).to_contain_text("This image is too large for the server")
    await expect(notice).to_have_attribute("data-kind", "error")
    assert await text_of(ada) == "Chart: "
    assert await paste_image(ada, b"<html>not an image</html>", "image/png", "fake.png")
    await expect(notice).to_contain_text("Only PNG, JPEG, GIF, WebP and SVG images")
    assert await text_of(ada) == "Chart: "

    assert await paste_image(ada, imagefiles.SVG, "image/svg+xml", "chart.svg")
    [(_, url)] = await links_in(ada, 1)
    text = await text_of(ada)
    assert writer not in text and "?token=" not in text  # the text is everyone's

    bob = await open_editor(await person("Bob"), srv.url, name, token=reader)
    assert await links_in(bob, 1) == [("chart", url)]
    # the link itself needs a token; the page's goes with the images it shows
    assert (await fetched(bob, url))["status"] == 401
    assert (await fetched(bob, f"{url}?token={reader}"))["type"] == "image/svg+xml"
    assert await preview_images_loaded(bob, 1) in (None, [4])
    # a reader adds no image: nothing is uploaded, nothing inserted
    await paste_image(bob, imagefiles.png(), "image/png", "mine.png")
    await bob.wait_for_timeout(300)
    await expect(bob.get_by_test_id("notice")).to_be_hidden()
    assert await text_of(bob) == await text_of(ada) == text


async def test_an_svg_opened_on_its_own_runs_no_script_and_loads_nothing(
    server: ServerProcess, person: NewPerson
) -> None:
    name = unique("images/svg")
    context = await person("Ada")
    ada = await open_editor(context, server.url, name)
    await focus_end(ada)
    await type_keys(ada, "Logo: ")
    hostile = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
        b"onload=\"document.title = 'pwned-onload'; fetch('/api/docs?from=onload')\">"
        b"<script>document.title = 'pwned-script'; fetch('/api/docs?from=script')</script>"
        b'<image href="/api/docs?from=image" width="1" height="1"/>'
        b'<rect width="10" height="10" fill="#c33"/></svg>'
    )
    assert await paste_image(ada, hostile, "image/svg+xml", "logo.svg")
    [(_, url)] = await links_in(ada, 1)

    tab = await context.new_page()
    # What the page tries (Chromium reports requests its CSP then blocks) and what it gets.
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    blocked: list[str] = []
    tab.on("requestfailed", lambda request: blocked.append(f"{request.url} {request.failure}"))
    answered: list[str] = []
    tab.on("response", lambda response: answered.append(response.url))
    response = await tab.goto(f"{server.url}{url}")
    assert response is not None and response.status == 200
    await tab.wait_for_timeout(500)
    assert "pwned" not in await tab.title()
    assert answered == [f"{server.url}{url}"], answered
    # the <image>'s load was refused by the CSP before it left; no script ran to fetch anything
    assert requested[1:] == [f"{server.url}/api/docs?from=image"], requested
    assert blocked == [f"{server.url}/api/docs?from=image csp"], blocked
