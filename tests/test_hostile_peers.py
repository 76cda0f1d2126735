"""Authorised but hostile peers, part 1: each attack reproduced as an attacker with a valid
(even read-only) token would send it, against real Yjs clients, with the fix asserted.

Forged clocks, yrs-only types, presence hijacks, NaN presence, and deleted documents that old
copies bring back. (Embeds in ``content`` against the editor: tests/test_browser_hostile.py;
every rule of the strict reading: tests/test_updates.py and tests/test_differential.py.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from server import protocol as p
from server.auth import Role, mint
from server.contract import CloseCode
from testkit.yclient import YClient

from . import ycraft as y
from .conftest import ServerProcess, eventually, unique
from .nodeclient import NodeHarness, node_harness
from .wsframes import close_code, connect, next_message

SECRET = "hostile-peers-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("locked") / "tandem.db"
    srv = ServerProcess(db, "--auth-secret", SECRET, "--keepalive", "2").start()
    yield srv
    srv.kill()


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


def token(scope: str, role: str = "write") -> str:
    return mint(SECRET, scope, Role[role], 3600)


# --- hand-built V1 updates (one struct each) ----------------------------------------------


def _uint(value: int) -> bytes:
    return p.write_var_uint(value)


def _string(text: str) -> bytes:
    return p.write_var_string(text)


def string_after(client: int, clock: int, text: str, origin: tuple[int, int]) -> bytes:
    """One string item inserted right after ``origin``, as Yjs writes it."""
    struct = bytes([0x84]) + _uint(origin[0]) + _uint(origin[1]) + _string(text)
    return _uint(1) + _uint(1) + _uint(client) + _uint(clock) + struct + _uint(0)


def root_type(client: int, root: str, type_ref: int) -> bytes:
    """One shared type item on a new root ``root``."""
    struct = bytes([0x07]) + _uint(1) + _string(root) + _uint(type_ref)
    return _uint(1) + _uint(1) + _uint(client) + _uint(0) + struct + _uint(0)


def awareness_frame(client_id: int, clock: int, state_json: str) -> bytes:
    entry = p.AwarenessEntry(client_id, clock, state_json)
    return p.encode_awareness(p.encode_awareness_update([entry]))


async def export_text(http: aiohttp.ClientSession, server: ServerProcess, name: str) -> str:
    async with http.get(f"{server.url}/api/docs/{name}/export?format=txt") as resp:
        assert resp.status == 200
        return await resp.text()


# --- 1. forged edits ------------------------------------------------------------------------


async def test_a_forged_clock_past_2_32_is_refused_and_the_victims_next_edit_is_kept(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("forged-clock")
    victim = await YClient(http, server.ws_url, name).connect()
    await victim.append("0123456789abc")  # the victim's clocks 0..12
    await victim.wait_acked()
    me = victim.doc.client_id
    # Posing as the victim at clock 2^32 + 13: yrs would keep it as the victim's clock 13.
    attacker = await connect(http, server, name)
    await attacker.send_bytes(
        p.encode_sync_update(string_after(me, 2**32 + 13, "FORGED", (me, 12)))
    )
    assert await close_code(attacker) == CloseCode.invalidPayload
    # The victim's real clock 13 is not taken for a duplicate: it is stored and acked.
    await victim.append("!")
    await victim.wait_acked()
    assert await export_text(http, server, name) == "0123456789abc!"
    # A newcomer with stock Yjs reads what the victim sees.
    await node.call("open", client="late", url=server.ws_url, room=name)
    await node.call("wait_text", client="late", text="0123456789abc!")
    await victim.close()


# --- 2. blanked documents -------------------------------------------------------------------


async def test_a_type_only_yrs_knows_is_refused_and_every_yjs_client_still_loads_the_document(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("yrs-only-type")
    writer = await YClient(http, server.ws_url, name).connect()
    await writer.append("still here")
    await writer.wait_acked()
    for type_ref in (7, 9, 15, 5):  # weak link, subdocument, undefined; XML hook (read apart)
        attacker = await connect(http, server, name)
        evil = root_type(4242 + type_ref, f"evil{type_ref}", type_ref)
        await attacker.send_bytes(p.encode_sync_update(evil))
        assert await close_code(attacker) == CloseCode.invalidPayload, type_ref
    # Nothing of it was stored: stock Yjs clients load the whole document.
    for version in ("v3", "v1"):
        await node.call("open", client=version, url=server.ws_url, room=name, version=version)
        await node.call("wait_synced", client=version)
        await node.call("wait_text", client=version, text="still here")
    async with http.get(f"{server.url}/api/docs/{name}/export?format=yjs") as resp:
        stored = await resp.read()
    assert b"evil" not in stored
    await writer.close()


# --- 4. presence ------------------------------------------------------------------------------


async def test_a_read_only_peer_can_neither_hijack_nor_lock_out_anothers_presence(
    locked: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("presence-hijack")
    params = {"token": token(name), "ack": "1"}
    victim = {"user": {"name": "Victim"}}
    await node.call(
        "open", client="victim", url=locked.ws_url, room=name, params=params, awareness=victim
    )
    await node.call(
        "open",
        client="observer",
        url=locked.ws_url,
        room=name,
        params=params,
        awareness={"user": {"name": "Observer"}},
    )
    for client in ("victim", "observer"):
        await node.call("wait_synced", client=client)
    await node.call("wait_awareness", client="observer", count=1, match=victim)
    victim_id = await node.call("client_id", client="victim")

    # A read-only connection claims the victim's id, with the clock at 2^53 - 1 (so that the
    # victim's next clock, 2^53, would have failed the server's own varUint bound), then
    # removes it.
    viewer = await connect(http, locked, name, f"?token={token(name, 'read')}")
    await viewer.send_bytes(awareness_frame(victim_id, 2**53 - 1, '{"user":{"name":"Mallory"}}'))
    await viewer.send_bytes(awareness_frame(victim_id, 2**53 - 1, "null"))
    # The viewer's own id at the highest clock a JavaScript client reaches is fine.
    await viewer.send_bytes(awareness_frame(777, 2**53, '{"user":{"name":"Viewer"}}'))
    await viewer.send_bytes(p.encode_query_awareness())
    # Answered in order, after the frames above: the server holds the victim's own state.
    while True:
        message = await next_message(viewer, p.AwarenessMessage)
        assert isinstance(message, p.AwarenessMessage)
        states = {e.client_id: e for e in p.decode_awareness_update(message.update)}
        if 777 in states:
            break
    assert json.loads(states[victim_id].state_json) == victim
    assert states[victim_id].clock < 2**53 - 1
    assert states[777].clock == 2**53

    # The victim renames itself: everyone sees it, and it was never disconnected.
    await node.call("set_awareness", client="victim", state={"user": {"name": "Victim 2"}})
    await node.call("wait_awareness", client="observer", match={"user": {"name": "Victim 2"}})
    assert (await node.call("info", client="victim"))["closes"] == 0
    others = await node.call("awareness", client="observer")
    assert others[str(victim_id)] == {"user": {"name": "Victim 2"}}
    await viewer.close()


async def test_nan_presence_is_refused_and_a_stock_node_client_survives(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("nan-presence")
    await node.call(
        "open", client="stock", url=server.ws_url, room=name, awareness={"user": {"name": "Stock"}}
    )
    await node.call("wait_synced", client="stock")
    for state in (
        '{"user": NaN}',
        '{"x": Infinity}',
        "[-Infinity]",
        '{"deep": ' * 70 + "1" + "}" * 70,
    ):
        attacker = await connect(http, server, name)
        await attacker.send_bytes(awareness_frame(31337, 1, state))
        assert await close_code(attacker) == CloseCode.invalidPayload, state
    # The stock client (whose JSON.parse would have thrown) is alive, connected and unharmed.
    assert await node.call("ping") == "pong"
    info = await node.call("info", client="stock")
    assert info["status"] == "connected" and info["closes"] == 0
    assert await node.call("awareness", client="stock") == {}


# --- 5. deleted documents ---------------------------------------------------------------------


async def test_a_stale_copy_neither_brings_a_deleted_document_back_nor_merges_into_a_new_one(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    name = unique("deleted")
    await node.call("open", client="old", url=server.ws_url, room=name, params={"ack": "1"})
    await node.call("wait_synced", client="old")
    await node.call("insert", client="old", pos=0, text="the old text")
    await node.call("wait_acked", client="old")

    async with http.delete(f"{server.url}/api/docs/{name}") as resp:
        assert resp.status == 200
    # The open copy is told for good: 4410, and y-websocket stops reconnecting.
    await node.wait_event(
        lambda e: (
            e["event"] == "closed_final"
            and e["client"] == "old"
            and e["code"] == CloseCode.documentDeleted
        )
    )
    # Reconnecting with the old copy (a reload with its IndexedDB copy) gets 4410 again and
    # stores nothing.
    await node.call("connect", client="old")
    await node.call("wait_closed", client="old", count=2, code=CloseCode.documentDeleted)
    async with http.get(f"{server.url}/api/docs/{name}") as resp:
        assert resp.status == 404
    async with http.get(f"{server.url}/api/docs/{name}/export?format=txt") as resp:
        assert resp.status == 404

    # A new document under the same name starts empty, and the old copy never merges into it.
    await node.call("open", client="new", url=server.ws_url, room=name, params={"ack": "1"})
    await node.call("wait_synced", client="new")
    assert await node.call("text", client="new") == ""
    await node.call("insert", client="new", pos=0, text="a new start")
    await node.call("wait_acked", client="new")
    await node.call("connect", client="old")
    await node.call("wait_closed", client="old", count=3, code=CloseCode.documentDeleted)
    # ... also not one edited offline after the deletion (new items pointing into old ones).
    await node.call("insert", client="old", pos=3, text="offline ")
    await node.call("connect", client="old")
    await node.call("wait_closed", client="old", count=4, code=CloseCode.documentDeleted)
    assert await export_text(http, server, name) == "a new start"
    await node.call("open", client="fresh", url=server.ws_url, room=name)
    await node.call("wait_text", client="fresh", text="a new start")
    assert await node.call("text", client="new") == "a new start"

    # Deleted a second time: the copies of both incarnations are refused.
    async with http.delete(f"{server.url}/api/docs/{name}") as resp:
        assert resp.status == 200
    await node.wait_event(
        lambda e: (
            e["event"] == "closed_final"
            and e["client"] == "new"
            and e["code"] == CloseCode.documentDeleted
        )
    )
    for client in ("old", "new"):
        closes = (await node.call("info", client=client))["closes"]
        await node.call("connect", client=client)
        await node.call(
            "wait_closed", client=client, count=closes + 1, code=CloseCode.documentDeleted
        )
    async with http.get(f"{server.url}/api/docs/{name}") as resp:
        assert resp.status == 404


async def test_a_stale_step_2_is_refused_even_without_its_step_1(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    """A client that skips its sync step 1 and sends its old copy as an update is refused too."""
    name = unique("deleted-raw")
    writer = await YClient(http, server.ws_url, name).connect()
    await writer.append("old incarnation")
    await writer.wait_acked()
    old_state = writer.doc.get_update()
    async with http.delete(f"{server.url}/api/docs/{name}") as resp:
        assert resp.status == 200
    await writer.close()
    assert writer.close_code == CloseCode.documentDeleted
    stale = await connect(http, server, name)
    await stale.send_bytes(p.encode_sync_update(old_state))
    assert await close_code(stale) == CloseCode.documentDeleted
    async with http.get(f"{server.url}/api/docs") as resp:
        names = [d["name"] for d in (await resp.json())["documents"]]
    assert name not in names

    async def unloaded() -> bool:
        async with http.get(f"{server.url}/api/docs/{name}") as resp:
            return resp.status == 404

    await eventually(unloaded)


# --- updates that build on what the document lacks -------------------------------------------


async def test_an_update_after_a_gap_waits_as_in_yjs_and_goes_in_once_the_gap_is_filled(
    server: ServerProcess, http: aiohttp.ClientSession, node: NodeHarness
) -> None:
    """yrs would integrate a struct after a gap at once: the server's text (exports, newcomers)
    would show what no browser shows. Tandem holds it back, as Yjs does, and acks it only once
    it is in: an ack never passes a held update."""
    name = unique("gap")
    ws = await connect(http, server, name, "?ack=1")
    acks: list[int] = []

    async def ack() -> int:
        acks.append((await next_message(ws, p.Saved)).count)  # type: ignore[attr-defined]
        return acks[-1]

    await ws.send_bytes(p.encode_sync_update(y.insert_text(5, 0, "abc")))  # clocks 0-2
    assert await ack() == 1
    # Message 2: "X" typed after clock 9, while clocks 3-9 have not arrived.
    gap = y.update(y.Group(5, 10, [y.Item(y.String("X"), origin=y.ID(5, 9))]))
    await ws.send_bytes(p.encode_sync_update(gap))
    await ws.send_bytes(p.encode_sync_update(y.insert_text(6, 0, "Z")))  # message 3
    await ws.send_bytes(p.encode_sync_step1(b"\x00"))
    await next_message(ws, p.SyncStep2)
    shown = await export_text(http, server, name)
    assert "X" not in shown and sorted(shown) == sorted("abcZ")
    await node.call("open", client="late", url=server.ws_url, room=name)
    await node.call("wait_synced", client="late")
    assert await node.call("text", client="late") == shown
    # The gap is filled (message 4): the held update goes in too, and everything is acked.
    fill = y.update(y.Group(5, 3, [y.Item(y.String("defghij"), origin=y.ID(5, 2))]))
    await ws.send_bytes(p.encode_sync_update(fill))
    while await ack() < 4:
        pass
    # Message 3 was committed long before message 2, but no ack passed the held message 2.
    assert acks == [1, 4]
    text = await export_text(http, server, name)
    assert text.replace("Z", "") == "abcdefghijX"
    await node.call("wait_text", client="late", text=text)
    await ws.close()


async def test_a_forged_update_held_for_a_parent_that_is_no_type_is_dropped_not_stored(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    """An item whose parent is an ID nobody has written yet waits; when that ID turns out to
    be text (no type), pycrdt refuses the item. Yjs drops it: so does Tandem, and the real edit
    it was waiting for is applied, stored and acked as if it had never been there."""
    srv = server_factory().start()
    name = unique("poison")
    attacker = await connect(http, srv, name)
    poison = y.update(
        y.Group(77, 0, [y.Item(y.AnyContent([5]), parent=y.ID(66, 0), parent_sub="q")])
    )
    await attacker.send_bytes(p.encode_sync_update(poison))
    victim = await connect(http, srv, name, "?ack=1")
    await victim.send_bytes(p.encode_sync_update(y.insert_text(66, 0, "ab")))
    assert (await next_message(victim, p.Saved)).count == 1  # type: ignore[attr-defined]
    assert await export_text(http, srv, name) == "ab"
    await victim.close()
    await attacker.close()
    srv.stop()
    srv.start()  # the stored log loads again, without the forged item
    assert await export_text(http, srv, name) == "ab"
