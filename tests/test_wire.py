"""The WebSocket contract, frame by frame, against a real server process.

Frames are built by hand with the pure codec so each rule of the wire contract (README, "The
WebSocket endpoint") is checked exactly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from urllib.parse import quote

import aiohttp
import pytest
from pycrdt import Doc, Text
from yarl import URL

from server import protocol as p
from server.contract import CloseCode
from testkit.yclient import YClient

from .conftest import ServerProcess, eventually, unique
from .wsframes import Typist, close_code, connect, next_message, text_update


async def test_server_opens_with_step1_and_answers_an_empty_step2(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server, unique("empty"))
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await next_message(ws)
    assert reply == p.SyncStep2(b"\x00\x00")
    await ws.close()


async def test_updates_reach_other_peers_but_not_the_sender(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("relay")
    alice = await connect(http, server, name)
    bob = await connect(http, server, name)
    update = text_update("hello")
    await alice.send_bytes(p.encode_sync_update(update))
    assert await next_message(bob, p.SyncUpdate) == p.SyncUpdate(update)
    # Alice gets no echo: the next thing she hears is the answer to her own step 1.
    await alice.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await next_message(alice)
    assert isinstance(reply, p.SyncStep2)
    doc = Doc()
    doc.apply_update(reply.update)
    assert str(doc.get("content", type=Text)) == "hello"
    await alice.close()
    await bob.close()


async def test_ack_counts_update_bearing_messages_only_for_ack_connections(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("ack")
    acker = await connect(http, server, name, "?ack=1")
    plain = await connect(http, server, name)
    await acker.send_bytes(p.encode_sync_step2(b"\x00\x00"))  # empty ones count too
    await acker.send_bytes(p.encode_sync_update(text_update("one")))
    await acker.send_bytes(p.encode_sync_update(text_update("two")))
    counts: list[int] = []
    while not counts or counts[-1] < 3:
        counts.append((await next_message(acker, p.Saved)).count)  # type: ignore[attr-defined]
    assert counts == sorted(counts) and counts[-1] == 3
    # The plain connection never sees message 101: after an update of its own, the next
    # frames are the two relayed updates and the answer to its step 1 — no Saved.
    await plain.send_bytes(p.encode_sync_update(text_update("three")))
    await plain.send_bytes(p.encode_sync_step1(b"\x00"))
    seen: list[object] = []
    while not seen or not isinstance(seen[-1], p.SyncStep2):
        seen.append(await next_message(plain))
    assert not any(isinstance(m, p.Saved) for m in seen)
    await acker.close()
    await plain.close()


async def test_awareness_is_relayed_queried_and_removed_when_its_connection_closes(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("presence")
    alice = await connect(http, server, name)
    bob = await connect(http, server, name)
    # The server itself is never a participant: a query on a fresh room gets no states (the
    # step 2 that answers the step 1 sent after it is the first thing bob hears).
    await bob.send_bytes(p.encode_query_awareness())
    await bob.send_bytes(p.encode_sync_step1(b"\x00"))
    assert isinstance(await next_message(bob), p.SyncStep2)
    state = p.encode_awareness_update([p.AwarenessEntry(4242, 1, '{"user":{"name":"Alice"}}')])
    await alice.send_bytes(p.encode_awareness(state))
    relayed = await next_message(bob, p.AwarenessMessage)
    assert p.decode_awareness_update(relayed.update)[0].client_id == 4242  # type: ignore[attr-defined]

    await bob.send_bytes(p.encode_query_awareness())
    answer = await next_message(bob, p.AwarenessMessage)
    [entry] = p.decode_awareness_update(answer.update)  # type: ignore[attr-defined]
    assert (entry.client_id, entry.state_json) == (4242, '{"user":{"name":"Alice"}}')

    # A late joiner is told who is here right after the server's step 1.
    carol = await http.ws_connect(f"{server.ws_url}/{name}")
    assert isinstance(await next_message(carol), p.SyncStep1)
    intro = await next_message(carol, p.AwarenessMessage)
    assert [e.client_id for e in p.decode_awareness_update(intro.update)] == [4242]  # type: ignore[attr-defined]

    await alice.close()
    removal = await next_message(bob, p.AwarenessMessage)
    [gone] = p.decode_awareness_update(removal.update)  # type: ignore[attr-defined]
    assert gone.client_id == 4242 and gone.removed and gone.clock == 2
    await bob.close()
    await carol.close()


async def test_only_clients_that_heard_nothing_for_the_interval_get_keepalive_frames(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    # The module's server runs with --keepalive 2: a silent client must still hear frames,
    # and a client that hears edits more often than every 2 s needs none.
    name = unique("busy")
    idle = await connect(http, server, unique("idle"))
    busy = await connect(http, server, name)
    writer = await connect(http, server, name)
    keepalives = {"idle": 0, "busy": 0}
    edits = 0

    async def count(label: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal edits
        async for msg in ws:
            if msg.data == p.KEEPALIVE_FRAME:
                keepalives[label] += 1
            elif label == "busy":
                edits += 1

    readers = [asyncio.create_task(count("idle", idle)), asyncio.create_task(count("busy", busy))]
    typist = Typist()
    for i in range(20):  # 6 s of edits, one every 0.3 s: never 2 s of silence for "busy"
        await writer.send_bytes(p.encode_sync_update(typist.append(f"{i}")))
        await asyncio.sleep(0.3)
    for ws in (idle, busy, writer):
        await ws.close()
    await asyncio.gather(*readers)
    assert edits == 20
    assert keepalives["busy"] == 0
    assert keepalives["idle"] >= 2  # every interval, not once


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"\x00", CloseCode.protocolError),  # truncated
        (b"\x00\x02\x09abc", CloseCode.protocolError),  # length beyond the data
        (b"\x07", CloseCode.protocolError),  # unknown message type
        (b"\x00\x05\x00", CloseCode.protocolError),  # unknown sync step
        (p.encode_sync_update(b"\x01\x02\x03\x04garbage"), CloseCode.invalidPayload),
        (p.encode_saved(3), CloseCode.protocolError),  # a server-only message
    ],
)
async def test_bad_frames_close_only_the_sender_with_the_contract_code(
    server: ServerProcess, http: aiohttp.ClientSession, frame: bytes, expected: int
) -> None:
    name = unique("bad")
    good = await connect(http, server, name)
    bad = await connect(http, server, name)
    await bad.send_bytes(frame)
    assert await close_code(bad) == expected
    # The room and its other peer carry on.
    update = text_update("still here")
    other = await connect(http, server, name)
    await good.send_bytes(p.encode_sync_update(update))
    assert await next_message(other, p.SyncUpdate) == p.SyncUpdate(update)
    await good.close()
    await other.close()


async def test_text_frames_are_refused_with_1003(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server, unique("text"))
    await ws.send_str("hello")
    assert await close_code(ws) == CloseCode.unsupportedData


async def test_oversize_messages_are_refused_with_1009(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    small = server_factory(None, "--max-message-size", "4096").start()
    ws = await connect(http, small, "big")
    await ws.send_bytes(p.encode_sync_update(b"\x00" * 10_000))
    assert await close_code(ws) == CloseCode.messageTooBig
    # The server is fine afterwards.
    ok = await connect(http, small, "big")
    await ok.close()


@pytest.mark.parametrize(
    "name", ["..", "a/../b", "/lead", "trail/", "sp ace", "x" * 201, "semi;colon", "quote'"]
)
async def test_bad_document_names_close_with_4404_or_get_400(
    server: ServerProcess, http: aiohttp.ClientSession, name: str
) -> None:
    # Percent-encode dots too, so no client-side URL normalisation removes a '..'.
    path = quote(name, safe="/").replace(".", "%2E")
    ws = await http.ws_connect(URL(f"{server.ws_url}/{path}", encoded=True))
    assert await close_code(ws) == CloseCode.badDocumentName
    async with http.get(URL(f"{server.url}/ws/{path}", encoded=True)) as resp:
        assert resp.status == 400
    async with http.get(URL(f"{server.url}/api/docs/{path}", encoded=True)) as resp:
        assert resp.status == 400


async def test_names_with_slashes_and_the_full_alphabet_are_documents(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("team/notes/2026-11_draft.v2~x")
    ws = await connect(http, server, name)
    await ws.send_bytes(p.encode_sync_update(text_update("x")))
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    await next_message(ws, p.SyncStep2)

    async def listed() -> dict | None:
        async with http.get(f"{server.url}/api/docs/{name}") as resp:
            body = await resp.json() if resp.status == 200 else None
            return body if body and body["size_bytes"] > 0 else None

    info = await eventually(listed)
    assert info["name"] == name and info["connections"] == 1 and info["size_bytes"] > 0
    async with http.get(f"{server.url}/api/docs") as resp:
        names = [d["name"] for d in (await resp.json())["documents"]]
    assert name in names
    await ws.close()


async def test_health_and_unknown_documents(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["store"] == "writable"
    async with http.get(f"{server.url}/api/docs/{unique('never-opened')}") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_sigterm_closes_clients_with_1001_flushes_and_exits_0(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory().start()
    ws = await connect(http, srv, "doc")  # no acks asked for: nothing waits for a commit
    typist = Typist()
    for i in range(200):
        await ws.send_bytes(p.encode_sync_update(typist.append(f"{i},")))
    # Answered after the 200 updates were applied (in order): they are queued for the store
    # now, not necessarily committed. SIGTERM right away.
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    await next_message(ws, p.SyncStep2)
    loop = asyncio.get_running_loop()
    exit_code = loop.run_in_executor(None, srv.stop)
    assert await close_code(ws) == CloseCode.goingAway
    assert await exit_code == 0
    srv.start()
    again = await connect(http, srv, "doc")
    await again.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await next_message(again, p.SyncStep2)
    doc = Doc()
    doc.apply_update(reply.update)  # type: ignore[attr-defined]
    assert str(doc.get("content", type=Text)) == "".join(f"{i}," for i in range(200))
    await again.close()


async def test_a_cold_room_greets_with_its_state_and_takes_edits_on_the_whole_document(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    """After a restart a compacted document is served from its stored bytes until something
    needs the Doc: the greeting must still carry the real state vector, a returning client
    must get only what it lacks, and an edit must land on the whole document."""
    srv = server_factory().start()
    writer = await YClient(http, srv.ws_url, "cold").connect()
    for i in range(30):
        await writer.append(f"line {i}\n")
    await writer.wait_acked()
    expected_text = writer.content()
    expected_state = writer.doc.get_state()
    await writer.close()
    srv.stop()  # SIGTERM compacts the log to one row
    with sqlite3.connect(srv.db) as db:
        assert db.execute("SELECT COUNT(*) FROM updates WHERE doc = 'cold'").fetchone() == (1,)
    srv.start()

    ws = await http.ws_connect(f"{srv.ws_url}/cold")
    greeting = await next_message(ws)
    assert greeting == p.SyncStep1(expected_state)
    await ws.close()
    srv.stop()
    srv.start()
    # A returning client (it holds the document) gets an empty diff, then edits.
    returning = YClient(http, srv.ws_url, "cold")
    returning.doc.apply_update(writer.doc.get_update())
    await returning.connect()
    assert returning.content() == expected_text
    srv.stop()
    srv.start()
    # A new client gets the whole document in one step 2, then appends to it.
    joiner = await YClient(http, srv.ws_url, "cold").connect()
    assert joiner.content() == expected_text
    await joiner.append("after the cold join\n")
    await joiner.wait_acked()
    async with http.get(f"{srv.url}/api/docs/cold/export?format=txt") as resp:
        assert await resp.text() == expected_text + "after the cold join\n"
    await joiner.close()
    await returning.close()


async def test_empty_rooms_are_unloaded_after_the_grace_period(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--grace-period", "0.5").start()
    for i in range(20):
        ws = await connect(http, srv, f"doc-{i}")
        await ws.send_bytes(p.encode_sync_update(text_update(f"text {i}")))
        await ws.close()

    async def rooms_loaded() -> int:
        async with http.get(f"{srv.url}/healthz") as resp:
            return (await resp.json())["rooms_loaded"]

    await eventually(lambda: _is_zero(rooms_loaded()))
    # Unloaded, not lost: each comes back from the store.
    ws = await connect(http, srv, "doc-7")
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    reply = await next_message(ws, p.SyncStep2)
    doc = Doc()
    doc.apply_update(reply.update)  # type: ignore[attr-defined]
    assert str(doc.get("content", type=Text)) == "text 7"
    await ws.close()


async def test_a_room_written_to_stays_loaded_for_its_grace_period(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--grace-period", "600").start()
    written = await connect(http, srv, "written")
    await written.send_bytes(p.encode_sync_update(text_update("stays")))
    await written.close()
    read = await connect(http, srv, "only-read")
    await read.close()

    async def loaded() -> int:
        async with http.get(f"{srv.url}/healthz") as resp:
            return int((await resp.json())["rooms_loaded"])

    # Both leaves are processed once the room that was only read has gone (at once); the one
    # written to is still there, for the 600 s of its grace period.
    await eventually(lambda: _equals(loaded(), 1))
    async with http.get(f"{srv.url}/api/docs/written") as resp:
        assert (await resp.json())["connections"] == 0
    assert await loaded() == 1


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]


async def _is_zero(value: object) -> bool:
    return await value == 0  # type: ignore[misc]
