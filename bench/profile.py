"""Profile Tandem under W1 and W2 with py-spy (sampling, attached to the running server).

``python -m bench.profile [--quick]`` writes, per workload, the folded stacks
(``bench/results/profiles/<workload>.folded``: open them in speedscope or feed them to any
flamegraph tool) and a summary (``<workload>.txt``): where the samples are, by innermost frame
("self"), by function including callees ("total"), and by the innermost line of Tandem's own
code on the stack ("server/ line responsible"), which is where a fix would go.
Profiling perturbs timing: the figures of these runs are not benchmark results.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from . import loadgen, servers, traces
from .servers import TANDEM, Server
from .workloads import w1_throughput, w2_latency

OUT = Path(__file__).resolve().parent / "results" / "profiles"
PY_SPY = servers.BENCH / ".venv-peers" / "bin" / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _parse(folded: Path) -> tuple[int, list[tuple[list[str], int]]]:
    stacks = []
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            m = _FRAME.match(raw.strip())
            frames.append(f"{m['func']} ({_short(m['file'])}:{m['line']})" if m else raw.strip())
        stacks.append((frames, int(count)))
        total += int(count)
    return total, stacks


_ENTRY = ("(server/cli.py:", "(server/__main__.py:")


def _responsible(frames: list[str]) -> str:
    """The innermost frame of Tandem's own code, or what the sample was doing instead."""
    if any("_connection_worker_thread" in f for f in frames):
        return "[aiosqlite worker thread: SQLite itself]"
    if frames[-1].startswith("EpollSelector.select"):
        return "[event loop waiting in epoll: idle]"
    mine = [f for f in frames if "(server/" in f and not any(e in f for e in _ENTRY)]
    return mine[-1] if mine else "[asyncio/aiohttp with no Tandem frame below the loop]"


def summarise(folded: Path, top: int = 20) -> str:
    total, stacks = _parse(folded)
    if not total:
        return "no samples"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    server_line: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        seen = set()
        for frame in frames:
            func = re.sub(r":\d+\)$", ")", frame)
            if func not in seen:
                inclusive[func] += count
                seen.add(func)
        server_line[_responsible(frames)] += count

    def block(title: str, counter: Counter[str]) -> list[str]:
        lines = [f"## {title}", ""]
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / total:5.1f}%  {frame}")
        return [*lines, ""]

    out = [f"# {folded.stem}: {total} samples", ""]
    out += block("server/ line responsible (innermost Tandem frame on the stack)", server_line)
    out += block("self (innermost frame)", own)
    out += block("total (function, callees included)", inclusive)
    return "\n".join(out)


class Recorder:
    def __init__(self, pid: int, folded: Path, rate: int = 200) -> None:
        folded.parent.mkdir(parents=True, exist_ok=True)
        self.folded = folded
        cmd = [str(PY_SPY), "record", "--pid", str(pid), "--rate", str(rate)]
        cmd += ["--nonblocking", "--format", "raw", "-o", str(folded)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def profile(quick: bool) -> None:
    loadgen.raise_nofile_limit()
    rustcode = traces.load("rustcode", 8000 if quick else None)
    with tempfile.TemporaryDirectory(prefix="tandem-profile-") as tmp:
        jobs = {
            "w1-rustcode": lambda s: w1_throughput.run(s, rustcode),
            "w2": lambda s: w2_latency.run(
                s, rooms=20 if quick else 40, warmup=1, duration=5 if quick else 10
            ),
        }
        for name, job in jobs.items():
            server = Server(TANDEM, Path(tmp) / name).start()
            recorder = Recorder(server.pid, OUT / f"{name}.folded")
            await asyncio.sleep(1.0)  # py-spy attaches
            try:
                figures = await job(server)
            finally:
                recorder.stop()
                server.stop()
                server.kill()
            text = summarise(recorder.folded)
            (OUT / f"{name}.txt").write_text(f"figures under the profiler: {figures}\n\n{text}\n")
            print(text)
            print(f"-> {OUT / name}.folded / .txt", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summarise", type=Path, help="only summarise an existing .folded file")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    asyncio.run(profile(args.quick))


if __name__ == "__main__":
    main()
