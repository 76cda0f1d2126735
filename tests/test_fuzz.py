"""Hostile clients: 10,000 mutated frames while a well-behaved client edits the same document."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Doc, Text

from server import protocol as p
from server.contract import CloseCode
from testkit.yclient import YClient

from .conftest import ServerProcess
from .test_durability import rss_bytes

pytestmark = pytest.mark.fuzz

FRAMES = 10_000
WORKERS = 8
MAX_MESSAGE = 64 * 1024
ROOM = "fuzzed"
KNOWN_CODES = {int(code) for code in CloseCode} | {1000}


def seed_frames() -> list[bytes]:
    """Valid frames of every kind, for the mutations to start from."""
    doc = Doc()
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for word in ("alpha ", "beta ", "gamma "):
        text.insert(len(text), word)
    del text[0:2]
    state = '{"user":{"name":"Mallory","color":"#f00"},"cursor":null}'
    return [
        *(p.encode_sync_update(u) for u in updates),
        p.encode_sync_step1(doc.get_state()),
        p.encode_sync_step2(doc.get_update()),
        p.encode_awareness(p.encode_awareness_update([p.AwarenessEntry(99, 1, state)])),
        p.encode_query_awareness(),
    ]


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes | str:
    frame = bytearray(rng.choice(seeds))
    kind = rng.randrange(10)
    if kind == 0:  # truncated
        return bytes(frame[: rng.randrange(len(frame))])
    if kind == 1:  # flipped bytes
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        return bytes(frame)
    if kind == 2:  # a length far beyond the data
        return bytes([0, 2]) + p.write_var_uint(rng.choice([2**20, 2**40, 2**52])) + b"abc"
    if kind == 3:  # noise
        return rng.randbytes(rng.randint(1, 300))
    if kind == 4:  # a message type nobody knows
        return p.write_var_uint(rng.randint(4, 300)) + rng.randbytes(rng.randint(0, 20))
    if kind == 5:  # text frame
        return "not binary"
    if kind == 6:  # oversize
        return p.encode_sync_update(b"\x00" * (MAX_MESSAGE + rng.randint(1, 1000)))
    if kind == 7:  # awareness bombs: deep nesting, invalid JSON, huge states, lying counts
        state = rng.choice(["[" * 20_000 + "]" * 20_000, "{not json", "x" * 70_000, '"ok"'])
        body = p.encode_awareness_update([p.AwarenessEntry(rng.randrange(2**32), 1, state)])
        if rng.random() < 0.3:
            body = p.write_var_uint(10**6) + body[1:]
        return p.encode_awareness(body)
    if kind == 8:  # a random update body
        return p.encode_sync_update(rng.randbytes(rng.randint(1, 80)))
    return bytes(frame)  # an intact frame now and then


async def hostile(
    session: aiohttp.ClientSession,
    url: str,
    rng: random.Random,
    seeds: list[bytes],
    budget: list[int],
    codes: list[int],
) -> None:
    """Send mutated frames, reconnecting whenever the server hangs up; record its close codes."""
    while budget[0] > 0:
        ws = await session.ws_connect(url, max_msg_size=0, autoclose=False)
        while budget[0] > 0:
            budget[0] -= 1
            frame = mutate(rng, seeds)
            try:
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_bytes(frame)
                timeout = 0.01  # let the server answer (or close) before the next frame
            except ConnectionError:
                timeout = 5.0  # the server closed while we wrote: its close frame is queued
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                continue
            if msg.type is aiohttp.WSMsgType.CLOSE:
                codes.append(int(msg.data))  # the code the server sent
                break
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        await ws.close()


async def test_hostile_frames_never_hurt_the_server_or_an_honest_editor(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    srv = server_factory(
        tmp_path / "fuzz.db", "--max-message-size", str(MAX_MESSAGE), "--message-rate", "2000"
    ).start()
    seeds = seed_frames()
    rng = random.Random(20261125)
    async with aiohttp.ClientSession() as session:
        honest = await YClient(session, srv.ws_url, ROOM).connect()
        rss_start = rss_bytes(srv.proc.pid)  # type: ignore[union-attr]
        budget = [FRAMES]
        codes: list[int] = []
        attackers = [
            asyncio.create_task(
                hostile(
                    session,
                    f"{srv.ws_url}/{ROOM}",
                    random.Random(rng.random()),
                    seeds,
                    budget,
                    codes,
                )
            )
            for _ in range(WORKERS)
        ]
        edits = 0
        while not all(task.done() for task in attackers):
            edits += 1
            await honest.append(f"[{edits}]")
            await asyncio.sleep(0.02)
        await asyncio.gather(*attackers)
        await honest.wait_acked(timeout=120)

        assert srv.proc.poll() is None, "the server died"  # type: ignore[union-attr]
        assert budget[0] <= 0
        assert codes and set(codes) <= KNOWN_CODES, sorted(set(codes) - KNOWN_CODES)
        closed = f"{len(codes)} hostile sockets closed with {sorted(set(codes))}"
        print(f"fuzz: {FRAMES} frames, {closed}")
        grown = rss_bytes(srv.proc.pid) - rss_start  # type: ignore[union-attr]
        assert grown < 150 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MiB"

        # The honest editor and the server hold the same document...
        reader = await YClient(session, srv.ws_url, ROOM, ack=False).connect()
        assert reader.content() == honest.content()
        # (State vectors compared as maps: their encoding order is not canonical.)
        assert p.decode_state_vector(reader.doc.get_state()) == p.decode_state_vector(
            honest.doc.get_state()
        )
        # Every honest edit was committed (hostile updates pycrdt accepts are edits too, and may
        # delete text, so the text itself is compared with the server's, not with the input).
        assert honest.acked == honest.sent == edits + 1
        await reader.close()
        await honest.close()
        # ...and it loads again after a restart, garbage the server accepted included.
        assert srv.stop() == 0
        srv.start()
        again = await YClient(session, srv.ws_url, ROOM, ack=False).connect()
        assert again.content() == reader.content()
        await again.close()
