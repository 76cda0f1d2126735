"""Access control, origins and limits: one rule per test, with exact codes and statuses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from pycrdt import Doc, Text

from server import protocol as p
from server.auth import Role, mint
from server.contract import CloseCode
from testkit.serverproc import REPO_ROOT
from testkit.yclient import YClient

from .conftest import ServerProcess, eventually, unique
from .wsframes import close_code, connect, next_message, text_update

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with tokens required and one extra allowed origin."""
    db = tmp_path_factory.mktemp("locked") / "tandem.db"
    srv = ServerProcess(
        db, "--auth-secret", SECRET, "--allowed-origin", "https://editor.example"
    ).start()
    yield srv
    srv.kill()


def token(scope: str, role: str = "write", ttl: float = 3600) -> str:
    return mint(SECRET, scope, Role[role], ttl)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def ws_close_code(http: aiohttp.ClientSession, url: str, **kwargs: object) -> int:
    ws = await http.ws_connect(url, **kwargs)  # type: ignore[arg-type]
    return await close_code(ws)


async def test_without_a_valid_token_sockets_get_4401_and_requests_401(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    url = f"{locked.ws_url}/secret"
    assert await ws_close_code(http, url) == CloseCode.unauthorized
    assert await ws_close_code(http, f"{url}?token=garbage") == CloseCode.unauthorized
    expired = token("secret", ttl=-60)
    assert await ws_close_code(http, f"{url}?token={expired}") == CloseCode.unauthorized
    forged = mint("another-secret-that-is-long-enough", "secret", Role.admin, 3600)
    assert await ws_close_code(http, f"{url}?token={forged}") == CloseCode.unauthorized
    for headers in ({}, bearer("garbage"), bearer(expired)):
        async with http.get(f"{locked.url}/api/docs", headers=headers) as resp:
            assert resp.status == 401
        async with http.get(f"{locked.url}/api/docs/secret/export", headers=headers) as resp:
            assert resp.status == 401
            assert "error" in await resp.json()


async def test_a_token_for_another_document_gets_4403_and_403(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    other = token("other")
    assert await ws_close_code(http, f"{locked.ws_url}/secret?token={other}") == CloseCode.forbidden
    async with http.get(f"{locked.url}/api/docs/secret", headers=bearer(other)) as resp:
        assert resp.status == 403
    prefix = token("team/")
    ws = await connect(http, locked, "team/a", f"?token={prefix}")
    await ws.close()
    assert await ws_close_code(http, f"{locked.ws_url}/teamx?token={prefix}") == CloseCode.forbidden


async def test_read_only_connections_see_everything_but_never_change_the_document(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("readonly")
    writer = await YClient(http, locked.ws_url, name, token=token(name)).connect()
    await writer.append("the original text")
    await writer.wait_acked()
    export = f"{locked.url}/api/docs/{name}/export?format=yjs"
    async with http.get(export, headers=bearer(token(name, "read"))) as resp:
        before = await resp.read()

    # Another editor in the room: it must never receive anything of the viewer's.
    other = await connect(http, locked, name, f"?token={token(name)}")
    # The viewer asks for acks like the editor does: it must never get one.
    viewer = await connect(http, locked, name, f"?token={token(name, 'read')}&ack=1")
    heard: list[object] = []

    async def viewer_hears(kind: type) -> object:
        while True:
            message = await next_message(viewer)
            heard.append(message)
            if isinstance(message, kind):
                return message

    await viewer.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await viewer_hears(p.SyncStep2)
    seen = Doc()
    seen.apply_update(reply.update)  # type: ignore[attr-defined]
    assert str(seen.get("content", type=Text)) == "the original text"
    # Its edits are refused, and it is told once.
    await viewer.send_bytes(p.encode_sync_update(text_update("vandalism")))
    await viewer.send_bytes(p.encode_sync_step2(text_update("more vandalism")))
    denied = await viewer_hears(p.AuthMessageIn)
    assert denied.kind == 0  # type: ignore[attr-defined]
    # Its presence is relayed: it shows as a viewer.
    viewer_state = p.AwarenessEntry(777, 1, '{"user":{"name":"Viewer"}}')
    await viewer.send_bytes(p.encode_awareness(p.encode_awareness_update([viewer_state])))
    # And it keeps receiving live edits.
    await writer.append(" and more")
    live = await viewer_hears(p.SyncUpdate)
    seen.apply_update(live.update)  # type: ignore[attr-defined]
    assert str(seen.get("content", type=Text)) == "the original text and more"
    await writer.wait_acked()
    # No second permission-denied: the next frames are not auth messages.
    await viewer.send_bytes(p.encode_sync_update(text_update("again")))
    await viewer.send_bytes(p.encode_sync_step1(b"\x00"))
    mark = len(heard)
    await viewer_hears(p.SyncStep2)
    assert not any(isinstance(m, p.AuthMessageIn) for m in heard[mark:])
    assert not any(isinstance(m, p.Saved) for m in heard), "a read-only connection got an ack"
    # The other editor got the writer's edit, the viewer's presence, and nothing else of it.
    for_other: list[object] = []
    while not any(isinstance(m, p.SyncUpdate) for m in for_other):
        for_other.append(await next_message(other))
    for message in for_other:
        if isinstance(message, p.SyncUpdate):
            assert b"vandalism" not in message.update and b"again" not in message.update
    await other.close()
    async with http.get(export, headers=bearer(token(name, "read"))) as resp:
        after = await resp.read()
    reference = Doc()
    reference.apply_update(before)
    assert b"vandalism" not in after and b"again" not in after
    assert len(after) > len(before)  # only the writer's " and more" was added
    await viewer.close()
    await writer.close()


async def test_read_only_edits_leave_the_stored_document_byte_identical(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("frozen")
    writer = await YClient(http, locked.ws_url, name, token=token(name)).connect()
    await writer.append("carved in stone")
    await writer.wait_acked()
    await writer.close()
    export = f"{locked.url}/api/docs/{name}/export?format=yjs"
    async with http.get(export, headers=bearer(token(name, "read"))) as resp:
        before = await resp.read()
    viewer = await connect(http, locked, name, f"?token={token(name, 'read')}")
    for i in range(20):
        await viewer.send_bytes(p.encode_sync_update(text_update(f"edit {i}")))
    await next_message(viewer, p.AuthMessageIn)
    await viewer.close()
    async with http.get(export, headers=bearer(token(name, "read"))) as resp:
        assert await resp.read() == before


async def test_roles_decide_who_saves_restores_imports_and_deletes(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("roles")
    writer = await YClient(http, locked.ws_url, name, token=token(name)).connect()
    await writer.append("content")
    await writer.wait_acked()
    base = f"{locked.url}/api/docs/{name}"
    read, write, admin = (bearer(token(name, r)) for r in ("read", "write", "admin"))

    async with http.post(f"{base}/versions", headers=read) as resp:
        assert resp.status == 403
    async with http.post(f"{base}/versions", headers=write) as resp:
        assert resp.status == 201
        version = (await resp.json())["id"]
    for method, path in (
        ("POST", f"/versions/{version}/restore"),
        ("DELETE", f"/versions/{version}"),
        ("POST", "/import"),
        ("DELETE", ""),
    ):
        async with http.request(method, base + path, headers=write, data="x") as resp:
            assert resp.status == 403, (method, path)
    async with http.post(f"{base}/versions/{version}/restore", headers=admin) as resp:
        assert resp.status == 200
    async with http.get(f"{base}/versions", headers=read) as resp:
        assert resp.status == 200
    # Deleting closes the open editors for good (4410) and removes every trace.
    async with http.delete(base, headers=admin) as resp:
        assert resp.status == 200
    await writer._reader  # type: ignore[misc]
    assert writer.close_code == CloseCode.documentDeleted
    async with http.get(base, headers=admin) as resp:
        assert resp.status == 404


async def test_the_document_list_shows_only_what_the_token_covers(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    for name in ("list/a", "list/b", "elsewhere"):
        client = await YClient(http, locked.ws_url, name, token=token(name)).connect()
        await client.append("x")
        await client.wait_acked()
        await client.close()
    async with http.get(f"{locked.url}/api/docs", headers=bearer(token("list/"))) as resp:
        names = [d["name"] for d in (await resp.json())["documents"]]
    assert names == ["list/a", "list/b"]
    async with http.get(f"{locked.url}/api/docs", headers=bearer(token("*", "read"))) as resp:
        assert "elsewhere" in [d["name"] for d in (await resp.json())["documents"]]


async def test_tandem_token_mints_a_token_the_server_accepts(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "token", "cli-doc", "--role", "read", "--ttl", "5m"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"TANDEM_AUTH_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    minted = result.stdout.strip()
    ws = await connect(http, locked, "cli-doc", f"?token={minted}")
    await ws.send_bytes(p.encode_sync_update(text_update("x")))
    assert isinstance(await next_message(ws, p.AuthMessageIn), p.AuthMessageIn)  # read-only
    await ws.close()
    bad = subprocess.run(
        [sys.executable, "-m", "server", "token", "doc", "--ttl", "soon"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"TANDEM_AUTH_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 2 and "duration" in bad.stderr


async def test_browsers_from_other_origins_are_refused_before_the_upgrade(
    locked: ServerProcess, http: aiohttp.ClientSession
) -> None:
    tok = token("origin")
    url = f"{locked.ws_url}/origin?token={tok}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
    async with http.post(
        f"{locked.url}/api/docs/origin/versions",
        headers={"Origin": "http://evil.example", **bearer(tok)},
    ) as resp:
        assert resp.status == 403
    # Same origin, an allowed origin, and no Origin at all (non-browser clients) get in.
    for headers in ({"Origin": locked.url}, {"Origin": "https://editor.example"}, {}):
        ws = await http.ws_connect(url, headers=headers)
        assert isinstance(await next_message(ws), p.SyncStep1)
        await ws.close()


async def test_html_pages_carry_a_content_security_policy(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    for path in ("/", "/d/some/doc"):
        async with http.get(server.url + path) as resp:
            assert resp.status == 200
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "object-src 'none'" in csp


# --- limits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("strict") / "tandem.db"
    srv = ServerProcess(
        db,
        "--max-connections-per-ip", "4",
        "--message-rate", "5",
        "--message-burst", "20",
        "--max-awareness-bytes", "200",
        "--max-rooms", "3",
        "--max-pending-updates", "3",
        "--first-message-timeout", "1",
        "--grace-period", "0",
    ).start()  # fmt: skip
    yield srv
    srv.kill()


async def test_connections_per_address_are_capped(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    held = [await connect(http, strict, "cap") for _ in range(4)]
    assert await ws_close_code(http, f"{strict.ws_url}/cap") == CloseCode.policyViolation
    await held.pop().close()
    # A freed slot can be used again, once the server has finished with the closed socket
    # (its Close reply may reach us a moment before it gives the slot back).
    again = None
    for _ in range(100):
        try:
            again = await connect(http, strict, "cap")
            break
        except AssertionError:
            await asyncio.sleep(0.1)
    assert again is not None, "the freed slot never came back"
    for ws in [*held, again]:
        await ws.close()


async def test_a_flood_of_messages_is_cut_off(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, strict, "flood")
    for _ in range(100):
        try:
            await ws.send_bytes(p.encode_query_awareness())
        except ConnectionResetError:  # cut off before the last of them was written
            break
    assert await close_code(ws) == CloseCode.policyViolation


async def test_an_oversized_awareness_state_is_refused(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, strict, "aware")
    bomb = json.dumps({"user": {"name": "x" * 1000}})
    await ws.send_bytes(
        p.encode_awareness(p.encode_awareness_update([p.AwarenessEntry(1, 1, bomb)]))
    )
    assert await close_code(ws) == CloseCode.policyViolation


async def test_loaded_documents_are_capped_with_try_again_later(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    async def nothing_loaded() -> bool:
        async with http.get(f"{strict.url}/healthz") as resp:
            return (await resp.json())["rooms_loaded"] == 0

    await eventually(nothing_loaded)  # the other tests' rooms are gone
    held = [await connect(http, strict, f"room-{i}") for i in range(3)]
    assert await ws_close_code(http, f"{strict.ws_url}/room-3") == CloseCode.tryAgainLater
    for ws in held:
        await ws.close()


async def test_updates_waiting_for_missing_dependencies_are_capped(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    updates: list[bytes] = []
    source.observe(lambda event: updates.append(event.update))
    for i in range(8):
        text.insert(len(text), f"{i}")
    ws = await connect(http, strict, "pending")
    # Skip the first update: every later one waits for it.
    for update in updates[1:6]:
        await ws.send_bytes(p.encode_sync_update(update))
    assert await close_code(ws) == CloseCode.policyViolation


async def test_a_silent_connection_is_closed_after_the_first_message_deadline(
    strict: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, strict, "silent")
    assert await close_code(ws) == CloseCode.policyViolation
