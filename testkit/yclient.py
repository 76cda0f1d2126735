"""A lean y-protocols client in Python (pycrdt + aiohttp) for crash tests and load generation.

It is a real Yjs peer: it keeps a pycrdt Doc, answers the server's sync step 1, applies what
it receives and counts the server's "saved" acks (message 101).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode

import aiohttp
from pycrdt import Doc, Text

from server import protocol as p


class YClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        room: str,
        ack: bool = True,
        token: str | None = None,
    ) -> None:
        self.session = session
        query = {"ack": "1"} if ack else {}
        if token:
            query["token"] = token
        self.url = f"{ws_url}/{room}" + ("?" + urlencode(query) if query else "")
        self.doc: Doc = Doc()
        self.text = self.doc.get("content", type=Text)
        self.sent = 0  # update-bearing messages sent
        self.acked = 0
        self.synced = asyncio.Event()
        self.close_code: int | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acked_changed = asyncio.Event()
        self._closing: asyncio.Future[None] | None = None

    async def connect(self, timeout: float = 60) -> YClient:
        self._ws = await self.session.ws_connect(self.url, max_msg_size=0, autoping=True)
        self._reader = asyncio.create_task(self._read())
        await self._ws.send_bytes(p.encode_sync_step1(self.doc.get_state()))
        await asyncio.wait_for(self.synced.wait(), timeout)
        return self

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            message = p.decode_message(msg.data)
            match message:
                case p.SyncStep1(state_vector):
                    await self._send_update_bearing(
                        p.encode_sync_step2(self.doc.get_update(state_vector))
                    )
                case p.SyncStep2(update):
                    self.doc.apply_update(update)
                    self.synced.set()
                case p.SyncUpdate(update):
                    self.doc.apply_update(update)
                case p.Saved(count):
                    self.acked = max(self.acked, count)
                    self._acked_changed.set()
        self.close_code = self._ws.close_code

    async def _send_update_bearing(self, frame: bytes) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(frame)
        self.sent += 1

    async def append(self, content: str) -> int:
        """Append to the text; return the number this update-bearing message has."""
        captured: list[bytes] = []
        sub = self.doc.observe(lambda event: captured.append(event.update))
        self.text += content
        self.doc.unobserve(sub)
        await self._send_update_bearing(p.encode_sync_update(captured[0]))
        return self.sent

    async def wait_acked(self, count: int | None = None, timeout: float = 60) -> None:
        target = self.sent if count is None else count
        async with asyncio.timeout(timeout):
            while self.acked < target:
                self._acked_changed.clear()
                await self._acked_changed.wait()

    def content(self) -> str:
        return str(self.text)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    def abandon(self) -> None:
        """Drop the client without a goodbye (its copy of the document is gone with it)."""
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            # No goodbye handshake: the server is being killed at the same moment.
            self._closing = asyncio.ensure_future(self._ws.close())
