"""POST /api/tokens: an admin makes links for others, never wider, higher or longer-lived than
its own token; the minting rule (``Grant.check_minting``) on its own; and what the minted
tokens do on a real server (HTTP and WebSocket)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest

from server import protocol as p
from server.auth import (
    ALGORITHM,
    Authorizer,
    Forbidden,
    Grant,
    Role,
    mint,
    mint_until,
    scope_within,
)
from server.contract import CloseCode
from server.tokens_api import MAX_BODY, MAX_TTL, BadRequest, decode_body, parse_token_request
from testkit.yclient import YClient

from .conftest import ServerProcess, unique
from .wsframes import close_code, connect, next_message, text_update

SECRET = "tokens-api-test-secret-long-enough-for-hs256"
PUBLIC = "https://tandem.example"
DAY = 86_400


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("tokens") / "tandem.db"
    srv = ServerProcess(db, "--auth-secret", SECRET).start()
    yield srv
    srv.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(scope: str = "*", ttl: float = 3600) -> str:
    return mint(SECRET, scope, Role.admin, ttl)


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, SECRET, algorithms=[ALGORITHM])


async def post(
    http: aiohttp.ClientSession,
    srv: ServerProcess,
    body: object,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    """POST /api/tokens; ``body`` is sent as JSON unless it is bytes."""
    headers = kwargs.pop("headers", {}) | (bearer(token) if token else {})
    if isinstance(body, bytes):
        kwargs["data"] = body
    else:
        kwargs["json"] = body
    async with http.post(f"{srv.url}/api/tokens", headers=headers, **kwargs) as resp:
        return resp.status, await resp.json(), resp.headers


async def minted(
    http: aiohttp.ClientSession, srv: ServerProcess, caller: str, **body: object
) -> dict[str, Any]:
    status, answer, _ = await post(http, srv, {"ttl": 3600} | body, caller)
    assert status == 201, answer
    return answer


# --------------------------------------------------------------------------- the rule alone


def test_a_scope_is_within_another_only_if_it_covers_nothing_more() -> None:
    assert scope_within("team/x", "team/")
    assert scope_within("team/sub/", "team/")
    assert scope_within("team/", "team/")
    assert scope_within("anything", "*") and scope_within("a/", "*") and scope_within("*", "*")
    assert scope_within("notes", "notes")
    for scope in ("*", "other", "team", "teamx", "teamx/", "other/"):
        assert not scope_within(scope, "team/"), scope
    for scope in ("notes/", "notes/x", "notesx", "*"):
        assert not scope_within(scope, "notes"), scope


def test_only_an_admin_mints_and_never_wider_higher_or_later_than_itself() -> None:
    team = Grant("team/", Role.admin, expires_at=1000.0)
    team.check_minting("team/x", Role.admin, 1000)
    team.check_minting("team/sub/", Role.read, 999)
    for scope in ("*", "other", "teamx", "team", "other/"):
        with pytest.raises(Forbidden, match="not within"):
            team.check_minting(scope, Role.read, 500)
    with pytest.raises(Forbidden, match="outlive"):
        team.check_minting("team/x", Role.read, 1001)
    for role in (Role.read, Role.write):
        with pytest.raises(Forbidden, match="admin role"):
            Grant("*", role, expires_at=1000.0).check_minting("x", Role.read, 10)
    # a role above the caller's (not reachable through the API, where only admins mint)
    with pytest.raises(Forbidden):
        Grant("*", Role.write, expires_at=1000.0).check_minting("x", Role.admin, 10)
    single = Grant("notes", Role.admin, expires_at=1000.0)
    single.check_minting("notes", Role.write, 10)
    for scope in ("notes/", "notes/a", "other", "*"):
        with pytest.raises(Forbidden):
            single.check_minting(scope, Role.read, 10)


def test_mint_until_expires_at_that_second_and_mint_still_counts_from_now() -> None:
    auth = Authorizer(SECRET)
    until = int(time.time()) + 500
    assert auth.grant(mint_until(SECRET, "a", Role.read, until)).expires_at == until
    assert claims(mint_until(SECRET, "a", Role.read, until, "Ann"))["sub"] == "Ann"
    before = int(time.time())
    exp = claims(mint(SECRET, "a", Role.write, 60))["exp"]
    assert before + 60 <= exp <= int(time.time()) + 60


BAD_BODIES: list[tuple[object, str]] = [
    ([], "JSON object"),
    ("read", "JSON object"),
    ({}, "scope is required"),
    ({"role": "read", "ttl": 60}, "scope is required"),
    ({"scope": "n", "ttl": 60}, "role must be"),
    ({"scope": "n", "role": "owner", "ttl": 60}, "role must be"),
    ({"scope": "n", "role": 3, "ttl": 60}, "role must be"),
    ({"scope": "n", "role": "read"}, "ttl is required"),
    ({"scope": "n", "role": "read", "ttl": "3600"}, "number of seconds"),
    ({"scope": "n", "role": "read", "ttl": True}, "number of seconds"),
    ({"scope": "n", "role": "read", "ttl": None}, "number of seconds"),
    ({"scope": "n", "role": "read", "ttl": 0}, "between 1 and"),
    ({"scope": "n", "role": "read", "ttl": -60}, "between 1 and"),
    ({"scope": "n", "role": "read", "ttl": MAX_TTL + 1}, "between 1 and"),
    ({"scope": "n", "role": "read", "expires_in": 10**400}, "between 1 and"),
    ({"scope": "n", "role": "read", "ttl": 60, "expires_in": 60}, "not both"),
    ({"scope": "n", "role": "read", "ttl": 60, "admin": True}, "unknown fields"),
    ({"scope": "", "role": "read", "ttl": 60}, "scope"),
    ({"scope": 5, "role": "read", "ttl": 60}, "scope must be a string"),
    ({"scope": "../x", "role": "read", "ttl": 60}, "'..'"),
    ({"scope": "/x", "role": "read", "ttl": 60}, "start or end"),
    ({"scope": "team//", "role": "read", "ttl": 60}, "start or end"),
    ({"scope": "/", "role": "read", "ttl": 60}, "scope"),
    ({"scope": "a b", "role": "read", "ttl": 60}, "letters, digits"),
    ({"scope": "**", "role": "read", "ttl": 60}, "letters, digits"),
    ({"scope": "n", "role": "read", "ttl": 60, "subject": 7}, "subject must be a string"),
    ({"scope": "n", "role": "read", "ttl": 60, "subject": ""}, "printable"),
    ({"scope": "n", "role": "read", "ttl": 60, "subject": "a\nb"}, "printable"),
    ({"scope": "n", "role": "read", "ttl": 60, "subject": "x" * 201}, "printable"),
    ({"scope": "team/", "role": "read", "ttl": 60, "document": "other"}, "not within"),
    ({"scope": "team/", "role": "read", "ttl": 60, "document": "team/"}, "start or end"),
    ({"scope": "team/", "role": "read", "ttl": 60, "document": ["team/a"]}, "must be a string"),
]


@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
def test_a_bad_request_is_refused_saying_what_is_wrong(body: object, words: str) -> None:
    with pytest.raises(BadRequest, match=words.replace("(", r"\(")):
        parse_token_request(body)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "must be JSON"),
        (b"   ", "must be JSON"),
        (b"{", "not JSON"),
        (b"scope=n&role=read", "not JSON"),
        (b'{"scope": "n", "ttl": NaN}', "NaN is not JSON"),
        (b'{"scope": "n", "ttl": Infinity}', "Infinity is not JSON"),
        (b'{"role": "read", "role": "admin"}', "repeats a field"),
        (b'{"scope": "\xff"}', "UTF-8"),
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
    ],
)
def test_a_body_that_is_not_strict_json_is_refused(raw: bytes, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        decode_body(raw)


def test_the_link_opens_the_document_or_for_a_prefix_the_named_document_or_home() -> None:
    base = {"role": "read", "ttl": 60}
    assert parse_token_request(base | {"scope": "notes"}).document == "notes"
    assert parse_token_request(base | {"scope": "team/"}).document is None
    assert parse_token_request(base | {"scope": "*"}).document is None
    assert parse_token_request(base | {"scope": "team/", "document": "team/a/b"}).document == (
        "team/a/b"
    )
    assert parse_token_request(base | {"scope": "*", "document": "x"}).document == "x"
    assert parse_token_request({"scope": "n", "role": "read", "expires_in": 90.5}).ttl == 90.5


# --------------------------------------------------------------------------- the API


async def test_an_admin_mints_read_write_and_admin_links_for_a_document(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("shared")
    caller = admin("*")
    for role in ("read", "write", "admin"):
        before = int(time.time())
        status, answer, headers = await post(
            http, locked, {"scope": name, "role": role, "ttl": 600, "subject": "Guest"}, caller
        )
        assert status == 201, answer
        assert headers["Cache-Control"] == "no-store"
        assert set(answer) == {"token", "url", "scope", "role", "expires_at"}
        assert answer["scope"] == name and answer["role"] == role
        assert answer["url"] == f"{locked.url}/d/{name}?token={answer['token']}"
        assert before + 600 <= answer["expires_at"] <= int(time.time()) + 600
        grant = Authorizer(SECRET).grant(answer["token"])
        assert (grant.scope, grant.role.name, grant.subject) == (name, role, "Guest")
        assert grant.expires_at == answer["expires_at"]
    # the token may come as ?token= too (what an editor page holds)
    async with http.post(
        f"{locked.url}/api/tokens?token={caller}",
        json={"scope": name, "role": "read", "expires_in": 60},
    ) as resp:
        assert resp.status == 201
        assert "sub" not in claims((await resp.json())["token"])


async def test_without_the_admin_role_nothing_is_minted(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    body = {"scope": "notes", "role": "read", "ttl": 60}
    for role in (Role.read, Role.write):
        for scope in ("notes", "*"):
            status, answer, _ = await post(http, locked, body, mint(SECRET, scope, role, 3600))
            assert status == 403, answer
            assert "admin role" in answer["error"]
    # and no, a bad or an expired token: 401, whatever the body
    for token in (
        None,
        "garbage",
        admin("*", ttl=-60),
        mint("another-secret-that-is-long-enough-for-hs256", "*", Role.admin, 60),
    ):
        status, answer, _ = await post(http, locked, body, token)
        assert status == 401, (token, answer)
        assert answer["error"]


async def test_an_admin_of_a_prefix_mints_only_within_it(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    caller = admin("team/")
    for scope in ("team/x", "team/sub/", "team/", "team/a/b"):
        for role in ("read", "admin"):
            answer = await minted(http, locked, caller, scope=scope, role=role)
            assert answer["scope"] == scope
    for scope in ("*", "other", "teamx", "team", "teamx/", "other/"):
        for role in ("read", "admin"):
            body = {"scope": scope, "role": role, "ttl": 60}
            status, answer, _ = await post(http, locked, body, caller)
            assert status == 403, (scope, role, answer)
            assert "not within" in answer["error"]
    # a link to one document of the prefix opens it; one to the prefix opens the home page
    one = await minted(http, locked, caller, scope="team/", role="read", document="team/notes")
    assert one["url"] == f"{locked.url}/d/team/notes?token={one['token']}"
    home = await minted(http, locked, caller, scope="team/", role="read")
    assert home["url"] == f"{locked.url}/?token={home['token']}"
    # an admin of one document mints for that document only
    single = admin("team/notes")
    await minted(http, locked, single, scope="team/notes", role="write")
    for scope in ("team/notes/", "team/", "team/other", "*"):
        status, answer, _ = await post(
            http, locked, {"scope": scope, "role": "read", "ttl": 60}, single
        )
        assert status == 403, (scope, answer)


async def test_a_minted_token_never_outlives_the_callers(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    caller = admin("*", ttl=3600)
    caller_exp = claims(caller)["exp"]
    # asking for longer is clamped to the caller's own expiry (documented: not refused)
    week = await minted(http, locked, caller, scope="n", role="read", ttl=7 * DAY)
    assert week["expires_at"] == caller_exp
    assert claims(week["token"])["exp"] == caller_exp
    # and so along a chain: an admin minted by an admin cannot outlive the first one
    second = await minted(http, locked, caller, scope="team/", role="admin", ttl=30 * DAY)
    third = await minted(http, locked, second["token"], scope="team/x", role="admin", ttl=MAX_TTL)
    assert third["expires_at"] <= caller_exp
    assert claims(third["token"])["exp"] <= caller_exp
    # shorter is as asked
    before = int(time.time())
    short = await minted(http, locked, caller, scope="n", role="read", ttl=120)
    assert before + 120 <= short["expires_at"] <= int(time.time()) + 120 <= caller_exp


async def test_garbage_bodies_get_400_with_a_json_error(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    caller = admin("*")
    json_type = {"Content-Type": "application/json"}
    for raw in (
        b"",
        b"{",
        b"null",
        b'{"scope": "n", "role": "read", "ttl": NaN}',
        b'{"scope": "n", "role": "read", "role": "admin", "ttl": 60}',
        b"\xff\xfe",
        b"[" * 4000,
        json.dumps({"scope": "n", "role": "read", "ttl": 60, "extra": 1}).encode(),
        json.dumps({"scope": "../n", "role": "read", "ttl": 60}).encode(),
        json.dumps({"scope": "n", "role": "read", "ttl": 400 * DAY}).encode(),
    ):
        status, answer, _ = await post(http, locked, raw, caller, headers=json_type)
        assert status == 400, (raw[:40], answer)
        assert isinstance(answer["error"], str) and answer["error"]
    # too large: 413 before it is read; not JSON by type: 415
    big = b'{"scope": "n", "role": "read", "ttl": 60, "subject": "' + b"x" * MAX_BODY + b'"}'
    status, answer, _ = await post(http, locked, big, caller, headers=json_type)
    assert status == 413 and "larger than" in answer["error"]
    status, answer, _ = await post(
        http, locked, b'{"scope": "n"}', caller, headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and "application/json" in answer["error"]
    # the server is fine afterwards
    await minted(http, locked, caller, scope="n", role="read")


async def test_in_open_mode_there_is_nothing_to_mint(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    for body in ({"scope": "n", "role": "read", "ttl": 60}, b"garbage"):
        status, answer, _ = await post(http, server, body, admin("*"))
        assert status == 409, answer
        assert "open mode" in answer["error"]
        assert "anyone with the address can read and edit" in answer["error"]


async def test_the_link_uses_the_public_url_when_the_server_has_one(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET, "--public-url", PUBLIC + "/").start()
    answer = await minted(http, srv, admin("*"), scope="team/notes", role="write")
    assert answer["url"] == f"{PUBLIC}/d/team/notes?token={answer['token']}"


async def test_a_minted_token_does_exactly_what_its_role_allows(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("roles")
    caller = admin("*")
    writer = (await minted(http, locked, caller, scope=name, role="write"))["token"]
    reader = (await minted(http, locked, caller, scope=name, role="read"))["token"]
    docs = f"{locked.url}/api/docs/{name}"

    # write: PUT text works, the WebSocket edits and is acked
    async with http.put(f"{docs}/text", data="from the writer", headers=bearer(writer)) as resp:
        assert resp.status == 200, await resp.text()
    editor = await YClient(http, locked.ws_url, name, token=writer).connect()
    assert editor.content() == "from the writer"
    await editor.append(" and its editor")
    await editor.wait_acked()

    # read: GET state and export work, PUT text and POST append are 403
    async with http.get(f"{docs}/state", headers=bearer(reader)) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/octet-stream"
    async with http.get(f"{docs}/export?format=txt", headers=bearer(reader)) as resp:
        assert await resp.text() == "from the writer and its editor"
    for method, path in (("PUT", "/text"), ("POST", "/append")):
        async with http.request(method, docs + path, data="x", headers=bearer(reader)) as resp:
            assert resp.status == 403, method
    # and no admin action: the reader (and the writer) cannot mint or delete
    async with http.delete(docs, headers=bearer(writer)) as resp:
        assert resp.status == 403

    # read on the WebSocket: it follows the document, its edits are refused and it is told
    viewer = await connect(http, locked, name, f"?token={reader}")
    await viewer.send_bytes(p.encode_sync_update(text_update("vandalism")))
    denied = await next_message(viewer, p.AuthMessageIn)
    assert denied.kind == 0  # type: ignore[attr-defined]
    await editor.append("!")
    await editor.wait_acked()
    live = await next_message(viewer, p.SyncUpdate)
    assert b"vandalism" not in live.update  # type: ignore[attr-defined]
    await viewer.close()
    await editor.close()
    async with http.get(f"{docs}/export?format=txt", headers=bearer(reader)) as resp:
        assert await resp.text() == "from the writer and its editor!"

    # a minted token covers its scope only
    elsewhere = unique("elsewhere")
    async with http.get(f"{locked.url}/api/docs/{elsewhere}/state", headers=bearer(reader)) as resp:
        assert resp.status == 403
    ws = await http.ws_connect(f"{locked.ws_url}/{elsewhere}?token={writer}")
    assert await close_code(ws) == CloseCode.forbidden
