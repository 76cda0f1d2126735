"""Crash loop: writers in several rooms get acks, versions are saved over HTTP, the server compacts
all the time (low thresholds), and it is SIGKILLed at a random moment; after each restart nothing
acked may be lost. ``python -m bench.crash --cycles 1000`` runs it long and writes
bench/results/crash.json; the test suite runs a few cycles (tests/test_crash.py).

Each cycle writes to rooms of its own (``crash-<cycle>-<room>``), the clients spread over them.
After the restart every room is read back: each writer's acked edits are all there, each exactly
once and in the order written, and nothing but edits is there; every version whose POST was
answered is listed, and every version listed is loadable (its export holds, per writer, edits
1..k in order and no more than the live text); ``PRAGMA integrity_check`` is ok. Once all cycles
are done, every room of every cycle is checked again on the last server.

The server runs under testkit/crashprobe.py, which says on stderr when each of the store's own
transactions begins and ends: a kill's cycle records the one it interrupted, if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .crashprobe import PREFIX
from .serverproc import ServerProcess
from .yclient import YClient

EDIT = re.compile(r"\[(\d+):(\d+)\]")
PROBE_LINE = re.compile(re.escape(PREFIX) + r" (begin|end) (\S+)")
WARM_UP = "crash-warm-up"  # a document exported after each start (see warm_up)


@dataclass(frozen=True)
class Settings:
    rooms: int = 1
    clients: int = 1  # writers, client k in room k % rooms
    rate: float = 300.0  # edits per second, all writers together
    versions_per_s: float = 0.0  # POST .../versions, each to a random room of the cycle
    # Passed to the server: low values make it compact all the time.
    compact_updates: int | None = None
    compact_bytes: int | None = None
    kill_after: tuple[float, float] = (0.05, 1.5)  # seconds of writing before the SIGKILL

    def server_args(self) -> list[str]:
        # All the loop's clients are on 127.0.0.1, and its final check opens every document in
        # a row: the new-document rate limit (10/s) is not what it tests.
        args = ["--new-room-rate", "1000000", "--new-room-burst", "1000000"]
        if self.compact_updates is not None:
            args += ["--compact-updates", str(self.compact_updates)]
        if self.compact_bytes is not None:
            args += ["--compact-bytes", str(self.compact_bytes)]
        return args


@dataclass
class Written:
    """What one room was sent before the kill, and what of it was acked."""

    sent: dict[int, int] = field(default_factory=dict)  # writer -> edits sent
    acked: dict[int, int] = field(default_factory=dict)  # writer -> edits acked
    versions_acked: list[int] = field(default_factory=list)  # ids answered 201


@dataclass
class RoomCheck:
    room: str
    sent_edits: int
    acked_edits: int
    found_edits: int
    lost: int
    ordered: bool  # each writer's edits exactly once, in order, and nothing else in the text
    versions_acked: int  # distinct ids (a save of an unchanged state answers the same id)
    versions_listed: int
    versions_missing: int  # answered 201 before the kill, not listed after the restart
    versions_unloadable: int  # listed, but the export failed or does not fit the live text
    error: str | None = None  # the room could not be read back at all (nothing else checked)


@dataclass
class Cycle:
    cycle: int
    rooms: list[RoomCheck]
    integrity: str
    # From the killed server's probe lines: store transactions it committed, and the one the
    # kill interrupted (None: none was open).
    compactions: int
    versions_committed: int
    killed_during: str | None
    version_request_in_flight: bool  # a POST .../versions was unanswered at the kill

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rooms)

    @property
    def ordered(self) -> bool:
        return all(r.ordered for r in self.rooms)


def parse(text: str) -> tuple[dict[int, list[int]], bool]:
    """Each writer's edit numbers in text order, and whether the text is nothing but edits."""
    numbers: dict[int, list[int]] = {}
    for writer, n in EDIT.findall(text):
        numbers.setdefault(int(writer), []).append(int(n))
    return numbers, EDIT.sub("", text) == ""


def in_order(numbers: dict[int, list[int]]) -> bool:
    """Each writer's edits are 1..n, each once, in the order written."""
    return all(ns == list(range(1, len(ns) + 1)) for ns in numbers.values())


async def write_until_killed(
    server: ServerProcess,
    rooms: list[str],
    settings: Settings,
    rng: random.Random,
) -> tuple[dict[str, Written], bool]:
    """Write to ``rooms`` (and save versions) until a random moment, then SIGKILL the server.

    Returns what each room was sent and had acked at the moment of the kill, and whether a
    version request was in flight then. The writers are dropped with the server: no copy is left.
    """
    kill_after = rng.uniform(*settings.kill_after)
    version_rng = random.Random(rng.random())
    interval = settings.clients / settings.rate
    written = {room: Written() for room in rooms}
    # Per writer: the message number of each of its edits (its first message may be the sync
    # step 2 that answers the server's step 1: acks count every update-bearing message).
    messages: list[list[int]] = [[] for _ in range(settings.clients)]
    in_flight = 0
    stopped = False
    async with aiohttp.ClientSession() as session:
        writers = await asyncio.gather(
            *(
                YClient(session, server.ws_url, rooms[k % len(rooms)]).connect()
                for k in range(settings.clients)
            )
        )

        async def write(k: int) -> None:
            writer = writers[k]
            # Started out of step, so the writers do not all send in the same turn.
            await asyncio.sleep(interval * k / settings.clients)
            while not stopped:
                number = len(messages[k]) + 1
                messages[k].append(await writer.append(f"[{k}:{number}]"))
                await asyncio.sleep(interval)

        async def save_versions() -> None:
            nonlocal in_flight
            while not stopped:
                await asyncio.sleep(version_rng.expovariate(settings.versions_per_s))
                room = version_rng.choice(rooms)
                in_flight += 1
                try:
                    async with session.post(f"{server.url}/api/docs/{room}/versions") as resp:
                        if resp.status == 201:
                            written[room].versions_acked.append(int((await resp.json())["id"]))
                except aiohttp.ClientError:
                    return  # the server is gone
                finally:
                    in_flight -= 1

        tasks = [asyncio.create_task(write(k)) for k in range(settings.clients)]
        if settings.versions_per_s > 0:
            tasks.append(asyncio.create_task(save_versions()))
        await asyncio.sleep(kill_after)
        # The acks seen at the moment of the kill: anything later cannot count.
        for k, writer in enumerate(writers):
            room = written[rooms[k % len(rooms)]]
            room.sent[k] = len(messages[k])
            room.acked[k] = sum(1 for m in messages[k] if m <= writer.acked)
        acked_versions = {room: list(w.versions_acked) for room, w in written.items()}
        version_in_flight = in_flight > 0
        stopped = True
        await asyncio.get_running_loop().run_in_executor(None, server.kill)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            writer.abandon()
    for room, ids in acked_versions.items():
        written[room].versions_acked = ids
    return written, version_in_flight


async def read_text(session: aiohttp.ClientSession, server: ServerProcess, room: str) -> str:
    reader = await YClient(session, server.ws_url, room, ack=False).connect()
    text = reader.content()
    await reader.close()
    return text


async def check_versions(
    session: aiohttp.ClientSession,
    server: ServerProcess,
    room: str,
    live: dict[int, list[int]],
    acked: list[int],
) -> tuple[int, int, int]:
    """(versions listed, acked ones not listed, listed ones not loadable or not fitting)."""
    async with session.get(f"{server.url}/api/docs/{room}/versions") as resp:
        listed = [int(v["id"]) for v in await resp.json()] if resp.status == 200 else []
    unloadable = 0
    for version in listed:
        url = f"{server.url}/api/docs/{room}/export"
        async with session.get(url, params={"format": "txt", "version": str(version)}) as resp:
            text = await resp.text() if resp.status == 200 else None
        if text is None:
            unloadable += 1
            continue
        numbers, clean = parse(text)
        fits = all(len(ns) <= len(live.get(k, [])) for k, ns in numbers.items())
        unloadable += not (clean and in_order(numbers) and fits)
    return len(listed), len(set(acked) - set(listed)), unloadable


async def check_room(
    session: aiohttp.ClientSession, server: ServerProcess, room: str, written: Written
) -> RoomCheck:
    try:
        return await _check_room(session, server, room, written)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        # Reported as a failure of its own (see failures), and the loop goes on.
        versions = len(set(written.versions_acked))
        sent, acked = sum(written.sent.values()), sum(written.acked.values())
        return RoomCheck(room, sent, acked, 0, 0, False, versions, 0, 0, 0, repr(exc))


async def _check_room(
    session: aiohttp.ClientSession, server: ServerProcess, room: str, written: Written
) -> RoomCheck:
    numbers, clean = parse(await read_text(session, server, room))
    found = {k: set(ns) for k, ns in numbers.items()}
    lost = sum(
        len(set(range(1, acked + 1)) - found.get(k, set())) for k, acked in written.acked.items()
    )
    ordered = clean and in_order(numbers) and set(numbers) <= set(written.sent)
    listed, missing, unloadable = await check_versions(
        session, server, room, numbers, written.versions_acked
    )
    return RoomCheck(
        room,
        sum(written.sent.values()),
        sum(written.acked.values()),
        sum(len(ns) for ns in numbers.values()),
        lost,
        ordered,
        len(set(written.versions_acked)),
        listed,
        missing,
        unloadable,
    )


def probe_report(lines: list[str]) -> tuple[Counter[str], str | None]:
    """Store transactions committed (by kind) and the one still open at the end, if any."""
    ended: Counter[str] = Counter()
    open_kind: str | None = None
    for line in lines:
        match = PROBE_LINE.fullmatch(line)
        if match is None:
            continue
        what, kind = match.groups()
        if what == "begin":
            open_kind = kind
        else:
            ended[kind] += 1
            open_kind = None
    return ended, open_kind


async def warm_up(server: ServerProcess, create: bool = False) -> None:
    """Have the server start its worker process (an export) before the cycle writes: the first
    job after a start waits for a process to spawn (most of a second), and versions need one."""
    async with aiohttp.ClientSession() as session:
        if create:
            writer = await YClient(session, server.ws_url, WARM_UP).connect()
            await writer.append("warm")
            await writer.wait_acked()
            await writer.close()
        url = f"{server.url}/api/docs/{WARM_UP}/export"
        async with session.get(url, params={"format": "txt"}) as resp:
            resp.raise_for_status()


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@dataclass
class Run:
    cycles: list[Cycle]
    final: list[RoomCheck]  # every room of every cycle, checked again on the last server
    server_file: str | None  # where the server's ``server`` package was imported from


async def run_cycles(
    db: Path,
    cycles: int,
    seed: int = 1,
    settings: Settings | None = None,
    on_cycle: Callable[[Cycle], None] | None = None,
) -> Run:
    """``cycles`` kill-and-restart cycles, then the final check of every room. ``on_cycle`` is
    told of each cycle once it is checked (a long run's progress)."""
    settings = settings or Settings()
    rng = random.Random(seed)
    server = ServerProcess(db, *settings.server_args(), module="testkit.crashprobe")
    server.start()
    results: list[Cycle] = []
    everything: dict[str, Written] = {}
    try:
        await warm_up(server, create=True)
        for i in range(cycles):
            rooms = [f"crash-{i}-{r}" for r in range(settings.rooms)]
            since = len(server.log)
            written, version_in_flight = await write_until_killed(server, rooms, settings, rng)
            committed, open_kind = probe_report(server.log[since:])
            server.start()  # same file, after a SIGKILL
            await warm_up(server)
            async with aiohttp.ClientSession() as session:
                checks = [await check_room(session, server, r, written[r]) for r in rooms]
            everything.update(written)
            results.append(
                Cycle(
                    i,
                    checks,
                    integrity(db),
                    committed["compaction"],
                    committed["version"],
                    open_kind,
                    version_in_flight,
                )
            )
            if on_cycle is not None:
                on_cycle(results[-1])
        async with aiohttp.ClientSession() as session:
            final = [await check_room(session, server, r, w) for r, w in everything.items()]
    finally:
        server.kill()
    return Run(results, final, server_module_file(server.log))


def server_module_file(log: list[str]) -> str | None:
    """Where the probed server's ``server`` package was imported from (it says so first)."""
    files = {line.split(" ", 2)[2] for line in log if line.startswith(f"{PREFIX} server ")}
    return files.pop() if len(files) == 1 else " | ".join(sorted(files)) or None


def summarise(run: Run) -> dict[str, Any]:
    results, final = run.cycles, run.final
    rooms = [r for c in results for r in c.rooms]
    killed = Counter(c.killed_during for c in results if c.killed_during)
    return {
        "server_package": run.server_file,
        "cycles": len(results),
        "rooms": len(rooms),
        "edits_sent": sum(r.sent_edits for r in rooms),
        "edits_acked": sum(r.acked_edits for r in rooms),
        "acked_edits_lost": sum(r.lost for r in rooms),
        "unordered_or_duplicated_rooms": sum(not r.ordered and not r.error for r in rooms),
        "rooms_not_read_back": sum(r.error is not None for r in rooms),
        "integrity_failures": sum(c.integrity != "ok" for c in results),
        "unacked_edits_that_survived": sum(r.found_edits - r.acked_edits for r in rooms),
        "versions_acked": sum(r.versions_acked for r in rooms),
        "versions_listed": sum(r.versions_listed for r in rooms),
        "acked_versions_missing": sum(r.versions_missing for r in rooms),
        "versions_unloadable": sum(r.versions_unloadable for r in rooms),
        "compactions_committed": sum(c.compactions for c in results),
        "versions_committed": sum(c.versions_committed for c in results),
        "kills_during": dict(killed),
        "kills_with_version_request_in_flight": sum(c.version_request_in_flight for c in results),
        "final_check": {
            "rooms": len(final),
            "acked_edits_lost": sum(r.lost for r in final),
            "unordered_or_duplicated_rooms": sum(not r.ordered and not r.error for r in final),
            "rooms_not_read_back": sum(r.error is not None for r in final),
            "acked_versions_missing": sum(r.versions_missing for r in final),
            "versions_unloadable": sum(r.versions_unloadable for r in final),
        },
    }


def failures(run: Run) -> list[str]:
    """Every broken promise, one line each (empty: none)."""
    out = []
    for c in run.cycles:
        if c.integrity != "ok":
            out.append(f"cycle {c.cycle}: integrity_check: {c.integrity}")
        out += [f"cycle {c.cycle}: {_broken(r)}" for r in c.rooms if _broken(r)]
    out += [f"final check: {_broken(r)}" for r in run.final if _broken(r)]
    return out


def _broken(r: RoomCheck) -> str:
    if r.error is not None:
        return f"{r.room}: could not be read back: {r.error}"
    problems = []
    if r.lost:
        problems.append(f"{r.lost} acked edits lost")
    if not r.ordered:
        problems.append("edits out of order, duplicated or foreign text")
    if r.versions_missing:
        problems.append(f"{r.versions_missing} acked versions not listed")
    if r.versions_unloadable:
        problems.append(f"{r.versions_unloadable} versions not loadable or not fitting")
    return f"{r.room}: " + ", ".join(problems) if problems else ""
