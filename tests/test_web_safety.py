"""The web holes and protocol details of the hostile-peers work: DNS rebinding, headers on every
response, 1009 that reaches the client, no frame after a Close, read-only step 2."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from server import protocol as p
from server.auth import Role, mint
from server.contract import CloseCode
from testkit.yclient import YClient

from .conftest import ServerProcess, unique
from .nodeclient import NodeHarness, node_harness
from .rawws import OP_BINARY, OP_CLOSE, RawWebSocket
from .wsframes import connect, next_message, text_update

SECRET = "web-safety-test-secret-0123456789abcdefgh"


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


# --- DNS rebinding ---------------------------------------------------------------------------


async def test_a_rebinding_host_gets_421_on_http_and_websocket(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    rebound = f"rebound.example:{server.port}"
    # A foreign page whose name resolves to this server: Host and Origin agree, both foreign.
    headers = {"Host": rebound, "Origin": f"http://{rebound}"}
    for method, path in (
        ("GET", "/api/docs"),
        ("GET", "/"),
        ("POST", "/api/docs/victim/import"),
        ("DELETE", "/api/docs/victim"),
        ("GET", "/healthz"),
    ):
        async with http.request(method, f"{server.url}{path}", headers=headers) as resp:
            assert resp.status == 421, (method, path)
            assert "rebound.example" in await resp.text()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{server.ws_url}/victim", headers=headers)
    assert refused.value.status == 421
    # The loopback names this server is bound to are served.
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "localhost"):
        async with http.get(f"{server.url}/api/docs", headers={"Host": host}) as resp:
            assert resp.status == 200, host


async def test_allowed_host_and_public_url_add_the_names_they_name(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(
        None, "--allowed-host", "Docs.Example", "--public-url", "https://pub.example/tandem"
    ).start()
    for host, status in (
        (f"docs.example:{srv.port}", 200),
        ("pub.example", 200),
        ("docs.example.", 200),
        ("other.example", 421),
    ):
        async with http.get(f"{srv.url}/api/docs", headers={"Host": host}) as resp:
            assert resp.status == status, host
    ws = await http.ws_connect(f"{srv.ws_url}/x", headers={"Host": "pub.example"})
    await ws.close()


# --- headers ---------------------------------------------------------------------------------


async def test_every_response_is_nosniff_and_every_html_page_carries_the_csp(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("headers")
    writer = await YClient(http, server.ws_url, name).connect()
    await writer.append("# title\n")
    await writer.wait_acked()
    await writer.close()
    async with http.post(f"{server.url}/api/docs/{name}/versions") as resp:
        version = (await resp.json())["id"]
    pages = ["/", f"/d/{name}", "/static/index.html", "/static/editor.html", "/offline/editor.html"]
    for path in pages:
        async with http.get(f"{server.url}{path}") as resp:
            assert resp.status == 200, path
            assert resp.content_type == "text/html", path
            csp = resp.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
    others = [
        "/api/docs",
        f"/api/docs/{name}",
        f"/api/docs/{name}/versions",
        f"/api/docs/{name}/versions/{version}/diff/live",
        f"/api/docs/{name}/export?format=md",
        f"/api/docs/{name}/export?format=json",
        f"/api/docs/{name}/export?format=html",
        "/api/docs/no-such-document",
        "/healthz",
        "/metrics",
        "/sw.js",
        "/static/no-such-file.js",
        "/no-such-page",
    ]
    for path in others:
        async with http.get(f"{server.url}{path}") as resp:
            assert resp.headers.get("X-Content-Type-Options") == "nosniff", path
            if resp.content_type == "text/html":  # the exported page: its own, stricter one
                csp = resp.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "sandbox" in csp, path


# --- 1009 ------------------------------------------------------------------------------------


async def test_a_stock_client_sees_1009_for_an_oversize_message(
    server_factory: type[ServerProcess], node: NodeHarness
) -> None:
    srv = server_factory(None, "--max-message-size", "1048576").start()
    name = unique("oversize")
    await node.call("open", client="big", url=srv.ws_url, room=name)
    await node.call("wait_synced", client="big")
    await node.call("insert", client="big", pos=0, text="x" * 3_000_000)
    closed = await node.call("wait_closed", client="big")
    assert closed["code"] == CloseCode.messageTooBig


async def test_no_data_frame_follows_a_close(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--max-message-size", "1048576").start()
    name = unique("after-close")
    raw = await RawWebSocket.connect("127.0.0.1", srv.port, f"/ws/{name}")
    busy = await YClient(http, srv.ws_url, name).connect()

    async def keep_editing() -> None:
        for i in range(400):
            await busy.append(f"[{i}]")
            await asyncio.sleep(0.005)

    editing = asyncio.create_task(keep_editing())
    await asyncio.sleep(0.2)  # the raw client is receiving the edits now
    raw.send(p.encode_sync_update(b"\x00" * 3_000_000))  # aiohttp answers with a Close (1009)
    frames = await raw.frames_until_end()
    await editing
    closes = [i for i, f in enumerate(frames) if f.opcode == OP_CLOSE]
    assert closes, [f.opcode for f in frames]
    assert frames[closes[0]].close_code == CloseCode.messageTooBig
    after = [f for f in frames[closes[0] + 1 :] if f.opcode == OP_BINARY]
    assert after == [], f"{len(after)} data frames after the Close"
    assert any(f.opcode == OP_BINARY for f in frames[: closes[0]])  # it was receiving edits
    raw.close()
    await busy.close()


# --- read-only step 2 ------------------------------------------------------------------------


async def test_a_read_only_step_2_holding_nothing_new_gets_no_permission_denied(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET).start()
    name = unique("viewer-step2")
    write = mint(SECRET, name, Role.write, 3600)
    read = mint(SECRET, name, Role.read, 3600)
    writer = await YClient(http, srv.ws_url, name, token=write).connect()
    await writer.append("some text")
    await writer.wait_acked()
    known = writer.doc.get_update()
    viewer = await connect(http, srv, name, f"?token={read}")
    # What every y-websocket client sends on connect: an empty step 2, then its copy (here the
    # same as the server's).
    await viewer.send_bytes(p.encode_sync_step2(b"\x00\x00"))
    await viewer.send_bytes(p.encode_sync_step2(known))
    await viewer.send_bytes(p.encode_query_awareness())
    await viewer.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await next_message(viewer)
    # The first reply is the step 2 to our step 1: nothing came before it.
    assert isinstance(reply, p.SyncStep2), reply
    # A real edit is refused, and said so once.
    await viewer.send_bytes(p.encode_sync_update(text_update("not allowed")))
    await viewer.send_bytes(p.encode_sync_update(text_update("nor this")))
    denied = await next_message(viewer, p.AuthMessageIn)
    assert isinstance(denied, p.AuthMessageIn) and "read-only" in denied.reason
    await viewer.send_bytes(p.encode_sync_step1(b"\x00"))
    assert isinstance(await next_message(viewer), p.SyncStep2)
    await viewer.close()
    await writer.close()
