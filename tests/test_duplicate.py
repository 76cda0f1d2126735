"""Duplicating a document (POST /api/docs/{name}/duplicate): a real server on SQLite and on
PostgreSQL, real y-websocket clients in the source and the copy, real tokens; and the renaming
of Yjs client ids the copy is made with (server/copies.py), against pycrdt."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Doc, Map, Text

from server.auth import Role, mint
from server.contract import CloseCode
from server.copies import client_ids, copy_state, rename_clients
from server.exports import text_of
from server.storage import Store, open_store
from server.updates import check_update
from testkit.serverproc import ServerProcess

from .conftest import eventually, unique
from .nodeclient import NodeHarness, node_harness

SECRET = "duplicate-test-secret-that-is-long-enough-for-hs256"
# No automatic version while a test runs: what the versions list shows is what the test saved.
QUIET = ("--version-quiet", "3600", "--version-interval", "3600", "--keepalive", "2")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c"
    "6360f8cfc0f01f0005000201e221bc330000000049454e44ae426082"
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend for the module (tests use names of their own)."""
    if request.param == "sqlite":
        db: Path | str = tmp_path_factory.mktemp("duplicate") / "tandem.db"
    else:
        db = request.getfixturevalue("postgres").new_database()
    proc = ServerProcess(db, *QUIET).start()  # type: ignore[arg-type]
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("duplicate-auth") / "tandem.db"
    proc = ServerProcess(db, *QUIET, "--auth-secret", SECRET).start()
    yield proc
    proc.kill()


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, body


async def duplicate(
    http: aiohttp.ClientSession, server: ServerProcess, source: str, to: str, token: str = ""
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server.url}/api/docs/{source}/duplicate"
    return await call(http, "POST", url, json={"to": to}, headers=headers)


async def text(http: aiohttp.ClientSession, server: ServerProcess, name: str) -> str | None:
    status, body = await call(http, "GET", f"{server.url}/api/docs/{name}/export?format=txt")
    return body.decode() if status == 200 else None


async def state(
    http: aiohttp.ClientSession, server: ServerProcess, name: str, token: str = ""
) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, body = await call(http, "GET", f"{server.url}/api/docs/{name}/state", headers=headers)
    assert status == 200, body
    return bytes(body)


async def editor(node: NodeHarness, server: ServerProcess, client: str, room: str) -> None:
    await node.call("open", client=client, url=server.ws_url, room=room, params={"ack": "1"})
    await node.call("wait_synced", client=client, timeout=120)


async def typed(node: NodeHarness, client: str, at: int, words: str) -> None:
    await node.call("insert", client=client, pos=at, text=words)
    await node.call("wait_acked", client=client, timeout=120)


async def stays_open(node: NodeHarness, client: str) -> None:
    """The client was never closed (no 4410) and is connected."""
    info = await node.call("info", client=client)
    assert info["closes"] == 0 and info["status"] == "connected", info


# --- the copy's content and history -----------------------------------------------------------


async def test_a_copy_of_a_live_room_holds_its_editors_exact_text_and_a_history_of_its_own(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    source, copy = unique("live"), unique("live-copy")
    await editor(node, server, "ed", source)
    await typed(node, "ed", 0, "Straße, ünïcode ✓ and 😀 emoji\n")
    await node.call("set_map", client="ed", map="meta", key="title", value="Notes")
    await node.call("wait_acked", client="ed")
    for label in ("one", "two"):
        status, _ = await call(
            http, "POST", f"{server.url}/api/docs/{source}/versions", json={"label": label}
        )
        assert status == 201
        await typed(node, "ed", 0, f"{label}\n")  # a version of the same state is not another
    await typed(node, "ed", 0, "# Heading\n")  # after the versions: only the live text has it
    expected = await node.call("text", client="ed")

    status, body = await duplicate(http, server, source, copy)
    assert status == 201 and body == {"name": copy, "url": f"/d/{copy}"}, body
    assert await text(http, server, copy) == expected
    # Another Yjs client gets all of it, maps too.
    await editor(node, server, "reader", copy)
    assert await node.call("text", client="reader") == expected
    assert await node.call("get_map", client="reader", map="meta") == {"title": "Notes"}
    # No version came along; the copy's own start at 1. The source's stay as they were.
    status, versions = await call(http, "GET", f"{server.url}/api/docs/{copy}/versions")
    assert status == 200 and versions == []
    status, saved = await call(http, "POST", f"{server.url}/api/docs/{copy}/versions", json={})
    assert status == 201 and saved["number"] == 1
    status, versions = await call(http, "GET", f"{server.url}/api/docs/{source}/versions")
    assert [v["number"] for v in versions] == [2, 1]
    # The copy names none of the source's Yjs clients.
    assert not client_ids(await state(http, server, source)) & client_ids(
        await state(http, server, copy)
    )
    status, listed = await call(http, "GET", f"{server.url}/api/docs")
    assert copy in {d["name"] for d in listed["documents"]}


async def test_editing_the_copy_leaves_the_source_alone_and_the_other_way_round(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    source, copy = unique("apart"), unique("apart-copy")
    await editor(node, server, "src", source)
    await typed(node, "src", 0, "shared start\n")
    assert (await duplicate(http, server, source, copy))[0] == 201
    await editor(node, server, "cpy", copy)
    await typed(node, "cpy", 0, "only in the copy\n")
    await typed(node, "src", 13, "only in the source\n")
    assert await text(http, server, source) == "shared start\nonly in the source\n"
    assert await text(http, server, copy) == "only in the copy\nshared start\n"
    assert await node.call("text", client="src") == "shared start\nonly in the source\n"
    assert await node.call("text", client="cpy") == "only in the copy\nshared start\n"


async def test_a_document_not_loaded_is_copied_from_the_store_with_its_images(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    source, copy = unique("stored"), unique("stored-copy")
    url = f"{server.url}/api/docs/{source}"
    assert (await call(http, "POST", f"{url}/import", data=b"# Plan\n"))[0] == 201
    status, file = await call(
        http, "POST", f"{url}/files", data=PNG, headers={"Content-Type": "image/png"}
    )
    assert status == 201
    elsewhere = f"/api/docs/x/files/{file['id']}"  # another document's link: left as it is
    links = f"\n![chart]({file['url']})\n\n![again]({file['url']}) {elsewhere}\n"
    assert (await call(http, "POST", f"{url}/append", data=links.encode()))[0] == 200
    body = "# Plan\n" + links
    server.restart()  # nothing loaded: the copy is made of what the store holds
    async with aiohttp.ClientSession() as again:  # the old connections went with the process
        assert (await duplicate(again, server, source, copy))[0] == 201
        copied = await text(again, server, copy)
        assert copied is not None
        links = re.findall(r"\]\(([^)]+)\)", copied)
        assert len(links) == 2 and links[0] == links[1] and links[0] != file["url"], copied
        new_link = links[0]
        assert new_link.startswith(f"/api/docs/{copy}/files/")
        assert copied == body.replace(file["url"], new_link)
        # The copy's image is its own: still there once the source is gone.
        assert (await call(again, "DELETE", url))[0] == 200
        status, image = await call(again, "GET", server.url + new_link)
        assert status == 200 and image == PNG
    await editor(node, server, "later", copy)
    assert await node.call("text", client="later") == copied


# --- deletion: neither document's tombstone touches the other ---------------------------------


async def test_deleting_the_source_leaves_the_copy_usable_and_deleting_the_copy_the_source(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    source, copy = unique("del-src"), unique("del-copy")
    await editor(node, server, "a", source)
    await typed(node, "a", 0, "written in the source\n")
    assert (await duplicate(http, server, source, copy))[0] == 201
    await editor(node, server, "b", copy)
    assert (await call(http, "DELETE", f"{server.url}/api/docs/{source}"))[0] == 200
    await node.call("wait_closed", client="a", code=CloseCode.documentDeleted)
    # The copy's editor was never told anything; a fresh client syncs, edits and is saved.
    await typed(node, "b", 0, "still here: ")
    await editor(node, server, "fresh", copy)
    await typed(node, "fresh", 0, "> ")
    await stays_open(node, "b")
    await stays_open(node, "fresh")
    assert await text(http, server, copy) == "> still here: written in the source\n"

    # The other way round: the copy copied back under the source's (deleted) name, then the
    # copy deleted. The new source is refused to none of its own clients.
    assert (await duplicate(http, server, copy, source))[0] == 201
    await editor(node, server, "back", source)
    assert (await call(http, "DELETE", f"{server.url}/api/docs/{copy}"))[0] == 200
    await node.call("wait_closed", client="fresh", code=CloseCode.documentDeleted)
    await typed(node, "back", 0, "again ")
    await editor(node, server, "fresh2", source)
    await stays_open(node, "back")
    await stays_open(node, "fresh2")
    assert await text(http, server, source) == "again > still here: written in the source\n"
    # The stale client of the deleted source stays refused: its items never come back.
    await node.call("connect", client="a")
    await node.call("wait_closed", client="a", count=2, code=CloseCode.documentDeleted)


async def test_a_copy_can_be_made_again_under_the_name_of_a_deleted_copy(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    """A copy that kept the source's client ids would be refused here: the deleted copy's
    tombstone holds them."""
    source, copy = unique("again"), unique("again-copy")
    await editor(node, server, "src", source)
    await typed(node, "src", 0, "the source\n")
    assert (await duplicate(http, server, source, copy))[0] == 201
    await editor(node, server, "old", copy)
    await typed(node, "old", 0, "first copy: ")
    assert (await call(http, "DELETE", f"{server.url}/api/docs/{copy}"))[0] == 200
    await node.call("wait_closed", client="old", code=CloseCode.documentDeleted)

    assert (await duplicate(http, server, source, copy))[0] == 201
    await editor(node, server, "new", copy)
    assert await node.call("text", client="new") == "the source\n"
    await typed(node, "new", 0, "second copy: ")
    await stays_open(node, "new")
    await stays_open(node, "src")
    # The first copy's stale client is still refused, and nothing of it merges.
    await node.call("connect", client="old")
    await node.call("wait_closed", client="old", count=2, code=CloseCode.documentDeleted)
    assert await text(http, server, copy) == "second copy: the source\n"
    assert await text(http, server, source) == "the source\n"


# --- who wrote what follows the copy -----------------------------------------------------------


async def test_the_copy_keeps_who_wrote_what_under_its_own_client_ids(
    secured: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    source, copy = unique("authored"), unique("authored-copy")
    for client, who in (("ada", "Ada"), ("bob", "Bob")):
        params = {"ack": "1", "token": mint(SECRET, source, Role.write, 600, who)}
        await node.call("open", client=client, url=secured.ws_url, room=source, params=params)
        await node.call("wait_synced", client=client, timeout=120)
    await typed(node, "ada", 0, "Ada wrote this. ")
    await node.call("wait_text", client="bob", text="Ada wrote this. ")
    await typed(node, "bob", 16, "Bob wrote this.")
    admin = token("*", Role.admin)
    assert (await duplicate(http, secured, source, copy, admin))[0] == 201

    async def authors(name: str) -> dict[int, str]:
        url = f"{secured.url}/api/docs/{name}/authors"
        status, body = await call(http, "GET", url, headers=bearer(admin))
        assert status == 200, body
        return {row["client_id"]: row["author"] for row in body["authors"]}

    before, after = await authors(source), await authors(copy)
    assert sorted(before.values()) == sorted(after.values()) == ["Ada", "Bob"]
    # The same people, under the copy's ids: those its state holds, none of the source's.
    copied_ids = client_ids(await state(http, secured, copy, admin))
    assert set(after) <= copied_ids and not set(after) & set(before)


# --- who may, and what is refused -------------------------------------------------------------


def token(scope: str, role: Role) -> str:
    return mint(SECRET, scope, role, 600)


async def test_the_copy_needs_read_on_the_source_and_write_on_the_target(
    secured: ServerProcess, http: aiohttp.ClientSession
) -> None:
    folder = unique("team") + "/"
    source = folder + "notes"
    admin = token("*", Role.admin)
    url = f"{secured.url}/api/docs/{source}/import"
    status, _ = await call(http, "POST", url, data=b"team text", headers=bearer(admin))
    assert status == 201

    assert (await duplicate(http, secured, source, folder + "x"))[0] == 401
    # A reader may read the source but write nowhere.
    status, body = await duplicate(http, secured, source, folder + "x", token("*", Role.read))
    assert status == 403 and "write" in body["error"], body
    # A token for the folder may copy within it, not out of it.
    team = token(folder, Role.write)
    status, body = await duplicate(http, secured, source, unique("other") + "/x", team)
    assert status == 403 and "not for document" in body["error"], body
    status, body = await duplicate(http, secured, source, folder + "copy", team)
    assert status == 201, body
    # A token for one document only cannot copy it anywhere.
    status, _ = await duplicate(http, secured, source, folder + "y", token(source, Role.admin))
    assert status == 403
    # ... and one for the target only cannot read the source.
    status, _ = await duplicate(http, secured, source, "z", token("z", Role.admin))
    assert status == 403
    status, copied = await call(
        http, "GET", f"{secured.url}/api/docs/{folder}copy/export?format=txt", headers=bearer(team)
    )
    assert status == 200 and copied == b"team text"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"a-name"',
        b"null",
        b"{}",
        b'{"to": 3}',
        b'{"to": null}',
        b'{"to": ["a"]}',
        b"\xff\xfe\x00{",
        b'{"to": "a\\u0000b"}',
        b"[" * 4000,
        b'{"to": ' * 400 + b'"x"' + b"}" * 400,
    ],
)
async def test_a_garbage_body_is_refused_with_400(
    secured: ServerProcess, http: aiohttp.ClientSession, body: bytes
) -> None:
    source = unique("garbage")
    admin = bearer(token("*", Role.admin))
    await call(http, "POST", f"{secured.url}/api/docs/{source}/import", data=b"x", headers=admin)
    status, answer = await call(
        http, "POST", f"{secured.url}/api/docs/{source}/duplicate", data=body, headers=admin
    )
    assert status == 400 and isinstance(answer, dict) and answer["error"], (body, answer)


async def test_a_taken_or_bad_name_a_missing_source_and_a_huge_body_are_refused(
    secured: ServerProcess, http: aiohttp.ClientSession
) -> None:
    source, other = unique("refuse"), unique("refuse-other")
    admin = token("*", Role.admin)
    for name in (source, other):
        url = f"{secured.url}/api/docs/{name}/import"
        assert (await call(http, "POST", url, data=b"text", headers=bearer(admin)))[0] == 201
    for taken in (other, source):
        status, body = await duplicate(http, secured, source, taken, admin)
        assert status == 409 and "exists" in body["error"], body
    for bad in ("", "a b", "../x", "/lead", "trail/", "x" * 201, "ü", "a..b"):
        status, body = await duplicate(http, secured, source, bad, admin)
        assert status == 400 and body["error"].startswith('"to"'), (bad, body)
    status, body = await duplicate(http, secured, unique("missing"), unique("to"), admin)
    assert status == 404, body
    status, body = await call(
        http,
        "POST",
        f"{secured.url}/api/docs/{source}/duplicate",
        data=b'{"to": "' + b"x" * 100_000 + b'"}',
        headers=bearer(admin),
    )
    assert status == 413, body
    # Nothing was made by any of it.
    status, listed = await call(http, "GET", f"{secured.url}/api/docs", headers=bearer(admin))
    names = {d["name"] for d in listed["documents"]}
    assert {source, other} <= names and not any(n.startswith("to-") for n in names)


# --- the renaming itself (pure) ---------------------------------------------------------------


def concurrent_state(seed: int) -> bytes:
    """Several clients typing, deleting and syncing at random: many concurrent insertions at
    the same places, whose order Yjs decides by client id."""
    rng = random.Random(seed)
    docs = [Doc(client_id=rng.randrange(2**32)) for _ in range(rng.randint(2, 6))]
    for _ in range(4):
        for doc in docs:
            content = doc.get("content", type=Text)
            for _ in range(rng.randint(0, 3)):
                length = len(str(content))
                if length and rng.random() < 0.3:
                    start = rng.randrange(length)
                    del content[start : min(length, start + rng.randint(1, 3))]
                else:
                    content.insert(rng.randint(0, length), rng.choice(["x", "yy", "q", "zz"]))
        for doc in docs:
            if rng.random() < 0.5:
                rng.choice(docs).apply_update(doc.get_update())
    merged = Doc()
    for doc in docs:
        merged.apply_update(doc.get_update())
    return merged.get_update()


def test_the_renamed_copy_integrates_into_the_same_text_and_a_reordered_renaming_would_not() -> (
    None
):
    reordered_differs = 0
    for seed in range(150):
        source = concurrent_state(seed)
        copied = copy_state(source)
        assert text_of(copied.update) == text_of(source), seed
        assert not client_ids(copied.update) & client_ids(source)
        assert set(copied.clients) == client_ids(source)
        ids = sorted(client_ids(source))
        reversed_names = dict(zip(ids, reversed(ids), strict=True))
        if text_of(rename_clients(source, reversed_names)) != text_of(source):
            reordered_differs += 1
    # Why the order of the new ids must follow the old one's.
    assert reordered_differs > 0


def test_every_kind_of_yjs_content_survives_the_renaming() -> None:
    doc = Doc()
    content = doc.get("content", type=Text)
    content.insert(0, "bold ünïcode 😀 text")
    content.format(0, 4, {"bold": True})
    content.insert_embed(5, {"image": "x.png"})
    meta = doc.get("meta", type=Map)
    meta["title"] = "Notes"
    meta["numbers"] = Array([1, 2.5, None, True, {"nested": ["a", b"bytes"]}])
    meta["inner"] = Map({"k": "v"})
    meta["gone"] = 1
    del meta["gone"]
    doc.get("list", type=Array).extend(["one", 2, Text("a nested text")])
    before = doc.get_update()
    copied = copy_state(before, avoid=list(client_ids(before)))
    again = Doc()
    again.apply_update(copied.update)
    assert again.get("content", type=Text).diff() == content.diff()
    assert again.get("meta", type=Map).to_py() == meta.to_py()
    assert str(again.get("list", type=Array).to_py()) == str(doc.get("list", type=Array).to_py())
    summary, original = check_update(copied.update), check_update(before)
    assert sorted((copied.clients[c], s, e) for c, s, e in original.deletes) == sorted(
        summary.deletes
    )


def test_links_to_the_source_files_are_pointed_at_the_copy_ones_and_nothing_else_changes() -> None:
    old_id, new_id = "A" * 22, "B" * 22
    doc = Doc()
    body = (
        f"é ![one](/api/docs/src/files/{old_id}) ![same](/api/docs/src/files/{old_id})\n"
        f"longer id: /api/docs/src/files/{old_id}x, other doc: /api/docs/src2/files/{old_id}"
    )
    doc.get("content", type=Text).insert(0, body)
    copied = copy_state(
        doc.get_update(), links={f"/api/docs/src/files/{old_id}": f"/api/docs/dst/files/{new_id}"}
    )
    assert text_of(copied.update) == (
        f"é ![one](/api/docs/dst/files/{new_id}) ![same](/api/docs/dst/files/{new_id})\n"
        f"longer id: /api/docs/src/files/{old_id}x, other doc: /api/docs/src2/files/{old_id}"
    )


def test_an_update_that_cannot_be_read_is_refused() -> None:
    good = Doc()
    good.get("content", type=Text).insert(0, "hello")
    update = good.get_update()
    for broken in (update[:-3], update + b"\x00", b"\x01\x05"):
        with pytest.raises(ValueError):
            client_ids(broken)
    assert base64.b64encode(copy_state(update).update)


# --- in a cluster -----------------------------------------------------------------------------


@pytest.fixture
def two_instances(postgres: Any, redis_server: Any) -> Iterator[list[ServerProcess]]:
    db = postgres.new_database()
    instances = [ServerProcess(db, "--redis", redis_server.url, *QUIET) for _ in range(2)]
    for instance in instances:
        instance.start()
    yield instances
    for instance in instances:
        instance.kill()


@pytest.mark.cluster
async def test_in_a_cluster_a_copy_made_on_one_instance_is_served_by_another(
    two_instances: list[ServerProcess], http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    first, second = two_instances
    source, copy = unique("cluster"), unique("cluster-copy")
    await editor(node, second, "writer", source)  # the source is live on the other instance
    await typed(node, "writer", 0, "typed on the second instance\n")
    status, body = await duplicate(http, first, source, copy)
    assert status == 201, body

    # The other instance lists it and serves it from the shared store.
    async def listed() -> bool:
        _, answer = await call(http, "GET", f"{second.url}/api/docs")
        return copy in {d["name"] for d in answer["documents"]}

    await eventually(listed)
    await editor(node, second, "reader", copy)
    assert await node.call("text", client="reader") == "typed on the second instance\n"
    # Deleting the source on the first instance closes its editor on the second, not the copy's.
    assert (await call(http, "DELETE", f"{first.url}/api/docs/{source}"))[0] == 200
    await node.call("wait_closed", client="writer", code=CloseCode.documentDeleted)
    await typed(node, "reader", 0, "> ")
    await stays_open(node, "reader")
    # (the first instance still holds the copy it made: the edit reaches it through Redis)
    want = "> typed on the second instance\n"
    await eventually(lambda: _has_text(http, first, copy, want))


async def _has_text(
    http: aiohttp.ClientSession, server: ServerProcess, name: str, want: str
) -> bool:
    return await text(http, server, name) == want


# --- the store: the authors map copied under new ids ------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    where = (
        tmp_path / "t.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres").new_database()
    )
    opened = await open_store(where)
    yield opened
    await opened.close()


async def test_the_store_copies_the_authors_of_the_renamed_clients_only(store: Store) -> None:
    store.append("src", concurrent_state(1))
    for client, author in ((7, "Ada"), (9, "Bob"), (11, "Cy")):
        store.record_author("src", client, author, "subject")
    store.record_author("dst", 900, "Already", "name")
    await store.flush()
    renamed = {7: 700, 9: 900, 4_000_000_000: 5}  # 11 is not in the copy; 4e9 has no row
    assert await store.copy_authors("src", "dst", renamed) == 1  # 900 is dst's already
    rows = {row.client_id: (row.author, row.source) for row in await store.authors("dst")}
    assert rows == {700: ("Ada", "subject"), 900: ("Already", "name")}
    # the source's own rows are as they were
    assert {row.client_id for row in await store.authors("src")} == {7, 9, 11}
