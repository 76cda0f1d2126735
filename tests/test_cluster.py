"""Several Tandem instances on one real PostgreSQL, joined by a real redis-server, with real
y-websocket clients spread over them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from pycrdt import Doc, Text

from server import protocol as p
from server.cluster import wire
from server.storage.postgres import PostgresStore
from testkit.serverproc import ServerProcess
from testkit.services import Nginx, Postgres, Redis
from testkit.traces import SVELTE, load_trace

from .conftest import eventually, unique
from .nodeclient import NodeHarness, node_harness
from .wsframes import connect

pytestmark = pytest.mark.cluster


class Cluster:
    """N instances on one database and one Redis."""

    def __init__(self, db: str, redis: Redis, count: int, *args: str) -> None:
        self.db = db
        self.redis = redis
        self.args = args
        self.instances = [self._instance() for _ in range(count)]

    def _instance(self) -> ServerProcess:
        return ServerProcess(self.db, "--redis", self.redis.url, "--keepalive", "2", *self.args)

    def start(self) -> Cluster:
        for instance in self.instances:
            instance.start()
        return self

    def kill(self) -> None:
        for instance in self.instances:
            instance.kill()

    def __getitem__(self, i: int) -> ServerProcess:
        return self.instances[i]


@pytest.fixture
def cluster_of(postgres: Postgres, redis_server: Redis) -> Iterator[type[Cluster]]:
    made: list[Cluster] = []

    class Made(Cluster):
        def __init__(self, count: int = 3, *args: str) -> None:
            super().__init__(postgres.new_database(), redis_server, count, *args)
            made.append(self)

    yield Made
    for cluster in made:
        cluster.kill()


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


async def open_synced(
    node: NodeHarness, server: ServerProcess, client: str, room: str, **options: object
) -> dict:
    await node.call("open", client=client, url=server.ws_url, room=room, **options)
    return await node.call("wait_synced", client=client, timeout=120)


async def metric(http: aiohttp.ClientSession, server: ServerProcess, name: str) -> float:
    """The sum of a metric's samples on one instance."""
    async with http.get(f"{server.url}/metrics") as resp:
        body = await resp.text()
    return sum(
        float(m.group(1))
        for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", body, re.MULTILINE)
    )


async def export(http: aiohttp.ClientSession, server: ServerProcess, room: str) -> str | None:
    async with http.get(f"{server.url}/api/docs/{room}/export?format=txt") as resp:
        return await resp.text() if resp.status == 200 else None


async def test_clients_on_three_instances_converge_and_a_late_joiner_on_any_gets_everything(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(3).start()
    room = unique("spread")
    expected = load_trace()["endContent"]
    for i, (client, version) in enumerate((("a", "v3"), ("b", "v3"), ("c", "v1"))):
        await open_synced(node, cluster[i], client, room, version=version)
    await node.call("replay", clients=["a", "b", "c"], trace=str(SVELTE), block=50, servers="any")
    for client in ("a", "b", "c"):
        await node.call("wait_text", client=client, text=expected, timeout=180)
    # Every instance's own document holds it, and a newcomer anywhere reads all of it.
    for instance in cluster.instances:
        await eventually(lambda instance=instance: _equal(http, instance, room, expected))
    await open_synced(node, cluster[2], "late", room)
    assert await node.call("text", client="late") == expected
    # It crossed through Redis: published by each instance, received by the others.
    for instance in cluster.instances:
        assert await metric(http, instance, "tandem_cluster_published_total") > 0
        assert await metric(http, instance, "tandem_cluster_received_total") > 0
    async with http.get(f"{cluster[0].url}/healthz") as resp:
        health = await resp.json()
    assert resp.status == 200 and health["cluster"]["redis"] == "connected"


async def _equal(http: aiohttp.ClientSession, server: ServerProcess, room: str, text: str) -> bool:
    return await export(http, server, room) == text


async def test_a_late_joiner_instance_loads_while_others_write_and_misses_nothing(
    cluster_of: type[Cluster], node: NodeHarness
) -> None:
    """Subscribe, then load, then take what came after the load: a room loaded on the third
    instance in the middle of a stream of edits ends with all of them."""
    cluster = cluster_of(3).start()
    room = unique("late-sub")
    await open_synced(node, cluster[0], "w", room, params={"ack": "1"})
    writing = asyncio.create_task(_type(node, "w", 300))
    await asyncio.sleep(0.3)
    await open_synced(node, cluster[2], "late", room)
    await writing
    await node.call("wait_acked", client="w", timeout=60)
    expected = await node.call("text", client="w")
    await node.call("wait_text", client="late", text=expected, timeout=60)


async def _type(node: NodeHarness, client: str, count: int) -> None:
    for i in range(count):
        await node.call("insert", client=client, pos=0, text=f"{i};")


async def test_an_acking_writers_instance_is_killed_and_another_serves_every_acked_edit(
    cluster_of: type[Cluster], node: NodeHarness
) -> None:
    cluster = cluster_of(3).start()
    room = unique("kill")
    await open_synced(node, cluster[0], "w", room, params={"ack": "1"})
    await open_synced(node, cluster[1], "watch", room)
    await _type(node, "w", 100)
    acks = await node.call("wait_acked", client="w", timeout=60)
    acked_text = await node.call("text", client="w")
    assert acks["acked"] == acks["sent"]
    cluster[0].kill()  # SIGKILL
    # The watcher on another instance has everything acked; so does a newcomer on a third.
    await node.call("wait_text", client="watch", text=acked_text, timeout=60)
    await open_synced(node, cluster[2], "fresh", room)
    assert await node.call("text", client="fresh") == acked_text
    # The writer comes back through another instance and goes on.
    await open_synced(node, cluster[1], "w2", room, params={"ack": "1"})
    await node.call("insert", client="w2", pos=0, text="after the crash|")
    await node.call("wait_acked", client="w2", timeout=60)
    await node.call("wait_text", client="fresh", text="after the crash|" + acked_text, timeout=60)


async def test_redis_killed_and_restarted_mid_edit_every_instance_acks_on_and_they_converge(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(2).start()
    room = unique("redis-down")
    await open_synced(node, cluster[0], "a", room, params={"ack": "1"})
    await open_synced(node, cluster[1], "b", room, params={"ack": "1"})
    await node.call("insert", client="a", pos=0, text="before|")
    await node.call("wait_text", client="b", text="before|", timeout=60)
    cluster.redis.kill()
    # Both instances go on serving and acking their own clients.
    await node.call("insert", client="a", pos=0, text="A-while-down|")
    await node.call("insert", client="b", pos=0, text="B-while-down|")
    for client in ("a", "b"):
        acks = await node.call("wait_acked", client=client, timeout=60)
        assert acks["acked"] == acks["sent"]

    async def redis_reported_down() -> bool:
        async with http.get(f"{cluster[0].url}/healthz") as resp:
            body = await resp.json()
        return resp.status == 200 and body["cluster"]["redis"] == "unreachable"

    await eventually(redis_reported_down)
    cluster.redis.start()
    await node.call("insert", client="a", pos=0, text="after|")

    async def same_text() -> str | None:
        a, b = await node.call("text", client="a"), await node.call("text", client="b")
        return a if a == b and "after|" in a else None

    final = await eventually(same_text, timeout=90)
    assert "A-while-down|" in final and "B-while-down|" in final and final.endswith("before|")

    async def redis_back() -> bool:
        async with http.get(f"{cluster[1].url}/healthz") as resp:
            return (await resp.json())["cluster"]["redis"] == "connected"

    await eventually(redis_back, timeout=60)
    # What Redis never carried was read back from the store.
    assert (
        sum(
            [
                await metric(http, s, "tandem_cluster_repaired_updates_total")
                for s in cluster.instances
            ]
        )
        > 0
    )


async def test_a_duplicated_message_is_ignored_and_an_unannounced_commit_is_read_back(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(2).start()
    room = unique("dup-drop")
    await open_synced(node, cluster[0], "a", room, params={"ack": "1"})
    await open_synced(node, cluster[1], "b", room)
    client = aioredis.Redis.from_url(cluster.redis.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(wire.channel(room))
    await pubsub.get_message(timeout=10)  # the confirmation: subscribed from here on
    await node.call("insert", client="a", pos=0, text="once|")
    await node.call("wait_text", client="b", text="once|", timeout=60)
    captured = None
    for _ in range(100):  # a None is the subscription's confirmation, or a second gone by
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None and wire.decode(message["data"]).kind == wire.UPDATE:
            captured = message["data"]
            break
    assert captured is not None, "the update was not published"
    before = await metric(http, cluster[1], "tandem_cluster_duplicate_updates_total")
    for _ in range(3):  # Redis delivering it again
        await client.publish(wire.channel(room), captured)
    await eventually(
        lambda: _grew(http, cluster[1], "tandem_cluster_duplicate_updates_total", before + 3)
    )
    assert await node.call("text", client="b") == "once|"
    await pubsub.aclose()
    await client.aclose()

    # A commit no instance announced (its message lost): another writer on the same store.
    store = await PostgresStore.open(cluster.db)
    try:
        doc = Doc()
        doc.apply_update(await _state(store, room))
        with doc.transaction():
            doc.get("content", type=Text).insert(0, "unannounced|")
        store.append(room, doc.get_update(_vector(await _state(store, room))))
        await store.flush()
    finally:
        await store.close()
    for who in ("a", "b"):
        await node.call("wait_text", client=who, text="unannounced|once|", timeout=60)
    assert await metric(http, cluster[0], "tandem_cluster_repaired_updates_total") >= 1


async def _grew(http: aiohttp.ClientSession, server: ServerProcess, name: str, to: float) -> bool:
    return await metric(http, server, name) >= to


async def stored_text(db: str, room: str) -> str:
    """The document's text as the shared store holds it."""
    store = await PostgresStore.open(db)
    try:
        update = await _state(store, room)
    finally:
        await store.close()
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get("content", type=Text))


async def _state(store: PostgresStore, room: str) -> bytes:
    doc = Doc()
    for update in await store.load(room):
        doc.apply_update(update)
    return doc.get_update()


def _vector(update: bytes) -> bytes:
    doc = Doc()
    doc.apply_update(update)
    return doc.get_state()


async def test_deleting_closes_the_documents_editors_on_every_instance(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(3).start()
    room = unique("delete")
    for i, client in enumerate(("a", "b", "c")):
        await open_synced(node, cluster[i], client, room, params={"ack": "1"})
    await node.call("insert", client="a", pos=0, text="doomed")
    await node.call("wait_acked", client="a", timeout=60)
    async with http.delete(f"{cluster[0].url}/api/docs/{room}") as resp:
        assert resp.status in (200, 204), await resp.text()
    for client in ("a", "b", "c"):
        closed = await node.call("wait_closed", client=client, timeout=60)
        assert closed["code"] == 4410, closed


async def test_a_killed_instances_presence_disappears_from_the_others(
    cluster_of: type[Cluster], node: NodeHarness
) -> None:
    cluster = cluster_of(3).start()
    room = unique("presence")
    await open_synced(node, cluster[0], "ann", room, awareness={"user": {"name": "Ann"}})
    await open_synced(node, cluster[1], "bob", room, awareness={"user": {"name": "Bob"}})
    await open_synced(
        node, cluster[2], "cy", room, version="v1", awareness={"user": {"name": "Cy"}}
    )
    for client in ("bob", "cy"):
        await node.call(
            "wait_awareness", client=client, match={"user": {"name": "Ann"}}, timeout=60
        )
    # A connection that closes is removed everywhere at once.
    await node.call("close", client="bob")
    assert list((await node.call("wait_awareness", client="cy", count=1, timeout=30)).values()) == [
        {"user": {"name": "Ann"}}
    ]
    cluster[0].kill()
    # The instance died without a word: its heartbeat key expires (10 s) and the others drop
    # its clients' presence (y-protocols alone would take 30 s).
    assert await node.call("wait_awareness", client="cy", count=0, timeout=25) == {}


async def test_a_restore_and_an_import_on_one_instance_reach_editors_on_the_others(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(2).start()
    room = unique("restore")
    await open_synced(node, cluster[0], "a", room, params={"ack": "1"})
    await open_synced(node, cluster[1], "b", room)
    await node.call("insert", client="a", pos=0, text="first draft")
    await node.call("wait_acked", client="a", timeout=60)
    async with http.post(f"{cluster[0].url}/api/docs/{room}/versions", json={}) as resp:
        assert resp.status == 201
        first = (await resp.json())["id"]
    await node.call("insert", client="a", pos=11, text=", then more")
    await node.call("wait_text", client="b", text="first draft, then more", timeout=60)
    # The restore is a forward edit made on instance 0: instance 1's editor receives it.
    async with http.post(f"{cluster[0].url}/api/docs/{room}/versions/{first}/restore") as resp:
        assert resp.status == 200, await resp.text()
    await node.call("wait_text", client="b", text="first draft", timeout=60)
    # An import on instance 1 (into an empty document) reaches an editor on instance 0.
    fresh = unique("import")
    await open_synced(node, cluster[0], "c", fresh)
    async with http.post(
        f"{cluster[1].url}/api/docs/{fresh}/import",
        data=b"imported text",
        headers={"Content-Type": "text/plain"},
    ) as resp:
        assert resp.status == 201, await resp.text()
    await node.call("wait_text", client="c", text="imported text", timeout=60)


async def test_compaction_runs_once_per_document_however_many_instances_hold_it(
    cluster_of: type[Cluster], node: NodeHarness, postgres: Postgres, http: aiohttp.ClientSession
) -> None:
    cluster = cluster_of(3, "--compact-updates", "40").start()
    room = unique("compact")
    for i, client in enumerate(("a", "b", "c")):
        await open_synced(node, cluster[i], client, room, params={"ack": "1"})
    for round_ in range(50):
        for client in ("a", "b", "c"):
            await node.call("insert", client=client, pos=0, text=f"{client}{round_};")
    for client in ("a", "b", "c"):
        await node.call("wait_acked", client=client, timeout=60)

    async def converged() -> str | None:
        texts = {await node.call("text", client=client) for client in ("a", "b", "c")}
        text = texts.pop()
        return text if not texts and text.count(";") == 150 else None

    expected = await eventually(converged)
    database = cluster.db.rsplit("/", 1)[1]

    def log_rows() -> int:
        return int(postgres.psql(f"SELECT count(*) FROM updates WHERE doc = '{room}'", database))

    # 150 updates, compacted every 40 whichever instance committed them: a snapshot and a
    # short tail remain, and the numbers are those of 150 updates with no gap or repeat.
    await eventually(lambda: log_rows() < 40)
    compactions = 0
    for instance in cluster.instances:
        async with http.get(f"{instance.url}/healthz") as resp:
            compactions += (await resp.json())["compactions"]
    # Each tail of 40 merged once cluster-wide, not once by every instance that saw it pass.
    assert 1 <= compactions <= 150 // 40
    assert (
        int(postgres.psql(f"SELECT last_seq FROM documents WHERE name = '{room}'", database)) >= 150
    )
    assert await stored_text(cluster.db, room) == expected


async def test_postgresql_down_relays_live_acks_nothing_and_commits_everything_once_back(
    node: NodeHarness, http: aiohttp.ClientSession, redis_server: Redis
) -> None:
    """As with a full disk: editors on one instance keep seeing each other, no false "saved",
    /healthz says 503, and once the database is back everything queued is committed."""
    pg = Postgres().start()  # its own: this test stops it
    try:
        cluster = Cluster(pg.new_database(), redis_server, 1).start()
        try:
            room = unique("pg-down")
            await open_synced(node, cluster[0], "w", room, params={"ack": "1"})
            await open_synced(node, cluster[0], "r", room)
            await node.call("insert", client="w", pos=0, text="committed|")
            await node.call("wait_acked", client="w", timeout=60)
            acked_before = (await node.call("acks", client="w"))["acked"]
            pg.stop()
            await node.call("insert", client="w", pos=0, text="queued|")
            await node.call("wait_text", client="r", text="queued|committed|", timeout=60)

            async def unhealthy() -> bool:
                async with http.get(f"{cluster[0].url}/healthz") as resp:
                    return resp.status == 503

            await eventually(unhealthy)
            assert (await node.call("acks", client="w"))["acked"] == acked_before
            pg.start_again()
            acks = await node.call("wait_acked", client="w", timeout=90)
            assert acks["acked"] == acks["sent"] > acked_before
            assert await stored_text(cluster.db, room) == "queued|committed|"
        finally:
            cluster.kill()
    finally:
        pg.close()


async def test_two_instances_behind_a_real_nginx_serve_one_document(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    """The README's nginx configuration, round robin, no sticky sessions: clients land on
    either instance and see one document; when one instance dies they reconnect through
    nginx to the other."""
    cluster = cluster_of(2).start()
    balancer = Nginx([f"127.0.0.1:{instance.port}" for instance in cluster.instances]).start()
    try:
        ws_url = balancer.url.replace("http://", "ws://") + "/ws"
        room = unique("nginx")
        names = ["a", "b", "c", "d"]
        for name in names:
            await node.call("open", client=name, url=ws_url, room=room, params={"ack": "1"})
            await node.call("wait_synced", client=name, timeout=120)
        for name in names:
            await node.call("insert", client=name, pos=0, text=f"{name};")
        for name in names:
            await node.call("wait_acked", client=name, timeout=60)

        async def everyones() -> str | None:
            text = await node.call("text", client="a")
            return text if sorted(text.split(";")[:-1]) == names else None

        text = await eventually(everyones)
        for name in names:
            await node.call("wait_text", client=name, text=text, timeout=60)
        # Round robin put clients on both instances: each relayed the other's updates.
        for instance in cluster.instances:
            assert await metric(http, instance, "tandem_cluster_received_total") > 0
        async with http.get(f"{balancer.url}/api/docs/{room}/export?format=txt") as resp:
            assert resp.status == 200 and await resp.text() == text
        cluster[0].kill()
        await node.call("insert", client="a", pos=0, text="after;")
        for name in names:
            await node.call("wait_text", client=name, text="after;" + text, timeout=90)
    finally:
        balancer.close()


async def test_no_connection_on_one_instance_can_change_a_clients_presence_on_another(
    cluster_of: type[Cluster], node: NodeHarness, http: aiohttp.ClientSession
) -> None:
    """Ownership holds across instances: a peer on instance 1 claiming (at the highest clock)
    and removing the id of a client on instance 0 changes nothing anyone sees, anywhere."""
    cluster = cluster_of(3).start()
    room = unique("presence-hijack")
    ann = {"user": {"name": "Ann"}}
    await open_synced(node, cluster[0], "ann", room, awareness=ann)
    await open_synced(node, cluster[2], "cy", room, awareness={"user": {"name": "Cy"}})
    await node.call("wait_awareness", client="cy", count=1, match=ann, timeout=60)
    ann_id = await node.call("client_id", client="ann")
    mallory = await connect(http, cluster[1], room)
    await mallory.send_bytes(awareness_frame(ann_id, 2**53 - 1, '{"user":{"name":"Mallory"}}'))
    await mallory.send_bytes(awareness_frame(ann_id, 2**53 - 1, "null"))
    await mallory.send_bytes(awareness_frame(4242, 1, '{"user":{"name":"Mal"}}'))
    # Mallory's own id does cross (so her frames were read and relayed where they may be)...
    others = await node.call("wait_awareness", client="cy", count=2, timeout=60)
    assert others[str(ann_id)] == ann
    assert others["4242"] == {"user": {"name": "Mal"}}
    # ... and Ann renaming herself still reaches everyone: she was never locked out.
    await node.call("set_awareness", client="ann", state={"user": {"name": "Ann 2"}})
    await node.call("wait_awareness", client="cy", match={"user": {"name": "Ann 2"}}, timeout=60)
    assert (await node.call("info", client="ann"))["closes"] == 0
    await mallory.close()
    # Mallory's connection closed: her presence is gone on the other instances.
    remaining = await node.call("wait_awareness", client="cy", count=1, timeout=60)
    assert remaining == {str(ann_id): {"user": {"name": "Ann 2"}}}


def awareness_frame(client_id: int, clock: int, state_json: str) -> bytes:
    entry = p.AwarenessEntry(client_id, clock, state_json)
    return p.encode_awareness(p.encode_awareness_update([entry]))
