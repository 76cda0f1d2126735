"""Crash loop: a writer gets acks, the server is SIGKILLed at a random moment, nothing acked may
be lost. ``python -m bench.crash --cycles 1000`` runs it long and writes bench/results/crash.json;
the test suite runs the same cycle 50 times (tests/test_crash.py).
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .serverproc import ServerProcess
from .yclient import YClient

EDIT = re.compile(r"\[(\d+)\]")


@dataclass
class Cycle:
    doc: str
    sent_edits: int
    acked_edits: int
    found_edits: int
    lost: int
    ordered: bool
    integrity: str


async def write_until_killed(
    server: ServerProcess, room: str, rng: random.Random, rate: float = 300.0
) -> tuple[int, int]:
    """Send numbered edits at ``rate`` per second; SIGKILL the server at a random moment.

    Returns (edits sent, edits acked). The writer is dropped with the server: no copy is left.
    """
    async with aiohttp.ClientSession() as session:
        writer = await YClient(session, server.ws_url, room).connect()
        kill_at = time.monotonic() + rng.uniform(0.05, 1.5)
        edits = 0
        while time.monotonic() < kill_at:
            edits += 1
            await writer.append(f"[{edits}]")
            await asyncio.sleep(1 / rate)
        loop = asyncio.get_running_loop()
        # The acks seen at the moment of the kill: anything later cannot count.
        acked_messages = writer.acked
        await loop.run_in_executor(None, server.kill)
        writer.abandon()
        # Message 1 was the step 2 of the initial sync; edit n is message n + 1.
        return edits, max(0, acked_messages - 1)


async def read_back(server: ServerProcess, room: str) -> str:
    async with aiohttp.ClientSession() as session:
        reader = await YClient(session, server.ws_url, room, ack=False).connect()
        text = reader.content()
        await reader.close()
        return text


def check(text: str, acked: int) -> tuple[int, int, bool]:
    """(edits found, acked edits missing, whether they are exactly 1..n in order)."""
    numbers = [int(n) for n in EDIT.findall(text)]
    ordered = numbers == list(range(1, len(numbers) + 1)) and EDIT.sub("", text) == ""
    lost = len(set(range(1, acked + 1)) - set(numbers))
    return len(numbers), lost, ordered


async def run_cycles(db: Path, cycles: int, seed: int = 1) -> list[Cycle]:
    rng = random.Random(seed)
    server = ServerProcess(db).start()
    results: list[Cycle] = []
    try:
        for i in range(cycles):
            room = f"crash-{i}"
            sent, acked = await write_until_killed(server, room, rng)
            server.start()  # same file, after a SIGKILL
            text = await read_back(server, room)
            found, lost, ordered = check(text, acked)
            with sqlite3.connect(db) as conn:
                integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            results.append(Cycle(room, sent, acked, found, lost, ordered, integrity))
    finally:
        server.kill()
    return results


def summarise(results: list[Cycle]) -> dict[str, object]:
    return {
        "cycles": len(results),
        "edits_sent": sum(r.sent_edits for r in results),
        "edits_acked": sum(r.acked_edits for r in results),
        "acked_edits_lost": sum(r.lost for r in results),
        "unordered_or_duplicated_cycles": sum(not r.ordered for r in results),
        "integrity_failures": sum(r.integrity != "ok" for r in results),
        "unacked_edits_that_survived": sum(r.found_edits - r.acked_edits for r in results),
    }
