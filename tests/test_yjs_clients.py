"""Real Yjs clients (the Node y-websocket providers, v3 and the old 1.x) against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from testkit.traces import SVELTE, load_trace

from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def open_synced(
    node: NodeHarness, server: ServerProcess, client: str, room: str, **options: object
) -> dict:
    await node.call("open", client=client, url=server.ws_url, room=room, **options)
    return await node.call("wait_synced", client=client, timeout=120)


async def test_three_clients_typing_a_real_trace_converge_and_a_late_joiner_gets_it_all(
    server: ServerProcess, node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    room = unique("trace")
    expected = load_trace()["endContent"]
    for client, version in (("a", "v3"), ("b", "v3"), ("c", "v1")):
        await open_synced(node, server, client, room, version=version)
    await node.call("replay", clients=["a", "b", "c"], trace=str(SVELTE), block=50)
    for client in ("a", "b", "c"):
        await node.call("wait_text", client=client, text=expected, timeout=120)

    # The server's own document, not only the clients', holds the trace's final text.
    async def stored() -> bool:
        async with http.get(f"{server.url}/api/docs/{room}/export?format=txt") as resp:
            return resp.status == 200 and await resp.text() == expected

    await eventually(stored)
    # The late joiner reads only what the server holds.
    await open_synced(node, server, "late", room)
    assert await node.call("text", client="late") == expected


async def test_a_fresh_client_gets_everything_after_a_server_restart(
    server_factory: type[ServerProcess], node: NodeHarness
) -> None:
    srv = server_factory().start()
    await open_synced(node, srv, "writer", "notes", params={"ack": "1"})
    await node.call("insert", client="writer", pos=0, text="survives a restart")
    await node.call("set_map", client="writer", map="meta", key="title", value="Notes")
    await node.call("wait_acked", client="writer", timeout=60)
    await node.call("close", client="writer")
    assert srv.stop() == 0
    srv.start()
    await open_synced(node, srv, "fresh", "notes", version="v1")
    assert await node.call("text", client="fresh") == "survives a restart"
    # Other shared types than `content` are stored and served too.
    assert await node.call("get_map", client="fresh", map="meta") == {"title": "Notes"}


async def test_awareness_reaches_the_others_and_is_removed_when_a_client_leaves(
    server: ServerProcess, node: NodeHarness
) -> None:
    room = unique("presence")
    await open_synced(node, server, "ann", room, awareness={"user": {"name": "Ann"}})
    await open_synced(node, server, "bob", room, version="v1", awareness={"user": {"name": "Bob"}})
    seen_by_bob = await node.call(
        "wait_awareness", client="bob", match={"user": {"name": "Ann"}}, timeout=60
    )
    assert [s["user"]["name"] for s in seen_by_bob.values()] == ["Ann"]
    seen_by_ann = await node.call("wait_awareness", client="ann", count=1, timeout=60)
    assert [s["user"]["name"] for s in seen_by_ann.values()] == ["Bob"]
    await node.call("close", client="ann")
    # Bob sees Ann go without waiting for the 30 s awareness timeout.
    assert await node.call("wait_awareness", client="bob", count=0, timeout=20) == {}


async def test_an_ack_clients_saved_count_reaches_what_it_sent(
    server: ServerProcess, node: NodeHarness
) -> None:
    room = unique("acks")
    await open_synced(node, server, "w", room, params={"ack": "1"})
    await open_synced(node, server, "plain", room)
    for i in range(40):
        await node.call("insert", client="w", pos=0, text=f"{i},")
    acks = await node.call("wait_acked", client="w", timeout=60)
    assert acks["sent"] >= 41 and acks["acked"] == acks["sent"]
    # A plain y-websocket client is never sent message 101.
    assert (await node.call("acks", client="plain"))["acked"] == 0
    await node.call("wait_text", client="plain", text=await node.call("text", client="w"))


async def test_a_document_of_several_megabytes_syncs_both_ways(
    server: ServerProcess, node: NodeHarness
) -> None:
    room = unique("large")
    big = ("All work and no play makes Jack a dull boy. " * 120_000)[:5_000_000]
    await open_synced(node, server, "up", room, params={"ack": "1"})
    await open_synced(node, server, "live", room)
    await node.call("insert", client="up", pos=0, text=big)
    await node.call("wait_acked", client="up", timeout=120)

    async def live_length() -> bool:
        info = await node.call("info", client="live")
        return info["text_length"] == len(big)

    await eventually(live_length, timeout=120)
    # Down: a new client gets all 5 MB in its first sync.
    info = await open_synced(node, server, "down", room)
    assert info["text_length"] == len(big)
    assert await node.call("text", client="down") == big
