"""Reading and writing over HTTP: the Yjs state, a posted update, the text replaced or appended
to — against a real server, with real y-websocket editors (and pycrdt peers) in the document."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Doc, Text

from server import protocol as p
from server.auth import Role, mint
from server.storage.sqlite import FAULT_FILE_VARIABLE
from server.updates import check_state_vector, check_update
from testkit.serverproc import REPO_ROOT
from testkit.yclient import YClient

from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness
from .ycraft import insert_text

SECRET = "http-write-secret-that-is-long-enough-for-hs256"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def request(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: object
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.read(), resp.headers


async def editor(node: NodeHarness, server: ServerProcess, client: str, room: str) -> None:
    """A y-websocket v3 editor with the "saved" acks, synced."""
    await node.call("open", client=client, url=server.ws_url, room=room, params={"ack": "1"})
    await node.call("wait_synced", client=client, timeout=120)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def clocks(state_vector_b64: str) -> dict[int, int]:
    return check_state_vector(base64.b64decode(state_vector_b64))


def text_of(update: bytes) -> str:
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get("content", type=Text))


def stored_text(db: Path, name: str) -> str:
    """What the SQLite file holds of the document, read by another process than the server's."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data FROM updates WHERE doc = ? ORDER BY id", (name,))
        doc = Doc()
        for (data,) in rows:
            doc.apply_update(data)
    return str(doc.get("content", type=Text))


def peer_updates(*parts: str) -> tuple[Doc, list[bytes]]:
    """A pycrdt peer that typed ``parts`` one after the other, and the update of each."""
    doc = Doc()
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for part in parts:
        text.insert(len(text), part)
    doc.unobserve(subscription)
    return doc, updates


# --- GET .../state ---------------------------------------------------------------------------


async def test_the_state_is_what_an_editor_has_and_with_a_state_vector_what_its_holder_lacks(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("state")
    url = f"{server.url}/api/docs/{name}/state"
    await editor(node, server, "ed", name)
    await node.call("insert", client="ed", pos=0, text="first part, ")
    await node.call("set_map", client="ed", map="meta", key="title", value="Notes")
    await node.call("wait_acked", client="ed")
    status, early, headers = await request(http, "GET", url)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    holder = Doc()
    holder.apply_update(early)
    assert str(holder.get("content", type=Text)) == "first part, "

    await node.call("insert", client="ed", pos=12, text="then ünïcode ✓ and more")
    await node.call("wait_acked", client="ed")
    expected = await node.call("text", client="ed")
    # The whole state, applied to an empty Doc: the editor's text and state vector.
    status, whole, _ = await request(http, "GET", url)
    assert status == 200 and text_of(whole) == expected
    fresh = Doc()
    fresh.apply_update(whole)
    assert check_state_vector(fresh.get_state()) == clocks(
        await node.call("state_vector", client="ed")
    )
    # What the early holder lacks: only the new part, which brings it up to date.
    sv = b64(holder.get_state())
    status, diff, _ = await request(http, "GET", url, params={"sv": sv})
    assert status == 200 and len(diff) < len(whole)
    holder.apply_update(diff)
    assert str(holder.get("content", type=Text)) == expected
    # base64url without padding reads the same; an up-to-date holder lacks nothing.
    url_safe = base64.urlsafe_b64encode(holder.get_state()).decode().rstrip("=")
    status, nothing, _ = await request(http, "GET", url, params={"sv": url_safe})
    assert status == 200 and check_update(nothing).structs == []
    # A y-websocket client takes the answer as it is.
    await node.call("open", client="late", url=server.ws_url, room=unique("elsewhere"))
    await node.call("apply", client="late", update_b64=b64(whole))
    assert await node.call("text", client="late") == expected
    assert await node.call("get_map", client="late", map="meta") == {"title": "Notes"}


@pytest.mark.parametrize(
    "sv",
    [
        "not base64!",
        b64(b"\x05\x01"),  # five clients announced, one byte left
        b64(b"\x01\x01" + p.write_var_uint(2**32)),  # a clock yrs would wrap
        b64(b"\x00\x00"),  # trailing bytes
    ],
)
async def test_a_bad_state_vector_gets_400_with_a_json_error(
    server: ServerProcess, http: aiohttp.ClientSession, sv: str
) -> None:
    name = unique("bad-sv")
    _doc, updates = peer_updates("exists")
    await request(http, "POST", f"{server.url}/api/docs/{name}/update", data=updates[0])
    status, body, _ = await request(
        http, "GET", f"{server.url}/api/docs/{name}/state", params={"sv": sv}
    )
    assert status == 400
    assert json.loads(body)["error"].startswith("sv is not a base64 Yjs state vector")
    status, _, _ = await request(http, "GET", f"{server.url}/api/docs/never-{name}/state")
    assert status == 404


# --- POST .../update -------------------------------------------------------------------------


async def test_a_posted_update_reaches_editors_live_and_is_committed_before_the_answer(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("post")
    await editor(node, server, "live", name)
    await node.call("insert", client="live", pos=0, text="editor text\n")
    await node.call("wait_acked", client="live")
    # The peer starts from the server's state, as any client would, and adds a line.
    status, state, _ = await request(http, "GET", f"{server.url}/api/docs/{name}/state")
    peer = Doc()
    peer.apply_update(state)
    before = peer.get_state()
    text = peer.get("content", type=Text)
    text.insert(len(text), "from a script\n")
    update = peer.get_update(before)

    status, body, _ = await request(
        http, "POST", f"{server.url}/api/docs/{name}/update", data=update, headers=OCTETS
    )
    # Read the moment the answer is in: the commit came first.
    on_disk = stored_text(server.db, name)
    assert status == 200, body
    assert on_disk == "editor text\nfrom a script\n"
    assert clocks(json.loads(body)["state_vector"]) == check_state_vector(peer.get_state())
    await node.call("wait_text", client="live", text="editor text\nfrom a script\n")
    await editor(node, server, "fresh", name)
    assert await node.call("text", client="fresh") == "editor text\nfrom a script\n"
    # The same update again changes nothing (Yjs updates are idempotent): a retry is safe.
    status, _, _ = await request(http, "POST", f"{server.url}/api/docs/{name}/update", data=update)
    assert status == 200
    assert await node.call("text", client="fresh") == "editor text\nfrom a script\n"


async def test_hostile_update_bodies_are_refused_and_change_nothing(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--max-message-size", "4096").start()
    name = "hostile"
    url = f"{srv.url}/api/docs/{name}/update"
    _doc, updates = peer_updates("kept")
    assert (await request(http, "POST", url, data=updates[0]))[0] == 200
    refused = {
        b"garbage \xff\x00": 400,
        b"": 400,
        # Well formed, but at a clock past 2^32 that yrs would wrap: the strict reading refuses.
        insert_text(123456, 2**32 + 13, "forged"): 400,
        _doc.get_update() + b"\x00": 400,  # trailing bytes
        insert_text(123457, 0, "x" * 5000): 413,
    }
    for body, expected in refused.items():
        status, answer, headers = await request(http, "POST", url, data=body)
        assert status == expected, (body[:20], answer)
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(answer)["error"]
    status, body, _ = await request(http, "GET", f"{srv.url}/api/docs/{name}/export?format=txt")
    assert body == b"kept"
    assert "Traceback" not in srv.log_text()
    # The server goes on taking good updates.
    _doc2, more = peer_updates("more")
    assert (await request(http, "POST", url, data=more[0]))[0] == 200


async def test_an_update_whose_dependencies_are_missing_is_refused_whole(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    """A held update is acked over the socket that sent it, once what it builds on arrives;
    an HTTP caller waits for its answer instead, so such an update is refused (409), never
    held, and the answer carries the document's state vector to send the update against."""
    name = unique("missing")
    url = f"{server.url}/api/docs/{name}/update"
    doc, updates = peer_updates("one ", "two ", "three")
    assert (await request(http, "POST", url, data=updates[0]))[0] == 200
    status, body, _ = await request(http, "POST", url, data=updates[2])
    assert status == 409
    answer = json.loads(body)
    assert "builds on changes the document does not have" in answer["error"]
    server_state = base64.b64decode(answer["state_vector"])
    export = f"{server.url}/api/docs/{name}/export?format=txt"
    assert (await request(http, "GET", export))[1] == b"one "
    # What the server lacks, against its state vector: taken whole.
    status, body, _ = await request(http, "POST", url, data=doc.get_update(server_state))
    assert status == 200
    assert (await request(http, "GET", export))[1] == b"one two three"


async def test_a_deleted_documents_old_updates_are_refused(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("deleted")
    base = f"{server.url}/api/docs/{name}"
    old, updates = peer_updates("old incarnation", " and more of it")
    assert (await request(http, "POST", f"{base}/update", data=updates[0]))[0] == 200
    assert (await request(http, "DELETE", base))[0] == 200
    # Into the empty name, and into a new document of that name: never merged.
    status, body, _ = await request(http, "POST", f"{base}/update", data=updates[1])
    assert status == 410 and "deleted" in json.loads(body)["error"]
    assert (await request(http, "PUT", f"{base}/text", data="new incarnation"))[0] == 200
    for update in (updates[0], old.get_update()):
        status, body, _ = await request(http, "POST", f"{base}/update", data=update)
        assert status == 410
    status, sv_answer, _ = await request(
        http, "GET", f"{base}/state", params={"sv": b64(old.get_state())}
    )
    assert status == 410, sv_answer
    assert (await request(http, "GET", f"{base}/export?format=txt"))[1] == b"new incarnation"


async def test_writes_need_the_write_role_and_reads_the_read_role(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET).start()
    base = f"{srv.url}/api/docs/team/notes"

    def auth(role: Role, scope: str = "team/") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(SECRET, scope, role, 3600)}"}

    _doc, updates = peer_updates("by a writer")
    writes = [
        ("POST", f"{base}/update", updates[0]),
        ("PUT", f"{base}/text", b"replaced"),
        ("POST", f"{base}/append", b" appended"),
    ]
    for method, url, body in writes:
        assert (await request(http, method, url, data=body))[0] == 401
        status, answer, _ = await request(http, method, url, data=body, headers=auth(Role.read))
        assert status == 403 and "write role" in json.loads(answer)["error"]
        other = auth(Role.admin, "other/")
        assert (await request(http, method, url, data=body, headers=other))[0] == 403
    export = f"{base}/export?format=txt"
    assert (await request(http, "GET", export, headers=auth(Role.read)))[0] == 404
    for method, url, body in writes:
        status, answer, _ = await request(http, method, url, data=body, headers=auth(Role.write))
        assert status == 200, answer
    assert (await request(http, "GET", f"{base}/state"))[0] == 401
    status, state, _ = await request(http, "GET", f"{base}/state", headers=auth(Role.read))
    assert status == 200 and text_of(state) == "replaced appended"


async def test_a_write_the_store_cannot_commit_gets_503_and_is_committed_later(
    tmp_path: Path,
    server_factory: type[ServerProcess],
    http: aiohttp.ClientSession,
    node: NodeHarness,
) -> None:
    fault = tmp_path / "disk-is-full"
    srv = server_factory(
        tmp_path / "tandem.db", "--request-timeout", "4", env={FAULT_FILE_VARIABLE: str(fault)}
    ).start()
    name = "full-disk"
    await editor(node, srv, "live", name)
    fault.touch()
    _doc, updates = peer_updates("not durable yet")
    started = time.monotonic()
    status, body, _ = await request(
        http, "POST", f"{srv.url}/api/docs/{name}/update", data=updates[0]
    )
    waited = time.monotonic() - started
    assert status == 503 and "not committed" in json.loads(body)["error"]
    assert 2.5 < waited < 4, waited  # it waited for the commit, within the request's time
    status, body, _ = await request(
        http, "POST", f"{srv.url}/api/docs/{name}/append", data=" either"
    )
    assert status == 503
    assert stored_text(srv.db, name) == ""
    # Relayed all the same (as a client's update is), and committed once the store recovers.
    await node.call("wait_text", client="live", text="not durable yet either")
    fault.unlink()
    await eventually(lambda: stored_text(srv.db, name) == "not durable yet either")
    status, body, _ = await request(http, "POST", f"{srv.url}/api/docs/{name}/append", data="!")
    assert status == 200


# --- PUT .../text and POST .../append --------------------------------------------------------


async def test_put_text_changes_only_the_lines_that_differ(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    """What an editor types meanwhile elsewhere (offline here, so the server gets it only
    after the PUT) survives: the lines the PUT leaves alone keep their identity."""
    name = unique("put")
    url = f"{server.url}/api/docs/{name}/text"
    await editor(node, server, "a", name)
    await editor(node, server, "b", name)
    await node.call("insert", client="a", pos=0, text="alpha\nbeta\ngamma\n")
    await node.call("wait_text", client="b", text="alpha\nbeta\ngamma\n")
    await node.call("disconnect", client="b")
    await node.call("insert", client="b", pos=len("alpha\nbeta\ngamma"), text=" (typed offline)")

    status, body, headers = await request(http, "PUT", url, data="alpha\nBETA, rewritten\ngamma\n")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["length"] == len("alpha\nBETA, rewritten\ngamma\n")
    assert headers["ETag"] == answer["etag"]
    await node.call("wait_text", client="a", text="alpha\nBETA, rewritten\ngamma\n")
    await node.call("connect", client="b")
    merged = "alpha\nBETA, rewritten\ngamma (typed offline)\n"
    for client in ("a", "b"):
        await node.call("wait_text", client=client, text=merged)
    export = f"{server.url}/api/docs/{name}/export?format=txt"
    assert await eventually(lambda: _text_is(http, export, merged))


async def _text_is(http: aiohttp.ClientSession, url: str, expected: str) -> bool:
    return (await request(http, "GET", url))[1] == expected.encode()


async def test_if_match_refuses_a_stale_etag_and_takes_a_fresh_one(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("if-match")
    base = f"{server.url}/api/docs/{name}"
    await editor(node, server, "ed", name)
    await node.call("insert", client="ed", pos=0, text="draft\n")
    await node.call("wait_acked", client="ed")
    status, body, headers = await request(http, "GET", f"{base}/export?format=txt")
    assert status == 200 and body == b"draft\n"
    stale = headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', stale)
    await node.call("insert", client="ed", pos=6, text="an editor's line\n")
    await node.call("wait_acked", client="ed")

    for tag in (stale, f"W/{stale}", '"nope", ' + stale):
        status, body, _ = await request(
            http, "PUT", f"{base}/text", data="overwritten\n", headers={"If-Match": tag}
        )
        assert status == 412, tag
        assert "changed" in json.loads(body)["error"]
    status, body, headers = await request(http, "GET", f"{base}/export?format=txt")
    assert body == b"draft\nan editor's line\n"
    fresh = headers["ETag"]
    status, body, headers = await request(
        http,
        "PUT",
        f"{base}/text",
        data="draft, edited\nan editor's line\n",
        headers={"If-Match": f'"other", {fresh}'},
    )
    assert status == 200, body
    await node.call("wait_text", client="ed", text="draft, edited\nan editor's line\n")
    # The answer's ETag is the next export's: a chain of edits needs no GET in between.
    assert headers["ETag"] == (await request(http, "GET", f"{base}/export?format=txt"))[2]["ETag"]
    status, _, _ = await request(
        http, "PUT", f"{base}/text", data="last\n", headers={"If-Match": headers["ETag"]}
    )
    assert status == 200
    status, _, _ = await request(
        http, "PUT", f"{base}/text", data="any\n", headers={"If-Match": "*"}
    )
    assert status == 200
    await node.call("wait_text", client="ed", text="any\n")


async def test_put_text_keeps_the_embeds_of_the_lines_it_leaves_alone(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("put-embed")
    client = await YClient(http, server.ws_url, name).connect()
    captured: list[bytes] = []
    subscription = client.doc.observe(lambda event: captured.append(event.update))
    client.text.insert(0, "intro line\nsecond\n")
    client.text.insert_embed(5, {"image": "chart.png"})  # another app's, in line 1
    client.doc.unobserve(subscription)
    for update in captured:
        await client._send_update_bearing(p.encode_sync_update(update))
    await client.wait_acked()
    await client.close()
    base = f"{server.url}/api/docs/{name}"
    status, plain, _ = await request(http, "GET", f"{base}/export?format=txt")
    assert plain == b"intro line\nsecond\n"  # a txt export has no embeds
    status, body, _ = await request(http, "PUT", f"{base}/text", data=plain + b"third\n")
    assert status == 200, body
    doc = Doc()
    doc.apply_update((await request(http, "GET", f"{base}/state"))[1])
    assert doc.get("content", type=Text).diff() == [
        ("intro", None),
        ({"image": "chart.png"}, None),
        (" line\nsecond\nthird\n", None),
    ]


async def test_append_adds_at_the_end_committed_before_the_answer(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("append")
    url = f"{server.url}/api/docs/{name}/append"
    status, body, _ = await request(http, "POST", url, data="first line ✓\n")
    assert status == 200 and stored_text(server.db, name) == "first line ✓\n"
    assert json.loads(body)["length"] == len("first line ✓\n")
    await editor(node, server, "ed", name)
    await node.call("insert", client="ed", pos=0, text="typed at the top\n")
    await node.call("wait_acked", client="ed")
    status, body, _ = await request(http, "POST", url, data="appended\n")
    on_disk = stored_text(server.db, name)
    assert status == 200
    assert on_disk == "typed at the top\nfirst line ✓\nappended\n"
    await node.call("wait_text", client="ed", text=on_disk)
    assert clocks(json.loads(body)["state_vector"]) == clocks(
        await node.call("state_vector", client="ed")
    )


async def test_text_bodies_must_be_utf8_and_within_the_work_size(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--max-work-bytes", "2048").start()
    base = f"{srv.url}/api/docs/texts"
    assert (await request(http, "PUT", f"{base}/text", data="kept\n"))[0] == 200
    for method, path in (("PUT", "text"), ("POST", "append")):
        for body in (b"\xff\xfe not UTF-8", "caf\u00e9".encode("latin-1"), b"nul \x00 inside"):
            status, answer, _ = await request(http, method, f"{base}/{path}", data=body)
            assert status == 400, (path, body)
            assert json.loads(answer)["error"]
    # The plan of a replacement runs in the workers, capped like a restore's.
    status, answer, _ = await request(http, "PUT", f"{base}/text", data="x" * 4096)
    assert status == 413, answer
    assert (await request(http, "GET", f"{base}/export?format=txt"))[1] == b"kept\n"


# --- examples/bot.py -------------------------------------------------------------------------


async def test_the_example_bot_answers_a_command_typed_in_the_document(
    server: ServerProcess, node: NodeHarness
) -> None:
    name = unique("bot")
    await editor(node, server, "human", name)
    await node.call("insert", client="human", pos=0, text="Notes\n")
    bot = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO_ROOT / "examples" / "bot.py"), f"{server.ws_url}/{name}"
    )
    try:
        await node.call("insert", client="human", pos=6, text="/time\n")

        async def answered() -> str | None:
            text = await node.call("text", client="human")
            found = re.fullmatch(r"Notes\n/time\nIt is \d\d:\d\d:\d\d\.\n", text)
            return text if found else None

        await eventually(answered, timeout=60)
        # Once: the answered command is left alone, and the bot wrote to the server too.
        await asyncio.sleep(1)
        assert await answered()
        await editor(node, server, "later", name)
        assert await node.call("text", client="later") == await node.call("text", client="human")
    finally:
        bot.kill()
        await bot.wait()
