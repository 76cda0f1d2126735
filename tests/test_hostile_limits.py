"""Authorised but hostile peers, part 2: resources with no bound, tokens checked only at
connect, secrets too weak. Each attack reproduced and the bound asserted."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server import protocol as p
from server.auth import Role, mint
from server.contract import CloseCode
from testkit.serverproc import REPO_ROOT
from testkit.yclient import YClient

from . import ycraft as y
from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness
from .test_durability import rss_bytes
from .wsframes import close_code, connect, next_message

SECRET = "hostile-limits-test-secret-0123456789abcdef"


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def rooms_loaded(http: aiohttp.ClientSession, server: ServerProcess) -> int:
    async with http.get(f"{server.url}/healthz") as resp:
        return int((await resp.json())["rooms_loaded"])


def awareness_frame(entries: list[tuple[int, int, str]]) -> bytes:
    update = p.encode_awareness_update([p.AwarenessEntry(*entry) for entry in entries])
    return p.encode_awareness(update)


# --- rooms -------------------------------------------------------------------------------------


async def test_a_connect_and_leave_flood_does_not_keep_a_real_editor_out(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    # Few room slots and a long grace period: rooms that stayed for the grace period would
    # shut everyone else out (1013) for minutes.
    srv = server_factory(None, "--max-rooms", "40", "--grace-period", "600").start()

    async def connect_and_leave(i: int) -> None:
        ws = await http.ws_connect(f"{srv.ws_url}/flood/{i}", max_msg_size=0)
        await ws.receive(timeout=60)  # the greeting, or the refusal
        await ws.close()

    for start in range(0, 400, 40):
        await asyncio.gather(*(connect_and_leave(i) for i in range(start, start + 40)))

    async def none_loaded() -> bool:
        return await rooms_loaded(http, srv) == 0

    await eventually(none_loaded)  # never written to: let go at once, grace period or not
    name = unique("real-editor")
    await node.call("open", client="editor", url=srv.ws_url, room=name, params={"ack": "1"})
    await node.call("wait_synced", client="editor")
    await node.call("insert", client="editor", pos=0, text="I got in")
    await node.call("wait_acked", client="editor")
    # (Its first try may meet the new-document rate of this address, spent by the flood: 1013,
    # and y-websocket tries again.)


async def test_new_documents_per_address_are_rate_limited_but_loaded_ones_are_not(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--new-room-rate", "0.01", "--new-room-burst", "3").start()
    kept = [await connect(http, srv, f"rate/{i}") for i in range(3)]
    refused = await http.ws_connect(f"{srv.ws_url}/rate/3", max_msg_size=0)
    assert await close_code(refused) == CloseCode.tryAgainLater
    # Joining a document that is loaded already costs nothing.
    for _ in range(5):
        again = await connect(http, srv, "rate/0")
        await again.close()
    for ws in kept:
        await ws.close()


async def test_updates_that_wait_are_capped_and_stored_only_once_they_can_go_in(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    db = tmp_path / "pending.db"
    srv = server_factory(db, "--max-pending-updates", "5", "--grace-period", "0.2").start()
    name = unique("pending")

    def waiting(client: int) -> bytes:
        # An item at clock 5 of a client whose clocks 0-4 have not arrived: it waits.
        return y.update(y.Group(client, 5, [y.Item(y.String("x"), parent="content")]))

    def stored_rows() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM updates WHERE doc = ?", (name,)).fetchone()[0]

    async def unloaded() -> bool:
        return await rooms_loaded(http, srv) == 0

    ws = await connect(http, srv, name)
    for client in range(1000, 1005):
        await ws.send_bytes(p.encode_sync_update(waiting(client)))
    await ws.send_bytes(p.encode_sync_update(waiting(2000)))  # the sixth: over the cap
    assert await close_code(ws) == CloseCode.policyViolation
    await eventually(unloaded)
    # Held in memory, never stored: a reload cannot make them pile up (their senders keep
    # them, unacknowledged, and send them again).
    assert stored_rows() == 0
    ws = await connect(http, srv, name)
    for client in range(3000, 3005):
        await ws.send_bytes(p.encode_sync_update(waiting(client)))
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    await next_message(ws, p.SyncStep2)
    await ws.close()
    await eventually(unloaded)
    assert stored_rows() == 0


# --- presence ------------------------------------------------------------------------------------


async def test_an_awareness_flood_neither_cuts_joiners_off_nor_grows_memory(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET).start()
    name = unique("awareness-flood")
    read = mint(SECRET, name, Role.read, 3600)
    write = mint(SECRET, name, Role.write, 3600)
    writer = await YClient(http, srv.ws_url, name, token=write).connect()
    await writer.append("the text")
    await writer.wait_acked()
    rss_before = rss_bytes(srv.proc.pid)  # type: ignore[union-attr]

    big = json.dumps({"user": {"name": "x" * 60_000}})
    codes = []
    for flooder in range(20):
        # 16 MiB of states from one read-only connection, 64 KB ids at a time.
        ws = await connect(http, srv, name, f"?token={read}")
        base = 10_000 * (flooder + 1)
        try:
            for batch in range(0, 256, 4):
                entries = [(base + batch + i, 1, big) for i in range(4)]
                await ws.send_bytes(awareness_frame(entries))
        except ConnectionResetError:
            pass
        codes.append(await close_code(ws))
    assert set(codes) == {CloseCode.policyViolation}

    # Joiners sync beside it, with stock y-websocket, and get the document.
    for client in ("j1", "j2"):
        params = {"token": write}
        await node.call("open", client=client, url=srv.ws_url, room=name, params=params)
        await node.call("wait_text", client=client, text="the text")
        assert (await node.call("info", client=client))["closes"] == 0
    grown = rss_bytes(srv.proc.pid) - rss_before  # type: ignore[union-attr]
    print(f"RSS after 20 connections tried 16 MiB of awareness each: {grown / 2**20:+.1f} MiB")
    assert grown < 64 * 1024 * 1024  # unbounded, it was 20 x 16 MiB
    await writer.close()


async def test_one_document_holds_at_most_its_awareness_cap(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("awareness-room-cap")
    state = json.dumps({"user": {"name": "y" * 60_000}})
    sockets = []
    codes = []
    for i in range(24):  # 24 x 60 KB > 1 MiB
        ws = await connect(http, server, name)
        await ws.send_bytes(awareness_frame([(50_000 + i, 1, state)]))
        await ws.send_bytes(p.encode_query_awareness())
        while True:  # the answer to the query holds our own state, or we are closed
            msg = await ws.receive(timeout=60)
            if msg.type is not aiohttp.WSMsgType.BINARY:
                codes.append(ws.close_code)
                break
            message = p.decode_message(msg.data)
            if isinstance(message, p.AwarenessMessage) and any(
                e.client_id == 50_000 + i for e in p.decode_awareness_update(message.update)
            ):
                sockets.append(ws)
                break
    assert codes and set(codes) == {CloseCode.policyViolation}
    joiner = await http.ws_connect(f"{server.ws_url}/{name}", max_msg_size=0)
    greeting = 0
    await joiner.send_bytes(p.encode_query_awareness())
    message = await next_message(joiner, p.AwarenessMessage)
    assert isinstance(message, p.AwarenessMessage)
    greeting = len(message.update)
    assert greeting <= 1024 * 1024 + 4096
    for ws in [*sockets, joiner]:
        await ws.close()


# --- heavy requests ---------------------------------------------------------------------------


def _many_repeated_lines(seed: int) -> str:
    """~1 MB of text whose lines repeat (but rarely enough that difflib treats none as junk):
    difflib's worst case, seconds for one diff."""
    rng = random.Random(seed)
    lines = [f"line {i} " + "x" * 30 + "\n" for i in range(150)]
    return "".join(rng.choice(lines) for _ in range(25_000))


async def _two_big_versions(
    http: aiohttp.ClientSession, srv: ServerProcess, name: str
) -> tuple[int, str]:
    async with http.post(f"{srv.url}/api/docs/{name}/import", data=_many_repeated_lines(1)) as r:
        assert r.status == 201
    async with http.post(f"{srv.url}/api/docs/{name}/versions", json={"label": "a"}) as resp:
        first = (await resp.json())["id"]
    client = await YClient(http, srv.ws_url, name).connect()
    captured: list[bytes] = []
    sub = client.doc.observe(lambda event: captured.append(event.update))
    with client.doc.transaction():
        del client.text[0 : len(client.text)]
        client.text.insert(0, _many_repeated_lines(2))
    client.doc.unobserve(sub)
    for update in captured:
        await client._send_update_bearing(p.encode_sync_update(update))
    await client.wait_acked()
    await client.close()
    return first, f"{srv.url}/api/docs/{name}/versions/{first}/diff/live"


async def test_healthz_answers_while_a_big_diff_runs(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--work-timeout", "120").start()
    _first, diff_url = await _two_big_versions(http, srv, unique("big-diff"))

    async def diff() -> int:
        async with http.get(diff_url) as resp:
            await resp.read()
            return resp.status

    running = asyncio.create_task(diff())
    answered_while_running = 0
    while not running.done():
        async with http.get(f"{srv.url}/healthz") as resp:
            assert resp.status == 200
        if not running.done():
            answered_while_running += 1
        await asyncio.sleep(0.05)
    assert await running == 200
    print(f"/healthz answered {answered_while_running} times while the diff ran")
    assert answered_while_running >= 3


async def test_heavy_requests_have_time_and_size_caps(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    srv = server_factory(None, "--work-timeout", "0.3").start()
    name = unique("capped")
    _first, diff_url = await _two_big_versions(http, srv, name)
    async with http.get(diff_url) as resp:
        assert resp.status == 503
        assert "took longer than" in (await resp.json())["error"]
    # The worker that was stopped is replaced: small work goes on.
    async with http.get(f"{srv.url}/api/docs/{name}/export?format=txt") as resp:
        assert resp.status == 200
    small = server_factory(tmp_path / "small.db", "--max-work-bytes", "100000").start()
    _first, diff_url = await _two_big_versions(http, small, name)
    async with http.get(diff_url) as resp:
        assert resp.status == 413
        assert "more than this request may take" in (await resp.json())["error"]
    async with http.get(f"{small.url}/api/docs/{name}/export?format=html") as resp:
        assert resp.status == 413


# --- versions ------------------------------------------------------------------------------------


async def test_named_versions_are_capped_and_an_identical_state_is_not_saved_twice(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--max-versions", "3").start()
    name = unique("versions-cap")
    base = f"{srv.url}/api/docs/{name}"
    client = await YClient(http, srv.ws_url, name).connect()

    async def save(label: str) -> tuple[int, dict[str, object]]:
        async with http.post(f"{base}/versions", json={"label": label}) as resp:
            return resp.status, await resp.json()

    ids = []
    for i in range(3):
        await client.append(f"edit {i}\n")
        await client.wait_acked()
        status, body = await save(f"v{i}")
        assert status == 201
        again = await save(f"v{i} again")  # nothing changed: the same version
        assert again == (201, body)
        ids.append(body["id"])
    assert len(set(ids)) == 3
    await client.append("one more\n")
    await client.wait_acked()
    status, body = await save("over the cap")
    assert status == 409 and "named versions" in str(body["error"])
    async with http.get(f"{base}/versions") as resp:
        assert len(await resp.json()) == 3
    for bad in ("live", "abc", "-1", "0", "99999", f"{ids[0]}x"):
        async with http.delete(f"{base}/versions/{bad}") as resp:
            assert resp.status == 404, bad
            assert "error" in await resp.json()
    async with http.delete(f"{base}/versions/{ids[0]}") as resp:
        assert resp.status == 200
    async with http.delete(f"{base}/versions/{ids[0]}") as resp:
        assert resp.status == 404  # gone already
    status, _body = await save("fits again")
    assert status == 201
    await client.close()


# --- timeouts ------------------------------------------------------------------------------------


async def test_a_half_open_handshake_and_a_trickling_body_are_closed(
    server_factory: type[ServerProcess],
) -> None:
    srv = server_factory(None, "--request-timeout", "1").start()
    # Headers that never end (the WebSocket upgrade of a client that stalls).
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(
        f"GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n".encode()
    )
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 60) == b""  # closed by the server
    writer.close()
    # A body that trickles in.
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(
        f"POST /api/docs/slow/import HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        "Content-Length: 1000\r\n\r\nonly a little".encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 60)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    writer.close()
    # A WebSocket lives on past the request timeout.
    async with aiohttp.ClientSession() as http:
        ws = await connect(http, srv, "lives-on")
        await asyncio.sleep(2.5)
        await ws.send_bytes(p.encode_sync_step1(b"\x00"))
        assert isinstance(await next_message(ws, p.SyncStep2), p.SyncStep2)
        await ws.close()


# --- tokens and secrets -----------------------------------------------------------------------


async def test_a_socket_is_closed_with_4401_when_its_token_expires(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET).start()
    name = unique("expiring")
    brief = mint(SECRET, name, Role.write, 3)
    client = await YClient(http, srv.ws_url, name, token=brief).connect()
    await client.append("before expiry")
    await client.wait_acked()
    await asyncio.wait_for(client._reader, 60)  # until the server closes it
    assert client.close_code == CloseCode.unauthorized
    # A fresh token still reads what was written before.
    fresh = mint(SECRET, name, Role.read, 3600)
    reader = await YClient(http, srv.ws_url, name, ack=False, token=fresh).connect()
    assert reader.content() == "before expiry"
    await reader.close()


@pytest.mark.parametrize("secret", ["", "x", "a" * 31])
def test_short_and_empty_secrets_are_refused_at_start(secret: str, tmp_path: Path) -> None:
    for args, env in (
        (["--auth-secret", secret], {}),
        ([], {"TANDEM_AUTH_SECRET": secret}),
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--port",
                "0",
                "--db",
                str(tmp_path / "s.db"),
                *args,
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert result.returncode == 2, result.stderr
        assert "auth secret" in result.stderr
    minted = subprocess.run(
        [sys.executable, "-m", "server", "token", "doc", "--auth-secret", secret or "''"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert minted.returncode == 2 and "auth secret" in minted.stderr


def test_a_32_byte_secret_is_accepted(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "ok.db", "--auth-secret", "k" * 32).start()
    try:
        assert "Tandem listening" in srv.log_text()
    finally:
        srv.kill()
