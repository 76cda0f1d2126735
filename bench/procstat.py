"""What /proc says about a process and the machine: CPU time, RSS, load, versions."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * _PAGE


class CpuMeter:
    """CPU used by a process between two readings, as a share of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = cpu_seconds(pid)
        self.wall0 = time.perf_counter()

    def seconds(self) -> float:
        """CPU seconds used since the meter started."""
        return cpu_seconds(self.pid) - self.cpu0

    def share(self) -> float:
        wall = time.perf_counter() - self.wall0
        return (cpu_seconds(self.pid) - self.cpu0) / wall if wall > 0 else 0.0


def _all_cpu() -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            out[int(entry.name)] = (cmd, cpu_seconds(int(entry.name)))
        except (OSError, ValueError):
            continue
    return out


def background_load(window: float = 1.0, exclude: set[int] | None = None) -> dict[str, object]:
    """Load average and the processes (not ours) that used CPU during ``window`` seconds."""
    exclude = exclude or set()
    before = _all_cpu()
    time.sleep(window)
    after = _all_cpu()
    busy = []
    for pid, (cmd, cpu) in after.items():
        if pid in exclude or pid not in before or not cmd:
            continue
        used = (cpu - before[pid][1]) / window
        if used >= 0.05:
            busy.append({"pid": pid, "cpu_share": round(used, 2), "cmd": cmd[:120]})
    busy.sort(key=lambda p: -float(p["cpu_share"]))  # type: ignore[arg-type]
    return {"loadavg": os.getloadavg(), "busy_processes": busy}


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except OSError:
        return "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine_info(repo: Path, peers_python: Path, node_dir: Path) -> dict[str, object]:
    from importlib.metadata import version

    def npm_version(name: str) -> str:
        package = node_dir / "node_modules" / name / "package.json"
        return json.loads(package.read_text())["version"] if package.exists() else "?"

    peers = _version(
        [
            str(peers_python),
            "-c",
            "import importlib.metadata as m; print(' '.join(f'{p}=={m.version(p)}' for p in "
            "('pycrdt-websocket', 'pycrdt-store', 'pycrdt', 'hypercorn')))",
        ]
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "tandem_commit": _version(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        "tandem_worktree_dirty": bool(_version(["git", "-C", str(repo), "status", "--short"])),
        "versions": {
            "aiohttp": version("aiohttp"),
            "pycrdt (tandem venv)": version("pycrdt"),
            "peers venv": peers,
            "y-websocket": npm_version("y-websocket"),
            "yjs": npm_version("yjs"),
            "ws": npm_version("ws"),
        },
    }
