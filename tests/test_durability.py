"""Never lose an edit: storage faults, failed loads, slow readers, memory, backups, restarts."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from server.contract import CloseCode
from server.storage.sqlite import FAULT_FILE_VARIABLE
from testkit.serverproc import REPO_ROOT, ServerProcess
from testkit.yclient import YClient

from .conftest import eventually
from .nodeclient import NodeHarness, node_harness


@pytest.fixture
async def node() -> AsyncIterator[NodeHarness]:
    async with node_harness() as harness:
        yield harness


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def health(http: aiohttp.ClientSession, srv: ServerProcess) -> tuple[int, dict]:
    async with http.get(f"{srv.url}/healthz") as resp:
        return resp.status, await resp.json()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root (CI runs as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    # Unbuffered: a buffered file keeps what a short write left over and raises again when it
    # closes, however much space was left.
    with filler.open("wb", buffering=0) as fh:
        try:
            while fh.write(b"\0" * 65536):
                pass
        except OSError:
            pass
    return filler


async def check_fault_then_recovery(
    srv: ServerProcess, http: aiohttp.ClientSession, break_disk: object, mend_disk: object
) -> None:
    """Edits keep flowing while the store fails; nothing is acked until it is really written."""
    writer = await YClient(http, srv.ws_url, "doc").connect()
    reader = await YClient(http, srv.ws_url, "doc", ack=False).connect()
    await writer.append("before the fault. ")
    await writer.wait_acked()
    acked_before = writer.acked

    break_disk()  # type: ignore[operator]
    for i in range(4):
        await writer.append(f"[{i}]" + "x" * 300_000)
    expected = writer.content()
    # Relaying goes on: the other editor receives everything at once.
    await eventually(lambda: reader.content() == expected)
    # The fault is reported, and nothing uncommitted is acknowledged.
    await eventually(lambda: _failing(http, srv))
    assert writer.acked == acked_before
    assert "commit failed" in srv.log_text()

    mend_disk()  # type: ignore[operator]
    await writer.wait_acked(timeout=120)
    assert (await health(http, srv))[0] == 200
    await writer.close()
    await reader.close()
    # What was acked after the fault cleared is on disk: it survives kill -9.
    srv.kill()
    srv.start()
    fresh = await YClient(http, srv.ws_url, "doc", ack=False).connect()
    assert fresh.content() == expected
    await fresh.close()


async def _failing(http: aiohttp.ClientSession, srv: ServerProcess) -> bool:
    status, body = await health(http, srv)
    return status == 503 and body["store"] == "failing" and body["pending_appends"] > 0


async def test_a_full_disk_delays_acks_but_loses_nothing(
    small_disk: Path, server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(small_disk / "tandem.db").start()
    filler: list[Path] = []
    await check_fault_then_recovery(
        srv,
        http,
        break_disk=lambda: filler.append(fill(small_disk)),
        mend_disk=lambda: filler[0].unlink(),
    )


async def test_failing_writes_delay_acks_but_lose_nothing(
    tmp_path: Path, server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    """The same, on every machine: the store's writes fail while a fault file exists (the
    server's test hook), through the same commit, retry and health paths as a full disk."""
    fault = tmp_path / "disk-is-full"
    srv = server_factory(tmp_path / "tandem.db", env={FAULT_FILE_VARIABLE: str(fault)}).start()
    await check_fault_then_recovery(
        srv, http, break_disk=fault.touch, mend_disk=lambda: fault.unlink()
    )


async def test_a_database_file_that_turns_read_only_delays_acks_but_loses_nothing(
    tmp_path: Path, server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    db = tmp_path / "tandem.db"
    srv = server_factory(db).start()
    # chattr +i makes the files unwritable even for root, and takes effect on open files.
    files = [str(db), f"{db}-wal"]
    await YClient(http, srv.ws_url, "warm").connect()  # the -wal file exists now
    probe = subprocess.run(["chattr", "+i", files[0]], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag (chattr: {probe.stderr.strip()})")
    subprocess.run(["chattr", "-i", files[0]], check=True)
    try:
        await check_fault_then_recovery(
            srv,
            http,
            break_disk=lambda: subprocess.run(["chattr", "+i", *files], check=True),
            mend_disk=lambda: subprocess.run(["chattr", "-i", *files], check=True),
        )
    finally:
        subprocess.run(["chattr", "-i", *files], check=False)


async def test_a_document_that_fails_to_load_is_refused_and_never_overwritten(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory().start()
    writer = await YClient(http, srv.ws_url, "precious").connect()
    await writer.append("years of work")
    await writer.wait_acked()
    await writer.close()
    srv.stop()
    with sqlite3.connect(srv.db) as conn:
        conn.execute(
            "INSERT INTO updates (doc, data, created_at) VALUES ('precious', ?, 0)",
            (b"\x01\x02\x03\x04garbage",),
        )
        rows_before = conn.execute("SELECT id, data FROM updates ORDER BY id").fetchall()
    srv.start()
    for _ in range(2):
        ws = await http.ws_connect(f"{srv.ws_url}/precious")
        msg = await ws.receive(timeout=60)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CloseCode.serverError
    # Other documents are served as usual.
    other = await YClient(http, srv.ws_url, "other").connect()
    await other.close()
    with sqlite3.connect(srv.db) as conn:
        assert (
            conn.execute("SELECT id, data FROM updates ORDER BY id").fetchall()[:2]
            == (rows_before[:2])
        )
        # Once the damage is repaired, the next connection loads it (no restart needed).
        conn.execute("DELETE FROM updates WHERE data = ?", (b"\x01\x02\x03\x04garbage",))
    reader = await YClient(http, srv.ws_url, "precious", ack=False).connect()
    assert reader.content() == "years of work"
    await reader.close()


def raw_websocket_that_never_reads(host: str, port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_client_that_stops_reading_is_cut_off_without_slowing_the_others(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--outbox-limit", "1048576").start()
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    stuck = raw_websocket_that_never_reads(host, int(port), "/ws/flood")
    writer = await YClient(http, srv.ws_url, "flood").connect()
    reader = await YClient(http, srv.ws_url, "flood", ack=False).connect()
    rss_start = rss_bytes(srv.proc.pid)  # type: ignore[union-attr]
    for i in range(120):
        await writer.append(f"<{i}>" + "y" * 50_000)
        if i % 5 == 4:  # an editor's pace: bursts of 250 kB, well under the 1 MiB outbox
            await writer.wait_acked()
    expected = writer.content()
    await eventually(lambda: reader.content() == expected)
    await writer.wait_acked()
    await eventually(lambda: "is not reading" in srv.log_text())
    # 6 MB went out to the others; the stuck one held at most its 1 MiB outbox.
    assert rss_bytes(srv.proc.pid) - rss_start < 64 * 1024 * 1024  # type: ignore[union-attr]
    # The server hung up on it: reading what is left ends in EOF or a reset.
    stuck.settimeout(60)
    received = 0
    try:
        while chunk := await asyncio.to_thread(stuck.recv, 65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    stuck.close()
    assert received < 6_000_000
    await writer.close()
    await reader.close()


async def test_memory_follows_active_documents_not_documents_ever_opened(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    # (550 new documents from one address in seconds: past the default new-document rate)
    srv = server_factory(None, "--grace-period", "1", "--new-room-rate", "1000").start()

    async def open_and_close(names: range) -> None:
        for i in names:
            client = await YClient(http, srv.ws_url, f"many/{i}").connect()
            await client.append(f"document {i} " * 50)
            await client.wait_acked()
            await client.close()

    async def all_unloaded() -> bool:
        return (await health(http, srv))[1]["rooms_loaded"] == 0

    await asyncio.gather(*(open_and_close(range(k, 50, 10)) for k in range(10)))  # warm-up
    await eventually(all_unloaded)
    rss_start = rss_bytes(srv.proc.pid)  # type: ignore[union-attr]
    await asyncio.gather(*(open_and_close(range(50 + k, 550, 10)) for k in range(10)))
    await eventually(all_unloaded)
    grown = rss_bytes(srv.proc.pid) - rss_start  # type: ignore[union-attr]
    print(f"RSS after 500 documents opened and unloaded: {grown / 2**20:+.1f} MiB")
    assert grown < 40 * 1024 * 1024
    # Unloaded, not forgotten.
    back = await YClient(http, srv.ws_url, "many/321", ack=False).connect()
    assert back.content() == "document 321 " * 50
    await back.close()


async def test_backup_while_running_restores_every_document(
    tmp_path: Path, server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory().start()
    texts = {}
    for i in range(5):
        client = await YClient(http, srv.ws_url, f"doc{i}").connect()
        await client.append(f"text of document {i}")
        await client.wait_acked()
        texts[f"doc{i}"] = client.content()
    busy = await YClient(http, srv.ws_url, "busy").connect()

    async def keep_writing() -> None:
        for i in range(200):
            await busy.append(f"[{i}]")
            await asyncio.sleep(0.005)

    writing = asyncio.create_task(keep_writing())
    copy = tmp_path / "backup.db"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "backup", str(copy), "--db", str(srv.db)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    await writing
    await busy.wait_acked()
    assert (await asyncio.to_thread(_integrity, copy)) == "ok"
    restored = server_factory(copy).start()
    for name, text in texts.items():
        client = await YClient(http, restored.ws_url, name, ack=False).connect()
        assert client.content() == text
        await client.close()
    partial = await YClient(http, restored.ws_url, "busy", ack=False).connect()
    assert busy.content().startswith(partial.content())  # a consistent moment of the log
    await partial.close()
    await busy.close()


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


async def test_a_client_brings_back_what_a_server_restored_from_an_old_backup_lacks(
    tmp_path: Path, server_factory: type[ServerProcess], node: NodeHarness
) -> None:
    srv = server_factory().start()
    await node.call("open", client="a", url=srv.ws_url, room="rec", params={"ack": "1"})
    await node.call("wait_synced", client="a")
    await node.call("insert", client="a", pos=0, text="one ")
    await node.call("wait_acked", client="a")
    old = tmp_path / "old-backup.db"
    subprocess.run(
        [sys.executable, "-m", "server", "backup", str(old), "--db", str(srv.db)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    await node.call("insert", client="a", pos=4, text="two ")
    await node.call("wait_acked", client="a")
    srv.kill()  # the server dies and its database is lost...
    await node.call("insert", client="a", pos=8, text="three")  # ...while the tab keeps typing
    for suffix in ("", "-wal", "-shm"):
        Path(f"{srv.db}{suffix}").unlink(missing_ok=True)
    shutil.copy(old, srv.db)  # ...and it comes back from yesterday's backup
    srv.start()
    await node.call("open", client="b", url=srv.ws_url, room="rec")
    await node.call("wait_text", client="b", text="one two three", timeout=120)
    assert await node.call("text", client="a") == "one two three"


async def test_twenty_writers_converge_across_a_graceful_restart(
    server_factory: type[ServerProcess], node: NodeHarness
) -> None:
    srv = server_factory().start()
    writers = [f"w{i}" for i in range(20)]
    for w in writers:
        await node.call("open", client=w, url=srv.ws_url, room="busy", params={"ack": "1"})
    for w in writers:
        await node.call("wait_synced", client=w)
        await node.call("insert", client=w, pos=0, text=f"<{w}>")
    assert await asyncio.to_thread(srv.stop) == 0  # SIGTERM: 1001 to everyone, flush, exit 0
    for w in writers:
        first_close = await node.wait_event(
            lambda e, w=w: e["event"] == "close" and e["client"] == w
        )
        assert first_close["code"] == CloseCode.goingAway  # "come back later", not an error
        await node.call("insert", client=w, pos=0, text=f"({w})")  # typed while it is down
    srv.start()  # the same port: the clients reconnect by themselves
    for w in writers:
        # Reconnected, resynced, and everything it sent on the new socket is saved.
        await eventually(lambda w=w: _saved_after_reconnect(node, w), timeout=120)
    await node.call("open", client="fresh", url=srv.ws_url, room="busy")
    await node.call("wait_synced", client="fresh")
    final = await node.call("text", client="fresh")
    for w in writers:
        assert final.count(f"<{w}>") == 1 and final.count(f"({w})") == 1
        await node.call("wait_text", client=w, text=final, timeout=120)


async def _saved_after_reconnect(node: NodeHarness, client: str) -> bool:
    info = await node.call("info", client=client)
    return info["status"] == "connected" and info["synced"] and info["acked"] >= info["sent"] > 0
