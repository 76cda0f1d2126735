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
from server.updates import check_state_vector, check_update
from testkit.yclient import YClient

from .conftest import ServerProcess
from .test_durability import rss_bytes

pytestmark = pytest.mark.fuzz

FRAMES = 10_000
WORKERS = 8
MAX_MESSAGE = 64 * 1024
ROOM = "fuzzed"
MALFORMED, INVALID, POLICY = (
    CloseCode.protocolError,
    CloseCode.invalidPayload,
    CloseCode.policyViolation,
)
# What each kind of frame may get: its close codes, and None if it may also be taken as it is
# (a truncation or a flip can leave a valid frame).
EXPECTED: dict[str, set[int | None]] = {
    "truncated": {MALFORMED, INVALID, None},
    "flipped": {MALFORMED, INVALID, POLICY, None},
    "length past the data": {MALFORMED},
    "noise": {MALFORMED, INVALID, POLICY, None},
    "unknown message type": {MALFORMED},
    "text frame": {CloseCode.unsupportedData},
    "oversize": {CloseCode.messageTooBig},
    "awareness bomb": {MALFORMED, INVALID, POLICY, CloseCode.messageTooBig, None},
    "random update": {INVALID},
    "intact": {None},
}


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


def mutate(rng: random.Random, seeds: list[bytes]) -> tuple[str, bytes | str]:
    """One hostile frame and its kind (see EXPECTED)."""
    frame = bytearray(rng.choice(seeds))
    kind = rng.randrange(10)
    if kind == 0:
        return "truncated", bytes(frame[: rng.randrange(len(frame))])
    if kind == 1:
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        return "flipped", bytes(frame)
    if kind == 2:
        length = p.write_var_uint(rng.choice([2**20, 2**40, 2**52]))
        return "length past the data", bytes([0, 2]) + length + b"abc"
    if kind == 3:
        return "noise", rng.randbytes(rng.randint(1, 300))
    if kind == 4:
        return "unknown message type", p.write_var_uint(rng.choice([4, 5, 100, 102, 300]))
    if kind == 5:
        return "text frame", "not binary"
    if kind == 6:
        return "oversize", p.encode_sync_update(b"\x00" * (MAX_MESSAGE + rng.randint(1, 1000)))
    if kind == 7:  # deep nesting, invalid JSON, huge states, lying counts
        state = rng.choice(["[" * 20_000 + "]" * 20_000, "{not json", "x" * 70_000, '"ok"'])
        body = p.encode_awareness_update([p.AwarenessEntry(rng.randrange(2**32), 1, state)])
        if rng.random() < 0.3:
            body = p.write_var_uint(10**6) + body[1:]
        return "awareness bomb", p.encode_awareness(body)
    if kind == 8:
        while True:  # random bytes that the strict reading refuses (nearly all of them)
            body = rng.randbytes(rng.randint(1, 80))
            try:
                check_update(body)
            except p.ProtocolError:
                return "random update", p.encode_sync_update(body)
    return "intact", bytes(frame)


PROBE = p.encode_sync_step1(b"\x00")


async def hostile(
    session: aiohttp.ClientSession,
    url: str,
    rng: random.Random,
    seeds: list[bytes],
    budget: list[int],
    outcomes: list[tuple[str, int | None]],
) -> None:
    """Send mutated frames, reconnecting whenever the server hangs up; record what each kind
    got. After each frame a sync step 1 probes the server: its step 2 means the frame was taken;
    a close before it is that frame's verdict (frames are handled in order)."""
    while budget[0] > 0:
        ws = await session.ws_connect(url, max_msg_size=0, autoclose=False)
        while budget[0] > 0:
            budget[0] -= 1
            kind, frame = mutate(rng, seeds)
            try:
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_bytes(frame)
                await ws.send_bytes(PROBE)
            except ConnectionError:
                pass  # the server closed while we wrote: its close frame is queued
            verdict = await _verdict(ws, 1 + _answered(frame))
            outcomes.append((kind, verdict))
            if verdict is not None:
                break
        await ws.close()


def _answered(frame: bytes | str) -> bool:
    """Whether the frame itself is a sync step 1 the server answers with a step 2."""
    if isinstance(frame, str):
        return False
    try:
        message = p.decode_message(frame)
        if isinstance(message, p.SyncStep1):
            check_state_vector(message.state_vector)
            return True
    except p.ProtocolError:
        pass  # refused: the server closes instead of answering
    return False


async def _verdict(ws: aiohttp.ClientWebSocketResponse, answers: int) -> int | None:
    """None once the probe's step 2 (and any the frame itself asked for) arrived; the close
    code if the server closes first."""
    while True:
        msg = await ws.receive(timeout=60)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code or CloseCode.serverError
        if msg.type is aiohttp.WSMsgType.BINARY and isinstance(
            p.decode_message(msg.data), p.SyncStep2
        ):
            answers -= 1
            if answers == 0:
                return None


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
        outcomes: list[tuple[str, int | None]] = []
        attackers = [
            asyncio.create_task(
                hostile(
                    session,
                    f"{srv.ws_url}/{ROOM}",
                    random.Random(rng.random()),
                    seeds,
                    budget,
                    outcomes,
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
        wrong = [(kind, code) for kind, code in outcomes if code not in EXPECTED[kind]]
        assert not wrong, sorted({(kind, str(code)) for kind, code in wrong})
        seen = {kind: sorted({str(code) for k, code in outcomes if k == kind}) for kind in EXPECTED}
        assert all(seen.values()), seen  # every kind was sent
        closes = sum(code is not None for _kind, code in outcomes)
        print(f"fuzz: {len(outcomes)} frames, {closes} hostile sockets closed; by kind: {seen}")
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
