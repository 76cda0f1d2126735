"""The four servers under test, each started fresh on 127.0.0.1 in its own data directory."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import procstat

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TANDEM_PYTHON = REPO / ".venv" / "bin" / "python"
PEERS_PYTHON = BENCH / ".venv-peers" / "bin" / "python"
NODE_DIR = BENCH / "node"

TANDEM = "tandem"
# Tandem from another checkout (TANDEM_BENCH_BASELINE=path, e.g. a `git worktree` of an older
# commit): a before/after comparison measured in the same run, interleaved like the peers.
BASELINE = "tandem-baseline"
PYCRDT = "pycrdt-websocket"
YWS = "y-websocket"
RELAY = "bare-relay"
ALL = (TANDEM, BASELINE, PYCRDT, YWS, RELAY)
BASELINE_REPO = (
    Path(os.environ["TANDEM_BENCH_BASELINE"]) if "TANDEM_BENCH_BASELINE" in os.environ else None
)
LABELS = {
    TANDEM: "Tandem",
    BASELINE: f"Tandem at {BASELINE_REPO}" if BASELINE_REPO else "Tandem (baseline)",
    PYCRDT: "pycrdt-websocket 0.16 + SQLiteYStore",
    YWS: "y-websocket 1.5.4 server",
    RELAY: "bare aiohttp relay",
}
# Both kinds of Tandem speak the same: everything said of "tandem" holds for the baseline.
TANDEMS = (TANDEM, BASELINE)
STORES = {TANDEM: True, BASELINE: True, PYCRDT: True, YWS: False, RELAY: False}
# Seconds a SIGTERM may take before SIGKILL: Tandem flushes and compacts on the way out;
# Hypercorn can sit in its graceful shutdown with pycrdt-websocket's tasks still pending.
STOP_TIMEOUT = {TANDEM: 60.0, BASELINE: 60.0, PYCRDT: 5.0, YWS: 5.0, RELAY: 5.0}
# Tandem without compaction thresholds (it still compacts on a graceful shutdown).
NO_COMPACTION = ("--compact-updates", "1000000000", "--compact-bytes", "1000000000000")
# Tandem's limits against hostile clients, lifted where the server has them: every load
# generator socket comes from 127.0.0.1, and W1's writers replay a trace at full speed.
LIFTED_LIMITS = (
    ("--max-connections-per-ip", "1000000"),
    ("--message-rate", "1000000000"),
    ("--message-burst", "1000000000"),
    ("--new-room-rate", "1000000"),
    ("--new-room-burst", "1000000"),
)


@functools.cache
def tandem_limit_args(repo: Path = REPO) -> tuple[str, ...]:
    """The LIFTED_LIMITS options that the ``tandem serve`` of ``repo`` knows."""
    help_text = subprocess.run(
        [str(TANDEM_PYTHON), "-m", "server", "serve", "--help"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(
        x for option, value in LIFTED_LIMITS if option in help_text for x in (option, value)
    )


_LIVE: set[Server] = set()


def kill_all() -> None:
    """Kill every server this process started and has not stopped (on an interrupted run)."""
    for server in list(_LIVE):
        server.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(eq=False)
class Server:
    """One server process; restartable on the same data directory."""

    kind: str
    data_dir: Path
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.data_dir / ("tandem.db" if self.kind in TANDEMS else "ystore.db")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, room: str, *, ack: bool = False) -> str:
        query = "?ack=1" if ack and self.kind in TANDEMS else ""
        prefix = "/ws/" if self.kind in TANDEMS else "/"
        return f"ws://127.0.0.1:{self.port}{prefix}{room}{query}"

    def _command(self) -> tuple[list[str], dict[str, str], Path, re.Pattern[str]]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.kind in TANDEMS:
            # INFO: the listening line is logged at that level (nothing per message is).
            cmd = [str(TANDEM_PYTHON), "-m", "server", "--log-level", "INFO", "serve"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db)]
            repo = BASELINE_REPO if self.kind == BASELINE and BASELINE_REPO else REPO
            cmd += [*tandem_limit_args(repo), *self.extra_args]
            return cmd, env, repo, re.compile(r"listening on http://[^:]+:(\d+)")
        if self.kind == PYCRDT:
            script = BENCH / "peers" / "pycrdt_server.py"
            cmd = [str(PEERS_PYTHON), str(script), "--port", str(self.port), "--db", str(self.db)]
            return cmd, env, self.data_dir, re.compile(r"listening on (\d+)")
        if self.kind == RELAY:
            script = BENCH / "peers" / "bare_relay.py"
            cmd = [str(TANDEM_PYTHON), str(script), "--port", str(self.port)]
            return cmd, env, self.data_dir, re.compile(r"listening on (\d+)")
        if self.kind == YWS:
            if not self.port:
                self.port = free_port()
            env |= {"HOST": "127.0.0.1", "PORT": str(self.port)}
            script = NODE_DIR / "node_modules" / "y-websocket" / "bin" / "server.js"
            return ["node", str(script)], env, NODE_DIR, re.compile(r"on port (\d+)")
        raise ValueError(self.kind)

    def start(self, timeout: float = 60) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd, env, cwd, ready = self._command()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()

        def read(proc: subprocess.Popen[str] = self.proc) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.log.append(line.rstrip("\n"))
                if len(self.log) > 2000:
                    del self.log[:1000]
                match = ready.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.kind} did not start:\n" + "\n".join(self.log[-30:]))
        return self

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM and wait (Tandem flushes and compacts); SIGKILL after ``timeout``.

        Returns the seconds the shutdown took.
        """
        started = time.perf_counter()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _LIVE.discard(self)
        return time.perf_counter() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        _LIVE.discard(self)

    def rss(self) -> int:
        return procstat.rss_bytes(self.pid)

    def cpu(self) -> float:
        return procstat.cpu_seconds(self.pid)

    def db_bytes(self) -> int:
        """The database files on disk (main file, WAL and journal)."""
        total = 0
        for suffix in ("", "-wal", "-journal", "-shm"):
            path = Path(str(self.db) + suffix)
            if path.exists() and suffix != "-shm":
                total += path.stat().st_size
        return total


@contextlib.contextmanager
def running(kind: str, data_dir: Path, *extra_args: str) -> Iterator[Server]:
    server = Server(kind, data_dir, tuple(extra_args)).start()
    try:
        yield server
    finally:
        server.stop(timeout=STOP_TIMEOUT[kind])
        server.kill()
