"""Taking the document out: exports, versions, diff, restore, import — over HTTP and the CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Doc, Text

from server import protocol as p
from server.storage import VersionInfo
from server.versioning import DAY, HOUR, versions_to_drop
from testkit.serverproc import REPO_ROOT
from testkit.traces import SVELTE, load_trace
from testkit.yclient import YClient

from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def api(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: object
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.read(), resp.headers


async def typed_document(server: ServerProcess, http: aiohttp.ClientSession, text: str) -> str:
    name = unique("hist")
    client = await YClient(http, server.ws_url, name).connect()
    await client.append(text)
    await client.wait_acked()
    await client.close()
    return name


async def test_every_export_of_a_real_trace_typed_by_node_clients_matches_it(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    room = unique("exported")
    expected = load_trace()["endContent"]
    for client in ("a", "b"):
        await node.call("open", client=client, url=server.ws_url, room=room, params={"ack": "1"})
        await node.call("wait_synced", client=client)
    await node.call("replay", clients=["a", "b"], trace=str(SVELTE), block=100)
    await node.call("set_map", client="a", map="meta", key="title", value="Svelte")
    for client in ("a", "b"):
        await node.call("wait_acked", client=client, timeout=120)
    base = f"{server.url}/api/docs/{room}/export"

    for fmt, ctype in (("txt", "text/plain"), ("md", "text/markdown")):
        status, body, headers = await api(http, "GET", f"{base}?format={fmt}")
        assert status == 200 and headers["Content-Type"].startswith(ctype)
        assert body.decode() == expected
        assert f'filename="{room}.{fmt}"' in headers["Content-Disposition"]

    status, body, _ = await api(http, "GET", f"{base}?format=json")
    doc = json.loads(body)
    assert doc["text"] == expected and doc["name"] == room and doc["version"] is None
    assert doc["size_bytes"] > 0 and doc["updated_at"] > 0

    status, body, headers = await api(http, "GET", f"{base}?format=html")
    assert headers["Content-Type"].startswith("text/html")
    assert "<html" in body.decode() and "<script" not in body.decode()

    # The Yjs export loads in any Yjs app, with every shared type.
    status, body, headers = await api(http, "GET", f"{base}?format=yjs")
    assert headers["Content-Type"] == "application/octet-stream"
    await node.call("open", client="fresh", url=server.ws_url, room=unique("empty"))
    await node.call("wait_synced", client="fresh")
    await node.call("apply", client="fresh", update_b64=base64.b64encode(body).decode())
    assert await node.call("text", client="fresh") == expected
    assert await node.call("get_map", client="fresh", map="meta") == {"title": "Svelte"}


class _ActiveMarkup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "img", "iframe", "object", "embed"):
            self.found.append(tag)
        self.found += [name for name, _ in attrs if name.startswith("on")]
        self.found += [f"{n}={v}" for n, v in attrs if v and v.strip().startswith("javascript:")]


async def test_the_html_export_contains_no_active_markup(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    hostile = (
        "# Notes\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) and **bold**\n"
    )
    name = await typed_document(server, http, hostile)
    status, body, headers = await api(
        http, "GET", f"{server.url}/api/docs/{name}/export?format=html"
    )
    assert status == 200
    page = body.decode()
    parser = _ActiveMarkup()
    parser.feed(page)
    assert parser.found == []
    assert "&lt;script&gt;" in page and "<strong>bold</strong>" in page
    assert "default-src 'none'" in page  # the page itself forbids scripts wherever it is opened
    assert "sandbox" in headers["Content-Security-Policy"]


async def test_versions_are_listed_newest_first_and_keep_their_old_text(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("versions")
    client = await YClient(http, server.ws_url, name).connect()
    await client.append("first draft\n")
    await client.wait_acked()
    base = f"{server.url}/api/docs/{name}/versions"
    status, body, _ = await api(http, "POST", base, json={"label": "draft 1"})
    assert status == 201
    first = json.loads(body)["id"]
    await client.append("second paragraph\n")
    await client.wait_acked()
    status, body, _ = await api(http, "POST", base)  # no body: an unnamed version
    second = json.loads(body)["id"]

    status, body, _ = await api(http, "GET", base)
    listed = json.loads(body)
    assert [v["id"] for v in listed] == [second, first]
    assert listed[1]["label"] == "draft 1" and listed[0]["label"] is None
    assert all(v["size_bytes"] > 0 and v["auto"] is False for v in listed)

    await client.append("third\n")
    await client.wait_acked()
    export = f"{server.url}/api/docs/{name}/export?format=txt"
    assert (await api(http, "GET", f"{export}&version={first}"))[1] == b"first draft\n"
    status, body, _ = await api(http, "GET", f"{export.replace('txt', 'json')}&version={first}")
    assert json.loads(body)["version"] == first

    status, body, headers = await api(http, "GET", f"{base}/{first}/diff/live")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    diff = body.decode()
    assert "+second paragraph" in diff and "+third" in diff and " first draft" in diff
    assert diff.startswith(f"--- {name} (version {first})\n+++ {name} (live)\n")
    await client.close()


async def test_a_restore_keeps_the_embeds_other_apps_put_in_the_text(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    """pycrdt counts an embed as one unit of its text index and ``str()`` leaves it out: edits
    planned on ``str()`` would land one place early past every embed and corrupt the text."""
    name = unique("restore-embed")
    client = await YClient(http, server.ws_url, name).connect()
    captured: list[bytes] = []
    subscription = client.doc.observe(lambda event: captured.append(event.update))
    client.text.insert(0, "intro line\nkept paragraph\nlast line\n")
    client.text.insert_embed(5, {"image": "chart.png"})  # another app's embed, in line 1
    client.doc.unobserve(subscription)
    for update in captured:
        await client._send_update_bearing(p.encode_sync_update(update))
    await client.wait_acked()
    base = f"{server.url}/api/docs/{name}/versions"
    good = json.loads((await api(http, "POST", base, json={"label": "good"}))[1])["id"]
    await client.append("a bad addition\n")
    await client.wait_acked()
    status, _body, _ = await api(http, "POST", f"{base}/{good}/restore")
    assert status == 200
    export = f"{server.url}/api/docs/{name}/export?format=txt"
    assert (await api(http, "GET", export))[1] == b"intro line\nkept paragraph\nlast line\n"
    # The embed is still where it was.
    state = (await api(http, "GET", export.replace("txt", "yjs")))[1]
    doc = Doc()
    doc.apply_update(state)
    assert doc.get("content", type=Text).diff() == [
        ("intro", None),
        ({"image": "chart.png"}, None),
        (" line\nkept paragraph\nlast line\n", None),
    ]
    await client.close()


async def test_a_restore_reaches_connected_editors_and_can_itself_be_undone(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("restore")
    await node.call("open", client="ed", url=server.ws_url, room=name, params={"ack": "1"})
    await node.call("wait_synced", client="ed")
    await node.call("insert", client="ed", pos=0, text="Intro\nGood paragraph.\nOutro\n")
    await node.call("wait_acked", client="ed")
    base = f"{server.url}/api/docs/{name}/versions"
    good = json.loads((await api(http, "POST", base, json={"label": "good"}))[1])["id"]
    await node.call("delete", client="ed", pos=6, len=16)
    await node.call("insert", client="ed", pos=6, text="Bad rewrite.\n")
    await node.call("wait_acked", client="ed")
    assert await node.call("text", client="ed") == "Intro\nBad rewrite.\nOutro\n"

    status, body, _ = await api(http, "POST", f"{base}/{good}/restore")
    assert status == 200
    before = json.loads(body)["saved_before"]
    # The connected editor receives the restore as an ordinary edit, at once.
    await node.call("wait_text", client="ed", text="Intro\nGood paragraph.\nOutro\n")
    # The state before the restore was saved: restoring it undoes the restore.
    status, body, _ = await api(http, "POST", f"{base}/{before}/restore")
    assert status == 200
    await node.call("wait_text", client="ed", text="Intro\nBad rewrite.\nOutro\n")
    listing = json.loads((await api(http, "GET", base))[1])
    # Named by the restored version's number in this document, as the History panel shows it.
    number = next(v["number"] for v in listing if v["id"] == good)
    assert f"before restoring version {number}" in [v["label"] for v in listing]


async def test_import_fills_only_new_or_empty_documents(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("import")
    url = f"{server.url}/api/docs/{name}/import"
    status, body, _ = await api(http, "POST", url, data="# Imported\n\nHello ünïcode ✓\n")
    assert status == 201, body
    reader = await YClient(http, server.ws_url, name, ack=False).connect()
    assert reader.content() == "# Imported\n\nHello ünïcode ✓\n"
    await reader.close()
    status, body, _ = await api(http, "POST", url, data="again")
    assert status == 409 and "already has content" in json.loads(body)["error"]
    status, body, _ = await api(http, "POST", url, data=b"\xff\xfe")
    assert status == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/docs/{name}/export?format=pdf", 400),
        ("/api/docs/never-{name}/export?format=md", 404),
        ("/api/docs/{name}/export?format=md&version=999999", 404),
        ("/api/docs/{name}/export?format=md&version=abc", 404),
        ("/api/docs/never-{name}/versions", 404),
        ("/api/docs/{name}/versions/999999/diff/live", 404),
    ],
)
async def test_bad_requests_get_json_errors(
    server: ServerProcess, http: aiohttp.ClientSession, path: str, status: int
) -> None:
    name = await typed_document(server, http, "something")
    got, body, headers = await api(http, "GET", server.url + path.format(name=name))
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"]


async def test_a_bad_version_body_or_restore_target_is_refused(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await typed_document(server, http, "x")
    base = f"{server.url}/api/docs/{name}/versions"
    assert (await api(http, "POST", base, data="not json"))[0] == 400
    assert (await api(http, "POST", base, json={"label": 5}))[0] == 400
    assert (await api(http, "POST", base, json=["x"]))[0] == 400
    assert (await api(http, "POST", f"{base}/424242/restore"))[0] == 404


async def test_automatic_versions_follow_bursts_of_editing(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--version-quiet", "1", "--version-interval", "60").start()
    client = await YClient(http, srv.ws_url, "auto").connect()
    await client.append("a burst of typing")
    await client.wait_acked()

    async def auto_versions() -> list[dict]:
        _, body, _ = await api(http, "GET", f"{srv.url}/api/docs/auto/versions")
        return [v for v in json.loads(body) if v["auto"]]

    [first] = await eventually(auto_versions)
    await client.append(" and another")
    await client.wait_acked()
    newer = await eventually(lambda: _longer_than(auto_versions(), 1))
    assert newer[0]["created_at"] >= first["created_at"]
    # No edits, no new versions.
    count = len(await auto_versions())
    await asyncio.sleep(2.5)
    assert len(await auto_versions()) == count
    await client.close()


async def _longer_than(values: object, n: int) -> object:
    got = await values  # type: ignore[misc]
    return got if len(got) > n else None


def test_old_automatic_versions_are_thinned_and_named_ones_kept() -> None:
    now = 100 * DAY
    versions = [
        VersionInfo(1, now - 60, None, 10, True),  # last hour: kept
        VersionInfo(2, now - 120, None, 10, True),  # last hour: kept
        VersionInfo(3, now - 3 * HOUR + 10, None, 10, True),  # same hour as 4, newer: kept
        VersionInfo(4, now - 3 * HOUR + 5, None, 10, True),  # dropped
        VersionInfo(5, now - 3 * HOUR + 1, "named", 10, False),  # named: always kept
        VersionInfo(6, now - 10 * DAY + 100, None, 10, True),  # same day as 7, newer: kept
        VersionInfo(7, now - 10 * DAY + 50, None, 10, True),  # dropped
    ]
    assert sorted(versions_to_drop(versions, now)) == [4, 7]


def tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )


async def test_the_cli_works_on_the_database_while_the_server_runs(
    tmp_path: Path, server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory().start()
    db = str(srv.db)
    writer = await YClient(http, srv.ws_url, "team/plan").connect()
    await writer.append("# Plan\n\n- ship it\n")
    await writer.wait_acked()
    await api(http, "POST", f"{srv.url}/api/docs/team/plan/versions", json={"label": "v1"})

    listing = tandem("list", "--db", db)
    assert listing.returncode == 0 and "team/plan" in listing.stdout
    versions = tandem("versions", "team/plan", "--db", db)
    assert versions.returncode == 0 and "v1" in versions.stdout and "named" in versions.stdout
    out = tmp_path / "plan.html"
    exported = tandem("export", "team/plan", "--format", "html", "-o", str(out), "--db", db)
    assert exported.returncode == 0, exported.stderr
    assert '<h1 id="plan">Plan</h1>' in out.read_text()  # headings carry their anchor
    assert tandem("export", "team/plan", "--db", db).stdout == "# Plan\n\n- ship it\n"

    source = tmp_path / "notes.md"
    source.write_text("imported from a file\n")
    imported = tandem("import", "cli/notes", str(source), "--db", db)
    assert imported.returncode == 0, imported.stderr
    refused = tandem("import", "team/plan", str(source), "--db", db)
    assert refused.returncode != 0 and "already has content" in refused.stderr
    reader = await YClient(http, srv.ws_url, "cli/notes", ack=False).connect()
    assert reader.content() == "imported from a file\n"
    await reader.close()

    missing = tandem("export", "nope", "--db", db)
    assert missing.returncode != 0 and "no document named 'nope'" in missing.stderr
    bad = tandem("export", "../etc", "--db", db)
    assert bad.returncode != 0 and "document name" in bad.stderr
    await writer.close()
