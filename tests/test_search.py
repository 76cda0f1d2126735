"""Search over every document's text and title, against a real server on SQLite and on
PostgreSQL: what a real Yjs client types is found once the index catches up (never per update),
with the hit marked in the snippet; deletion takes a document out; a token sees only the
documents it covers, whatever matches elsewhere and whatever its scope holds; hostile queries
never make a 500; titles come from the first heading; each trigger (quiet, unload, compaction,
the catch-up of what the CLI wrote) indexes on its own."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.auth import Role, mint
from server.storage.sqlite import FAULT_FILE_VARIABLE
from testkit.serverproc import REPO_ROOT
from testkit.yclient import YClient

from .conftest import ServerProcess, eventually, unique

SECRET = "search-secret-that-is-long-enough-for-hs256"
# Short quiet period and grace period: the index catches up within seconds.
FAST = ("--index-quiet", "0.5", "--grace-period", "1", "--keepalive", "2")
# The quiet trigger out of the way, to see another trigger index on its own (still well
# within the indexer's 60 s bound for rooms edited without a pause).
NO_QUIET = ("--index-quiet", "600")


def token(scope: str, role: Role = Role.admin) -> str:
    return mint(SECRET, scope, role, 3600)


def bearer(scope: str, role: Role = Role.admin) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(scope, role)}"}


def database(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Path | str:
    if kind == "sqlite":
        return tmp / "tandem.db"
    postgres = request.getfixturevalue("postgres")  # one PostgreSQL for the session
    url: str = postgres.new_database()
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend, with tokens, shared by the module's tests (names are unique)."""
    db = database(request.param, request, tmp_path_factory.mktemp("search"))
    proc = ServerProcess(db, *FAST, "--auth-secret", SECRET).start()  # type: ignore[arg-type]
    yield proc
    proc.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def backend_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh database of each kind, for a test's own server."""
    return database(request.param, request, tmp_path)


async def search(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    q: str,
    scope: str | None = "*",
    **params: str,
) -> tuple[int, Any]:
    headers = bearer(scope) if scope is not None else {}
    async with http.get(
        f"{server.url}/api/search", params={"q": q, **params}, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def found(
    http: aiohttp.ClientSession, server: ServerProcess, q: str, scope: str = "*"
) -> list[dict[str, Any]]:
    status, body = await search(http, server, q, scope)
    assert status == 200, body
    results: list[dict[str, Any]] = body["results"]
    return results


async def eventually_found(
    http: aiohttp.ClientSession, server: ServerProcess, q: str, name: str, scope: str = "*"
) -> dict[str, Any]:
    """Poll the search (generously) until ``name`` is among its results; return that result."""

    async def look() -> dict[str, Any] | None:
        return next((r for r in await found(http, server, q, scope) if r["name"] == name), None)

    result: dict[str, Any] = await eventually(look, timeout=90, interval=0.3)
    return result


async def put_text(
    http: aiohttp.ClientSession, server: ServerProcess, name: str, text: str
) -> None:
    async with http.put(
        f"{server.url}/api/docs/{name}/text", data=text.encode(), headers=bearer("*")
    ) as resp:
        assert resp.status == 200, await resp.text()


def hits(result: dict[str, Any]) -> list[str]:
    return [part["text"] for part in result["snippet"] if part["hit"]]


def snippet_text(result: dict[str, Any]) -> str:
    return "".join(part["text"] for part in result["snippet"])


# --- what is typed is found ---------------------------------------------------------------


async def test_a_word_typed_by_a_yjs_client_is_found_once_the_index_catches_up(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("team/notes")
    client = await YClient(http, server.ws_url, name, token=token("team/")).connect()
    try:
        await client.append("# Weekly notes\n\nThe ")
        await client.append("zebracorn grazes ")
        await client.append("by the river.")
        await client.wait_acked()
        # The client stays connected: its room is loaded, and indexed once editing pauses.
        result = await eventually_found(http, server, "zebracorn", name)
        assert result["title"] == "Weekly notes"
        assert hits(result) == ["zebracorn"]
        assert "zebracorn grazes by the river" in snippet_text(result)
        # The last word is also a prefix: what is typed so far finds the word being typed.
        assert [r["name"] for r in await found(http, server, "river zebraco")] == [name]
        # The title is found too.
        assert name in [r["name"] for r in await found(http, server, "weekly")]

        await client.append(" Later a narwhalfish swims by.")
        await client.wait_acked()
        result = await eventually_found(http, server, "narwhalfish", name)
        assert hits(result) == ["narwhalfish"]
    finally:
        await client.close()


async def test_the_answer_says_how_far_the_index_is(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("team/through")
    await put_text(http, server, name, "quokkaberry")
    await eventually_found(http, server, "quokkaberry", name)
    status, body = await search(http, server, "quokkaberry", scope=name)
    assert status == 200
    # Everything committed to this document is indexed: the time is after its commit.
    async with http.get(f"{server.url}/api/docs/{name}", headers=bearer(name)) as resp:
        updated_at = (await resp.json())["updated_at"]
    assert body["indexed_through"] >= updated_at


async def test_deleting_a_document_takes_it_out_of_the_search(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("team/doomed")
    await put_text(http, server, name, "# Doomed\n\na capybarix lives here")
    await eventually_found(http, server, "capybarix", name)
    async with http.delete(f"{server.url}/api/docs/{name}", headers=bearer("*")) as resp:
        assert resp.status == 200
    # Taken out in the deletion's own transaction: gone at once, and stays gone.
    assert await found(http, server, "capybarix") == []
    await asyncio.sleep(2)  # a few indexer turns
    assert await found(http, server, "capybarix") == []


# --- what a token sees ----------------------------------------------------------------------


async def test_a_team_token_sees_only_its_team_whatever_matches_elsewhere(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    tag = unique("w").replace("-", "")
    word = f"ocelot{tag}"
    mine = f"team/{tag}-mine"
    # Outside the scope and matching better (the word over and over, in the title too): a
    # search that took the best few and filtered them afterwards would return nothing.
    others = [f"other/{tag}-{i}" for i in range(6)] + [f"teamx/{tag}", f"teamx{tag}", "team"]
    for name in others:
        await put_text(http, server, name, f"# {word}\n\n" + f"{word} " * 40)
    await put_text(http, server, mine, f"just one {word} here")
    for name in [*others, mine]:
        await eventually_found(http, server, word, name)

    assert [r["name"] for r in await found(http, server, word, scope="team/")] == [mine]
    status, body = await search(http, server, word, scope="team/", limit="1")
    assert status == 200
    assert [r["name"] for r in body["results"]] == [mine]
    # A token for one document sees that one.
    assert [r["name"] for r in await found(http, server, word, scope=others[0])] == [others[0]]
    # "teamx" is not within "team/", nor is "team" itself.
    teamx = [r["name"] for r in await found(http, server, word, scope="teamx/")]
    assert teamx == [f"teamx/{tag}"]
    # Every role may search: read is enough.
    status, body = await search(
        http, server, word, scope=None, **{"token": token("team/", Role.read)}
    )
    assert status == 200 and [r["name"] for r in body["results"]] == [mine]


async def test_wildcards_in_a_scope_are_characters_not_patterns(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    tag = unique("w").replace("-", "")
    word = f"axolotl{tag}"
    names = [f"team/{tag}", f"te_m/{tag}", f"tezm/{tag}"]
    for name in names:
        await put_text(http, server, name, f"an {word}")
    for name in names:
        await eventually_found(http, server, word, name)
    assert [r["name"] for r in await found(http, server, word, scope="te_m/")] == [f"te_m/{tag}"]
    assert await found(http, server, word, scope="%/") == []
    assert await found(http, server, word, scope="te%") == []
    assert await found(http, server, word, scope="_eam/") == []


async def test_search_needs_a_valid_token(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    status, body = await search(http, server, "anything", scope=None)
    assert status == 401 and "error" in body
    async with http.get(
        f"{server.url}/api/search",
        params={"q": "anything"},
        headers={"Authorization": "Bearer not-a-token"},
    ) as resp:
        assert resp.status == 401
        assert "error" in await resp.json()


async def test_open_mode_searches_every_document(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, *FAST).start()
    for name in ("a/one", "b/two", "three"):
        await put_text(http, srv, name, f"the pangolite of {name}")
    for name in ("a/one", "b/two", "three"):
        await eventually_found(http, srv, "pangolite", name)
    async with http.get(f"{srv.url}/api/search", params={"q": "pangolite"}) as resp:
        assert resp.status == 200
        names = sorted(r["name"] for r in (await resp.json())["results"])
    assert names == ["a/one", "b/two", "three"]


# --- hostile and bad queries ------------------------------------------------------------------

HOSTILE = [
    '"',
    '""',
    '"unclosed',
    "*",
    "**",
    "a*",
    "NEAR(",
    "NEAR(a b, 2)",
    "a NEAR/2 b",
    "'; DROP TABLE doc_search; --",
    "'; DROP TABLE documents; --",
    "%",
    "_",
    "%_%",
    "\\",
    "title:secret",
    "body : x",
    "^start",
    "a AND OR NOT b",
    "NOT",
    "(",
    ")",
    "a & b | !c",
    "x:*",
    "<->",
    "{title body}: x",
    "\x00",
    "\u202e\u200b",
    "-",
    "+x -y",
    "日本語",
    "ünïcödé",
    "⑴ ŉ ﬁ ½",
    "it's o'clock",
    "a'b\\'c",
]


async def test_hostile_queries_answer_200_or_400_never_500(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("team/sturdy")
    await put_text(http, server, name, "# Sturdy\n\nthe wombatine stays")
    await eventually_found(http, server, "wombatine", name)
    for q in HOSTILE:
        status, body = await search(http, server, q)
        assert status in (200, 400), (q, status, body)
        assert ("results" in body) if status == 200 else ("error" in body)
    # Nothing was dropped or broken: the search still finds what it found.
    await eventually_found(http, server, "wombatine", name)
    async with http.get(f"{server.url}/api/docs", headers=bearer("*")) as resp:
        assert resp.status == 200
        assert name in [d["name"] for d in (await resp.json())["documents"]]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "word", "limit": "0"},
        {"q": "word", "limit": "51"},
        {"q": "word", "limit": "-1"},
        {"q": "word", "limit": "ten"},
        {"q": "word", "limit": "1e3"},
    ],
)
async def test_a_bad_search_is_a_400_with_a_json_error(
    server: ServerProcess, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    async with http.get(f"{server.url}/api/search", params=params, headers=bearer("*")) as resp:
        assert resp.status == 400
        assert isinstance((await resp.json())["error"], str)


# --- titles ---------------------------------------------------------------------------------


async def test_titles_come_from_the_first_heading(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    tag = unique("t")
    texts = {
        f"team/{tag}-atx": (
            "intro text\n\n## Plan for **Q3** ##\n\n# Later heading\n",
            "Plan for Q3",
        ),
        f"team/{tag}-setext": ("Roadmap 2027\n============\n\nbody\n", "Roadmap 2027"),
        f"team/{tag}-fenced": ("```sh\n# not a heading\n```\n\nReal one\n---\n", "Real one"),
        f"team/{tag}-none": ("no heading at all, #hashtag only\n", None),
    }
    for name, (text, _title) in texts.items():
        await put_text(http, server, name, f"{text}\nlemurine")
    for name in texts:
        await eventually_found(http, server, "lemurine", name)

    async with http.get(f"{server.url}/api/docs", headers=bearer("team/")) as resp:
        listed = {d["name"]: d for d in (await resp.json())["documents"]}
    for name, (_text, title) in texts.items():
        assert listed[name]["title"] == title, name
    first = next(iter(texts))
    async with http.get(f"{server.url}/api/docs/{first}", headers=bearer("*")) as resp:
        assert (await resp.json())["title"] == "Plan for Q3"
    results = {r["name"]: r["title"] for r in await found(http, server, "lemurine", "team/")}
    assert all(results[name] == title for name, (_text, title) in texts.items())


# --- each trigger on its own ------------------------------------------------------------------


async def test_a_room_that_leaves_memory_is_indexed_then(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, backend_db: Path | str
) -> None:
    srv = server_factory(backend_db, *NO_QUIET, "--grace-period", "0.5").start()  # type: ignore[arg-type]
    client = await YClient(http, srv.ws_url, "notes/unloaded").connect()
    await client.append("the okapiroo leaves")
    await client.wait_acked()
    await client.close()  # the room unloads after the grace period, and is indexed then
    await eventually_found(http, srv, "okapiroo", "notes/unloaded")


async def test_a_compaction_indexes_a_room_that_keeps_being_edited(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, backend_db: Path | str
) -> None:
    srv = server_factory(backend_db, *NO_QUIET, "--compact-updates", "4").start()  # type: ignore[arg-type]
    client = await YClient(http, srv.ws_url, "notes/compacted").connect()
    try:
        for part in ("the ", "tapirillo ", "comes ", "and ", "goes"):
            await client.append(part)
        await client.wait_acked()
        await eventually_found(http, srv, "tapirillo", "notes/compacted")
    finally:
        await client.close()


async def test_what_the_cli_writes_while_the_server_runs_is_caught_up(
    server_factory: type[ServerProcess],
    http: aiohttp.ClientSession,
    backend_db: Path | str,
    tmp_path: Path,
) -> None:
    srv = server_factory(backend_db, *FAST).start()  # type: ignore[arg-type]
    source = tmp_path / "import.md"
    source.write_text("# Imported\n\nthe quetzalope arrives from the command line\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "import",
            "cli/imported",
            str(source),
            "--db",
            str(backend_db),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    # No room of this server ever held it: the catch-up walk finds it changed, not indexed.
    result = await eventually_found(http, srv, "quetzalope", "cli/imported")
    assert result["title"] == "Imported"
    assert hits(result) == ["quetzalope"]


async def test_documents_never_indexed_are_indexed_after_a_start(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    first = server_factory(db, *NO_QUIET).start()
    for i in range(20):  # more than one batch of the catch-up
        await put_text(http, first, f"old/{i:02}", f"the ibexicorn number {i}")
    assert first.stop() == 0  # a graceful stop indexes loaded rooms: forget that index
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM doc_search")
        conn.execute("DELETE FROM doc_search_state")

    second = server_factory(db, *FAST).start()

    async def all_found() -> bool:
        status, body = await search(http, second, "ibexicorn", scope=None, limit="50")
        return status == 200 and len(body["results"]) == 20

    await eventually(all_found, timeout=90, interval=0.5)


async def test_indexing_waits_out_a_failing_store_and_catches_up(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fault = tmp_path / "disk-full"
    srv = server_factory(None, *FAST, env={FAULT_FILE_VARIABLE: str(fault)}).start()
    fault.touch()  # every write fails now, as on a full disk
    client = await YClient(http, srv.ws_url, "notes/full-disk").connect()
    try:
        await client.append("the dugongoid waits")
        await asyncio.sleep(3)  # several indexer turns fail meanwhile
        assert await found(http, srv, "dugongoid") == []
        fault.unlink()
        await client.wait_acked()
        await eventually_found(http, srv, "dugongoid", "notes/full-disk")
    finally:
        await client.close()
    assert "Traceback" not in srv.log_text()
