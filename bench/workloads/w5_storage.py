"""W5 storage (and W3's cold loads of a real update log), Tandem only.

The automerge-paper trace is replayed into Tandem one update per edit, as an editor would
send it, with acks on; ingest ends when the last update is acked (durable). Two databases:

- ``uncompacted``: compaction thresholds out of reach. After the replay the server is killed
  with SIGKILL (a graceful stop would compact), so the database holds the raw log; a restart
  then measures a cold join that must load every row.
- ``default``: the shipped thresholds, so the log is compacted as it grows; then a graceful
  stop (SIGTERM compacts what is left), and cold joins after restarts.

Both are compared with the size of the merged state, ``len(Doc.get_update())``. Database
bytes are the files on disk (main file + WAL); ``live`` bytes leave out SQLite's free pages
(space a VACUUM would give back).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from .. import wire
from ..loadgen import WSClient
from ..servers import NO_COMPACTION, TANDEM, Server
from ..traces import EncodedTrace
from .w3_late_joiner import _summary, cold_join, join_once

ROOM = "w5-paper"
CHUNK = 500


def live_bytes(db: Path) -> int | None:
    """Pages in use (not on the free list) × page size, read without changing the file."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            return int((pages - free) * size)
    except sqlite3.Error:
        return None


def search_index_bytes(db: Path) -> int | None:
    """Pages of the search index (the FTS5 table ``doc_search``: its copy of each document's
    text, for snippets, and its index), from SQLite's ``dbstat``; None where it is missing."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'doc_search%'"
            ).fetchone()
            return None if row[0] is None else int(row[0])
    except sqlite3.Error:
        return None


def log_rows(db: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0])
    except sqlite3.Error:
        return None


async def replay(server: Server, trace: EncodedTrace, timeout: float) -> dict[str, Any]:
    """Send every update of the trace from one writer; wait until all are acked."""
    writer = await WSClient(server.url(ROOM, ack=True)).join()
    frames = [wire.client_frame(wire.update_message(u)) for u in trace.updates]
    started = time.perf_counter()
    for start in range(0, len(frames), CHUNK):
        batch = frames[start : start + CHUNK]
        writer.write_frames(b"".join(batch), update_bearing=len(batch))
        await writer.drain()
        await asyncio.sleep(0)
    done = await writer.wait_all_acked(timeout)
    acked = writer.acked
    seconds = time.perf_counter() - started
    writer.close()
    return {
        "updates": len(frames),
        "all_acked": done,
        "acked": acked,
        "ingest_seconds": round(seconds, 2),
        "ingest_updates_per_s": round(len(frames) / seconds, 1) if done else None,
    }


async def run(
    data_dir: Path,
    trace: EncodedTrace,
    *,
    warm_samples: int = 3,
    cold_samples: int = 2,
    cold_timeout: float = 60,
    replay_timeout: float = 600,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace": trace.name,
        "updates": len(trace.updates),
        "update_bytes": trace.update_bytes,
        "merged_state_bytes": len(trace.state),
    }

    # 1. The raw log: no thresholds, then SIGKILL so nothing compacts it.
    server = Server(TANDEM, data_dir / "uncompacted", NO_COMPACTION).start()
    try:
        raw = await replay(server, trace, replay_timeout)
        raw |= _summary(
            [await join_once(server, ROOM, trace.text, 30) for _ in range(warm_samples)],
            "warm",
        )
        server.kill()
        raw["db_bytes"] = server.db_bytes()
        raw["live_bytes"] = live_bytes(server.db)
        raw["log_rows"] = log_rows(server.db)
        server.start()
        cold = await cold_join(server, ROOM, trace.text, cold_timeout)
        raw |= _summary([cold], "cold")
        raw["cold_timeout_s"] = cold_timeout
    finally:
        server.kill()  # a cold load that timed out may still be busy: do not wait for it
    out["uncompacted"] = raw

    # 2. The shipped thresholds, a graceful stop, cold loads.
    server = Server(TANDEM, data_dir / "default").start()
    try:
        default = await replay(server, trace, replay_timeout)
        default["db_bytes_after_replay"] = server.db_bytes()
        if not default["all_acked"]:
            # Not durable in time (e.g. stuck compacting): record where it was and give up.
            default["replay_timeout_s"] = replay_timeout
            default["acked_when_given_up"] = default.pop("acked", None)
            default["log_rows_when_given_up"] = log_rows(server.db)
            out["default"] = default
            return out
        default |= _summary(
            [await join_once(server, ROOM, trace.text, 30) for _ in range(warm_samples)],
            "warm",
        )
        default["shutdown_seconds"] = round(server.stop(timeout=cold_timeout), 2)
        default["db_bytes_after_shutdown"] = server.db_bytes()
        default["live_bytes_after_shutdown"] = live_bytes(server.db)
        default["search_index_bytes_after_shutdown"] = search_index_bytes(server.db)
        default["log_rows_after_shutdown"] = log_rows(server.db)
        colds = []
        for _ in range(cold_samples):
            server.start()
            colds.append(await cold_join(server, ROOM, trace.text, cold_timeout))
            server.stop()
        default |= _summary(colds, "cold")
    finally:
        server.kill()
    out["default"] = default
    return out
