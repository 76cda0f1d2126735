"""Webhooks against a real local HTTP receiver: signed events, debounced changes, a receiver
that is down and comes back, a server killed between commit and delivery."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from testkit.serverproc import REPO_ROOT, ServerProcess
from testkit.services import free_port
from testkit.yclient import YClient

from .conftest import eventually, unique

SECRET = "webhook-secret-for-the-tests-0123456789"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on a free port that records what it is sent; it can answer with an
    error, hang, or not listen at all."""

    port: int = field(default_factory=free_port)
    got: list[Received] = field(default_factory=list)
    status: int = 200
    hang: float = 0.0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=1)  # hanging handlers: not waited for
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.status == 200:
            self.got.append(Received(dict(request.headers), body))
        return web.Response(status=self.status)

    def of(self, kind: str, doc: str) -> list[dict]:
        return [
            r.event for r in self.got if r.event["event"] == kind and r.event["document"] == doc
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def hooked(db: Path | str, receiver: Receiver, *args: str) -> ServerProcess:
    return ServerProcess(
        db, "--webhook", receiver.url, "--webhook-secret", SECRET, "--keepalive", "2", *args
    )


def verify(received: Received) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Tandem-Signature-256"] == expected
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Tandem-Event-Id"] == received.event["id"]


async def write(http: aiohttp.ClientSession, server: ServerProcess, room: str, text: str) -> None:
    client = await YClient(http, server.ws_url, room).connect()
    await client.append(text)
    await client.wait_acked()
    await client.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_every_kind_of_event_arrives_signed_with_the_document_state(
    tmp_path: Path,
    receiver: Receiver,
    http: aiohttp.ClientSession,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    db: Path | str = tmp_path / "t.db"
    if backend == "postgres":
        db = request.getfixturevalue("postgres").new_database()
    server = hooked(db, receiver).start()
    try:
        room = unique("events")
        await write(http, server, room, "hello")
        created = await eventually(lambda: receiver.of("document.created", room))
        changed = await eventually(lambda: receiver.of("document.changed", room))
        assert changed[-1]["text_length"] == len("hello")
        # The state vector is the document's: a Yjs state vector naming the writer's clock.
        assert base64.b64decode(changed[-1]["state_vector"]) != b"\x00"
        assert created[0]["state_vector"]
        async with http.post(f"{server.url}/api/docs/{room}/versions", json={}) as resp:
            assert resp.status == 201
            version = (await resp.json())["id"]
        saved = await eventually(lambda: receiver.of("version.saved", room))
        assert saved[0]["version"] == version
        async with http.delete(f"{server.url}/api/docs/{room}") as resp:
            assert resp.status in (200, 204)
        await eventually(lambda: receiver.of("document.deleted", room))
        for received in receiver.got:
            verify(received)
        ids = [r.event["id"] for r in receiver.got]
        assert len(ids) == len(set(ids))
    finally:
        server.kill()


async def test_many_edits_make_few_change_events(
    tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    """Debounced: after 2 s of quiet, at most every 10 s while editing goes on."""
    server = hooked(tmp_path / "t.db", receiver).start()
    try:
        room = unique("debounce")
        client = await YClient(http, server.ws_url, room).connect()
        for i in range(120):
            await client.append(f"{i},")
            await asyncio.sleep(0.025)  # three seconds of steady typing
        await client.wait_acked()
        final = len(str(client.text))
        changed = await eventually(
            lambda: [e for e in receiver.of("document.changed", room) if e["text_length"] == final]
        )
        assert len(receiver.of("document.changed", room)) <= 2, receiver.of(
            "document.changed", room
        )
        assert changed
        await client.close()
    finally:
        server.kill()


async def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_back(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    server = hooked(tmp_path / "t.db", receiver).start()
    try:
        rooms = [unique(f"down-{i}") for i in range(3)]
        for room in rooms:
            await write(http, server, room, f"text of {room}")
        # Failing, retried with backoff: editing meanwhile is not slowed (acks above came).
        await eventually(lambda: "failed" in server.log_text(), timeout=30)
        await receiver.start()
        for room in rooms:
            await eventually(lambda room=room: receiver.of("document.created", room), timeout=90)
            await eventually(lambda room=room: receiver.of("document.changed", room), timeout=90)
        for received in receiver.got:
            verify(received)
    finally:
        server.kill()
        await receiver.stop()


async def test_events_committed_before_a_sigkill_are_delivered_after_the_restart(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    receiver = Receiver()  # down: nothing can be delivered before the kill
    server = hooked(tmp_path / "t.db", receiver).start()
    try:
        room = unique("kill")
        await write(http, server, room, "before the crash")
        server.kill()  # SIGKILL: the change note and the created event are in the file only
        await receiver.start()
        server.start()
        await eventually(lambda: receiver.of("document.created", room), timeout=90)
        changed = await eventually(lambda: receiver.of("document.changed", room), timeout=90)
        assert changed[0]["text_length"] == len("before the crash")
    finally:
        server.kill()
        await receiver.stop()


async def test_a_receiver_that_hangs_never_slows_editing_and_an_old_event_is_given_up(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    receiver = await Receiver(hang=60).start()
    server = hooked(
        tmp_path / "t.db", receiver, "--webhook-timeout", "1", "--webhook-max-age", "3"
    ).start()
    try:
        room = unique("hang")
        client = await YClient(http, server.ws_url, room).connect()
        for i in range(20):
            await client.append(f"{i};")
        await client.wait_acked()  # the acks come while every delivery hangs
        await client.close()
        await eventually(lambda: "gave up on" in server.log_text(), timeout=60)
        async with http.get(f"{server.url}/metrics") as resp:
            metrics = await resp.text()
        given_up = [
            line
            for line in metrics.splitlines()
            if line.startswith("tandem_webhook_given_up_total")
        ]
        assert given_up and float(given_up[0].split()[1]) >= 1
    finally:
        server.kill()
        await receiver.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook", "ftp://example.com/x", "--webhook-secret", SECRET], "not an http(s) URL"),
        (["--webhook", "http://127.0.0.1:9/x"], "needs --webhook-secret"),
        (["--webhook", "http://127.0.0.1:9/x", "--webhook-secret", "short"], "at least 32"),
    ],
)
def test_bad_webhook_options_are_refused_at_start(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--db", str(tmp_path / "t.db"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


async def test_two_instances_on_postgresql_deliver_each_event_once(
    receiver: Receiver, http: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue("postgres").new_database()
    redis = request.getfixturevalue("redis_server")
    servers = [hooked(db, receiver, "--redis", redis.url).start() for _ in range(2)]
    try:
        room = unique("cluster-hooks")
        first = await YClient(http, servers[0].ws_url, room).connect()
        second = await YClient(http, servers[1].ws_url, room).connect()
        await first.append("from one|")
        await first.wait_acked()
        await second.append("from two|")
        await second.wait_acked()
        final = len("from one|from two|")
        await eventually(
            lambda: [e for e in receiver.of("document.changed", room) if e["text_length"] == final]
        )
        # Both instances saw the note and the outbox: one of them made and sent each event.
        assert len(receiver.of("document.created", room)) == 1
        ids = [r.event["id"] for r in receiver.got]
        assert len(ids) == len(set(ids))
        for received in receiver.got:
            verify(received)
        await first.close()
        await second.close()
    finally:
        for server in servers:
            server.kill()
