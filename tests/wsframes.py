"""Hand-built y-protocols traffic for tests: connect, read decoded messages, await closes."""

from __future__ import annotations

import asyncio

import aiohttp
from pycrdt import Doc, Text

from server import protocol as p
from testkit.serverproc import ServerProcess

TIMEOUT = 60


async def next_message(ws: aiohttp.ClientWebSocketResponse, kind: type | None = None) -> object:
    """The next decoded message (of ``kind``, skipping keepalives and others)."""
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"expected a binary frame, got {msg.type} {msg.data!r}")
        decoded = p.decode_message(msg.data)
        if kind is None or isinstance(decoded, kind):
            return decoded


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int:
    """Read until the server closes (within TIMEOUT seconds in all); return its close code."""
    async with asyncio.timeout(TIMEOUT):
        return await _read_until_closed(ws)


async def _read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> int:
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code if ws.close_code is not None else msg.data
        if msg.type is aiohttp.WSMsgType.ERROR:
            raise AssertionError(f"socket error: {msg.data}")


def text_update(content: str) -> bytes:
    doc = Doc()
    doc.get("content", type=Text).insert(0, content)
    return doc.get_update()


class Typist:
    """One client's document: each ``append`` returns the update it makes, as an editor would
    send it (one client id, clocks in sequence)."""

    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.text = self.doc.get("content", type=Text)

    def append(self, content: str) -> bytes:
        made: list[bytes] = []
        subscription = self.doc.observe(lambda event: made.append(event.update))
        self.text += content
        self.doc.unobserve(subscription)
        return made[0]


async def connect(
    http: aiohttp.ClientSession, server: ServerProcess, name: str, query: str = ""
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{server.ws_url}/{name}{query}", max_msg_size=0)
    first = await next_message(ws)
    assert isinstance(first, p.SyncStep1), "the server must open with its sync step 1"
    return ws
