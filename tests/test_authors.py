"""Who wrote what: the authors map kept per document (token subjects, or awareness names in
open mode), its rules against hostile peers, its durability (compaction, restarts, backups),
``GET /api/docs/{name}/authors`` and who edited between two versions — with real Yjs clients
on real servers, and the store methods on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text, merge_updates

from server import protocol as p
from server.auth import Role, mint
from server.storage import Store
from server.storage.sqlite import FAULT_FILE_VARIABLE, SQLiteStore
from testkit.serverproc import REPO_ROOT
from testkit.services import Postgres, Redis

from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness
from .test_store import Backend
from .wsframes import Typist, connect, next_message

SECRET = "authors-test-secret-long-enough-for-hs256"

Authors = dict[int, tuple[str, str]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path, request)


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that wants tokens."""
    db = tmp_path_factory.mktemp("authors") / "tandem.db"
    srv = ServerProcess(db, "--auth-secret", SECRET).start()
    yield srv
    srv.kill()


def token(scope: str, subject: str | None = None, role: Role = Role.write) -> str:
    return mint(SECRET, scope, role, 3600, subject)


def bearer(tok: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"} if tok else {}


async def get_json(
    http: aiohttp.ClientSession, url: str, tok: str | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=bearer(tok)) as resp:
        return resp.status, await resp.json()


async def authors_of(
    http: aiohttp.ClientSession, srv: ServerProcess, name: str, tok: str | None = None
) -> Authors:
    status, body = await get_json(http, f"{srv.url}/api/docs/{name}/authors", tok)
    assert status == 200, body
    return {row["client_id"]: (row["author"], row["source"]) for row in body["authors"]}


async def open_client(
    node: NodeHarness,
    client: str,
    srv: ServerProcess,
    room: str,
    tok: str | None = None,
    name: str | None = None,
) -> int:
    """A y-websocket client (its awareness showing ``name``, as the editor's does), synced;
    returns its Yjs client id."""
    params = {"ack": "1"} | ({"token": tok} if tok else {})
    # (the harness's default awareness state is y-protocols' own: {}, no name)
    awareness = {"awareness": {"user": {"name": name, "color": "#1d4ed8"}}} if name else {}
    await node.call("open", client=client, url=srv.ws_url, room=room, params=params, **awareness)
    await node.call("wait_synced", client=client)
    return int(await node.call("client_id", client=client))


async def type_text(node: NodeHarness, client: str, text: str, *, at_end: bool = True) -> None:
    """Insert ``text`` at the end of the client's text, and wait until it is committed."""
    length = len(await node.call("text", client=client))
    await node.call("insert", client=client, pos=length if at_end else 0, text=text)
    await node.call("wait_acked", client=client)


# --- the map, from real clients -------------------------------------------------------------


async def test_each_tokens_subject_is_the_author_of_its_client_id(
    locked: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("authors")
    ada = await open_client(node, "a", locked, name, token(name, "Ada"), name="Not Ada")
    bob = await open_client(node, "b", locked, name, token(name, "Bob"))
    await type_text(node, "a", "Ada wrote this. ")
    await node.call("wait_text", client="b", text="Ada wrote this. ")
    await type_text(node, "b", "Bob wrote this.")

    # The subject counts, not the name a connection shows.
    assert await authors_of(http, locked, name, token(name)) == {
        ada: ("Ada", "subject"),
        bob: ("Bob", "subject"),
    }
    _, body = await get_json(http, f"{locked.url}/api/docs/{name}/authors", token(name))
    for row in body["authors"]:
        assert set(row) == {"client_id", "author", "source", "first_at", "last_at"}
        assert 0 < row["first_at"] <= row["last_at"]


async def test_in_open_mode_the_awareness_name_is_the_author_and_follows_renames(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("open-authors")
    ada = await open_client(node, "a", server, name, name="Ada")
    cy = await open_client(node, "c", server, name)  # no name yet
    await type_text(node, "a", "Ada here. ")
    await type_text(node, "c", "Cy here.")
    assert await authors_of(http, server, name) == {ada: ("Ada", "name")}

    # A name that arrives after the first update, and a rename: the latest name counts.
    await node.call("set_awareness", client="c", state={"user": {"name": "  Cy\u202e\n "}})
    await node.call("set_awareness", client="a", state={"user": {"name": "Ada Lovelace"}})
    await eventually(
        lambda: _is(
            authors_of(http, server, name),
            {ada: ("Ada Lovelace", "name"), cy: ("Cy", "name")},
        )
    )


async def _is(got: Any, want: Authors) -> bool:
    return bool(await got == want)


async def test_a_later_connection_sending_structs_under_a_known_client_id_changes_nothing(
    locked: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("forged")
    ada = await open_client(node, "a", locked, name, token(name, "Ada"))
    await type_text(node, "a", "Ada's text. ")

    # Mallory, a valid writer, puts structs under Ada's client id (continuing her clocks) and
    # under a fresh one of her own, in one update.
    mallory_token = token(name, "Mallory")
    async with http.get(
        f"{locked.url}/api/docs/{name}/state", headers=bearer(mallory_token)
    ) as resp:
        state = await resp.read()
    forged = Doc(client_id=ada)
    forged.apply_update(state)
    made: list[bytes] = []
    subscription = forged.observe(lambda event: made.append(event.update))
    forged.get("content", type=Text).insert(0, "Mallory as Ada. ")
    forged.unobserve(subscription)
    own = Typist()
    own.doc = Doc(client_id=ada + 1)
    own.text = own.doc.get("content", type=Text)
    update = merge_updates(made[0], own.append("Mallory. "))
    ws = await connect(http, locked, name, f"?token={mallory_token}&ack=1")
    await ws.send_bytes(p.encode_sync_update(update))
    assert await next_message(ws, p.Saved) == p.Saved(1)

    async def arrived() -> bool:
        text = await node.call("text", client="a")
        return "Mallory. " in text and "Mallory as Ada. " in text

    await eventually(arrived)

    assert await authors_of(http, locked, name, mallory_token) == {
        ada: ("Ada", "subject"),
        ada + 1: ("Mallory", "subject"),
    }
    # Ada goes on typing: her old client id is still hers (Yjs, seeing its own client id
    # used by someone else, takes a new one: a new claim of hers).
    await type_text(node, "a", "More.")
    assert (await authors_of(http, locked, name, mallory_token))[ada] == ("Ada", "subject")
    await ws.close()


async def test_a_connection_minting_client_ids_records_only_so_many(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("minted")
    parts = []
    for i in range(80):
        doc = Doc(client_id=10_000 + i)
        doc.get("content", type=Text).insert(0, "x")
        parts.append(doc.get_update())
    ws = await connect(http, locked, name, f"?token={token(name, 'Minter')}&ack=1")
    await ws.send_bytes(p.encode_sync_update(merge_updates(*parts)))
    assert await next_message(ws, p.Saved) == p.Saved(1)
    got = await authors_of(http, locked, name, token(name))
    assert len(got) == 64 and set(got.values()) == {("Minter", "subject")}
    assert "the authors of the others are not recorded" in locked.log_text()
    await ws.close()


async def test_a_read_only_connection_claims_nothing(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("reader")
    writer = await connect(http, locked, name, f"?token={token(name, 'Writer')}&ack=1")
    typist = Typist()
    await writer.send_bytes(p.encode_sync_update(typist.append("hello")))
    assert await next_message(writer, p.Saved) == p.Saved(1)
    reader = await connect(http, locked, name, f"?token={token(name, 'Reader', Role.read)}")
    await reader.send_bytes(p.encode_sync_update(Typist().append("refused")))
    await next_message(reader, p.AuthMessageIn)
    assert set((await authors_of(http, locked, name, token(name))).values()) == {
        ("Writer", "subject")
    }
    await writer.close()
    await reader.close()


async def test_the_authors_api_is_token_scoped(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("scoped")
    ws = await connect(http, locked, name, f"?token={token(name, 'Ada')}&ack=1")
    await ws.send_bytes(p.encode_sync_update(Typist().append("secret")))
    assert await next_message(ws, p.Saved) == p.Saved(1)
    url = f"{locked.url}/api/docs/{name}/authors"
    assert (await get_json(http, url))[0] == 401
    status, body = await get_json(http, url, token(f"{name}-other"))
    assert status == 403 and "error" in body
    assert (await get_json(http, url, token(name, role=Role.read)))[0] == 200
    status, body = await get_json(http, f"{locked.url}/api/docs/{name}-none/authors", token("*"))
    assert status == 404 and "error" in body
    await ws.close()


# --- durability -------------------------------------------------------------------------------


async def test_the_map_survives_compaction_restarts_and_a_backup(
    server_factory: type[ServerProcess],
    tmp_path: Path,
    http: aiohttp.ClientSession,
    node: NodeHarness,
) -> None:
    srv = server_factory(
        tmp_path / "durable.db", "--auth-secret", SECRET, "--compact-updates", "5"
    ).start()
    name = unique("durable")
    ada = await open_client(node, "a", srv, name, token(name, "Ada"))
    bob = await open_client(node, "b", srv, name, token(name, "Bob"))
    for i in range(8):
        await type_text(node, "a", f"a{i} ")
        await type_text(node, "b", f"b{i} ")
    want = {ada: ("Ada", "subject"), bob: ("Bob", "subject")}

    async def compacted() -> bool:
        _, health = await get_json(http, f"{srv.url}/healthz")
        return bool(health["compactions"] >= 2)

    await eventually(compacted)
    assert await authors_of(http, srv, name, token(name)) == want
    await node.call("close", client="a")
    await node.call("close", client="b")

    srv.restart()
    assert await authors_of(http, srv, name, token(name)) == want

    copy = tmp_path / "copy.db"
    done = subprocess.run(
        [sys.executable, "-m", "server", "backup", str(copy), "--db", str(srv.db)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    srv.kill()
    restored = server_factory(copy, "--auth-secret", SECRET).start()
    assert await authors_of(http, restored, name, token(name)) == want


# --- a cluster ----------------------------------------------------------------------------------


@pytest.mark.cluster
async def test_in_a_cluster_each_instance_records_its_own_connections_and_serves_the_whole_map(
    postgres: Postgres, redis_server: Redis, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    db = postgres.new_database()
    first, second = (
        ServerProcess(db, "--redis", redis_server.url, "--auth-secret", SECRET).start()
        for _ in range(2)
    )
    try:
        name = unique("cluster-authors")
        ada = await open_client(node, "a", first, name, token(name, "Ada"))
        bob = await open_client(node, "b", second, name, token(name, "Bob"))
        await type_text(node, "a", "Ada on the first. ")
        await node.call("wait_text", client="b", text="Ada on the first. ")
        await type_text(node, "b", "Bob on the second.")
        want = {ada: ("Ada", "subject"), bob: ("Bob", "subject")}
        for srv in (first, second):
            await eventually(lambda srv=srv: _is(authors_of(http, srv, name, token(name)), want))

        # On the second instance, a writer sends structs under Ada's client id (which that
        # instance learnt of from the first): the map does not change.
        forged = Doc(client_id=ada)
        async with http.get(
            f"{second.url}/api/docs/{name}/state", headers=bearer(token(name))
        ) as resp:
            forged.apply_update(await resp.read())
        made: list[bytes] = []
        subscription = forged.observe(lambda event: made.append(event.update))
        forged.get("content", type=Text).insert(0, "Not Ada. ")
        forged.unobserve(subscription)
        ws = await connect(http, second, name, f"?token={token(name, 'Mallory')}&ack=1")
        await ws.send_bytes(p.encode_sync_update(made[0]))
        assert await next_message(ws, p.Saved) == p.Saved(1)
        await ws.close()
        for srv in (first, second):
            assert (await authors_of(http, srv, name, token(name)))[ada] == ("Ada", "subject")
    finally:
        first.kill()
        second.kill()


# --- history ------------------------------------------------------------------------------------


async def test_a_diff_lists_exactly_who_edited_between_its_two_versions(
    locked: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("history")
    ada = await open_client(node, "a", locked, name, token(name, "Ada"))
    bob = await open_client(node, "b", locked, name, token(name, "Bob"))
    tok = token(name)

    async def save() -> int:
        async with http.post(f"{locked.url}/api/docs/{name}/versions", headers=bearer(tok)) as r:
            assert r.status == 201
            return int((await r.json())["id"])

    async def editors(a: int | str, b: int | str) -> list[tuple[int, str | None, str | None]]:
        url = f"{locked.url}/api/docs/{name}/versions/{a}/diff/{b}?format=json"
        status, body = await get_json(http, url, tok)
        assert status == 200, body
        async with http.get(url.replace("?format=json", ""), headers=bearer(tok)) as resp:
            assert body["diff"] == await resp.text()
        return [(row["client_id"], row["author"], row["source"]) for row in body["authors"]]

    await type_text(node, "a", "one\n")
    first = await save()
    await node.call("wait_text", client="b", text="one\n")
    await type_text(node, "b", "two\n")
    second = await save()
    await node.call("wait_text", client="a", text="one\ntwo\n")
    await type_text(node, "a", "three\n")

    assert await editors(first, second) == [(bob, "Bob", "subject")]
    assert await editors(second, first) == [(bob, "Bob", "subject")]
    assert await editors(second, "live") == [(ada, "Ada", "subject")]
    assert sorted(await editors(first, "live")) == sorted(
        [(ada, "Ada", "subject"), (bob, "Bob", "subject")]
    )
    assert await editors(first, first) == []
    status, body = await get_json(
        http, f"{locked.url}/api/docs/{name}/versions/{first}/diff/live?format=xml", tok
    )
    assert status == 400 and "error" in body


# --- the store methods, on both backends ---------------------------------------------------------


def _rows(rows: list[Any]) -> list[tuple[int, str, str]]:
    return [(row.client_id, row.author, row.source) for row in rows]


async def test_the_store_keeps_renames_never_changes_a_subject_and_copies_and_deletes(
    backend: Backend,
) -> None:
    store: Store = await backend.open(compact_updates=1000)
    try:
        typist = Typist()
        store.record_author("d", 7, "Ada", "subject")
        store.append("d", typist.append("a"))
        store.record_author("d", 9, "Bob", "name")
        store.append("d", typist.append("b"))
        await store.flush()
        first = await store.authors("d")
        assert _rows(first) == [(7, "Ada", "subject"), (9, "Bob", "name")]

        # A name-sourced row follows renames; a subject's never changes, and a name-sourced
        # one never becomes a subject's; last_at moves on, first_at stays.
        store.record_author("d", 9, "Bobby", "name")
        store.record_author("d", 7, "Mallory", "name")
        store.record_author("d", 7, "Mallory", "subject")
        store.record_author("d", 9, "Eve", "subject")
        await store.flush()
        again = await store.authors("d")
        assert _rows(again) == [(7, "Ada", "subject"), (9, "Bobby", "name")]
        for old, new in zip(first, again, strict=True):
            assert new.first_at == old.first_at and new.last_at >= old.last_at

        # Compaction leaves the map alone.
        for i in range(20):
            store.append("d", typist.append(str(i)))
        assert await store.compact("d")
        assert await store.log_length("d") == 1
        assert _rows(await store.authors("d")) == _rows(again)

        # Copies keep the rows the destination has.
        assert await store.copy_authors("d", "copy") == 2
        assert await store.authors("copy") == again
        store.record_author("other", 7, "Zed", "subject")
        await store.flush()
        assert await store.copy_authors("d", "other") == 1
        # (oldest first: the copied row keeps its times)
        assert _rows(await store.authors("other")) == [(9, "Bobby", "name"), (7, "Zed", "subject")]
        assert await store.copy_authors("nothing", "d") == 0
    finally:
        await store.close()

    # A restart reads it back; deleting the document deletes its map only.
    store = await backend.open()
    try:
        assert _rows(await store.authors("d")) == _rows(again)
        assert await store.delete_document("d")
        assert await store.authors("d") == []
        assert len(await store.authors("copy")) == 2
    finally:
        await store.close()


async def test_an_author_row_commits_with_its_update_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = tmp_path / "disk-full"
    monkeypatch.setenv(FAULT_FILE_VARIABLE, str(fault))
    store = await SQLiteStore.open(tmp_path / "t.db", retry_delay=0.05)
    try:
        fault.touch()
        store.record_author("d", 5, "Ada", "subject")
        store.append("d", Typist().append("hello"))
        await eventually(lambda: store.health.failures >= 2)
        assert await store.authors("d") == [] and await store.log_length("d") == 0
        fault.unlink()
        await store.flush()
        assert _rows(await store.authors("d")) == [(5, "Ada", "subject")]
        assert await store.log_length("d") == 1

        copy = tmp_path / "backup.db"
        await store.backup(copy)
    finally:
        await store.close()
    restored = await SQLiteStore.open(copy)
    try:
        assert _rows(await restored.authors("d")) == [(5, "Ada", "subject")]
    finally:
        await restored.close()
