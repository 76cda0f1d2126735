"""A bot in a Tandem document: a line "/time" (once Enter follows it) gets the time below it.

    python examples/bot.py ws://127.0.0.1:8000/ws/team/notes [TOKEN]

A live peer like any editor: y-protocols sync (pycrdt's messages) over aiohttp's WebSocket.
"""

import asyncio
import sys
import time

import aiohttp
import pycrdt as Y

ANSWER = "It is "


async def main(url: str, token: str | None = None) -> None:
    doc = Y.Doc()
    text = doc.get("content", type=Y.Text)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, params={"token": token} if token else None) as ws:
            await ws.send_bytes(Y.create_sync_message(doc))
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or msg.data[0] != Y.YMessageType.SYNC:
                    continue  # presence, and anything else, is not for this bot
                reply = Y.handle_sync_message(msg.data[1:], doc)
                if reply is not None:  # the server's sync step 1: send what it lacks of ours
                    await ws.send_bytes(reply)
                lines = str(text).split("\n")
                for i, line in enumerate(lines[:-1]):
                    if line.strip() == "/time" and not lines[i + 1].startswith(ANSWER):
                        before = doc.get_state()
                        # pycrdt counts offsets in UTF-8 bytes: the start of the next line.
                        at = len("\n".join(lines[: i + 1]).encode()) + 1
                        text.insert(at, f"{ANSWER}{time.strftime('%H:%M:%S')}.\n")
                        await ws.send_bytes(Y.create_update_message(doc.get_update(before)))
                        break


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
