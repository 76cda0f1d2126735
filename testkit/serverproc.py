"""A real Tandem server in a subprocess (tests and benchmarks share it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_LISTENING = re.compile(r"Tandem listening on (http://[^\s]+)")


class ServerProcess:
    """``python -m server serve`` in a subprocess; restartable on the same database."""

    def __init__(
        self,
        db: Path,
        *args: str,
        port: int = 0,
        env: dict[str, str] | None = None,
        module: str = "server",
    ) -> None:
        self.db = db
        # What ``python -m`` runs: the server, or a module that wraps it (testkit/crashprobe.py).
        self.module = module
        self.args = list(args)
        self.port = port
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        """What a y-websocket provider takes as ``serverUrl``."""
        return self.url.replace("http://", "ws://") + "/ws"

    def start(self, timeout: float = 60) -> ServerProcess:
        cmd = [sys.executable, "-m", self.module, "serve", "--db", str(self.db)]
        cmd += ["--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        found = threading.Event()

        def read(proc: subprocess.Popen[str] = self.proc) -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.log.append(line.rstrip("\n"))
                match = _LISTENING.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("server did not start:\n" + "\n".join(self.log[-40:]))
        # Restarts reuse the port so clients reconnect to the same address.
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        if self._reader:
            self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self._reader:
            self._reader.join(5)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return "\n".join(self.log)
