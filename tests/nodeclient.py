"""Drive real Yjs clients (y-websocket v3 and v1) from Python tests.

`tests/node/harness.mjs` hosts any number of Yjs clients in one Node process and speaks JSON
lines; this module starts it and turns its replies into awaitables. Typical use::

    async with node_harness() as node:
        await node.call("open", client="a", url=f"ws://127.0.0.1:{port}/ws", room="doc")
        await node.call("wait_synced", client="a")
        await node.call("insert", client="a", pos=0, text="hello")
        ev = await node.wait_event(lambda e: e["event"] == "close" and e["client"] == "a")

Needs `npm ci` in tests/node first (node_modules is not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HARNESS = REPO_ROOT / "tests" / "node" / "harness.mjs"
DEFAULT_TIMEOUT = 60.0  # seconds; the machines are small and slow

Event = dict[str, Any]


class HarnessError(RuntimeError):
    """The harness answered a command with an error, timed out, or died."""


class NodeHarness:
    def __init__(self, *, node: str = "node", default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.node = node
        self.default_timeout = default_timeout
        self.events: list[Event] = []  # every event received, for inspection
        self._unclaimed: list[Event] = []  # events no wait_event() has taken yet
        self._event_arrived = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stderr_tail: deque[str] = deque(maxlen=200)
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dead: HarnessError | None = None

    async def start(self) -> None:
        if not (HARNESS.parent / "node_modules").is_dir():
            raise HarnessError(f"run `npm ci` in {HARNESS.parent} first")
        self._proc = await asyncio.create_subprocess_exec(
            self.node,
            str(HARNESS),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,  # `state` of a big document is one long line
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]
        await self.wait_event(lambda e: e["event"] == "ready", self.default_timeout)

    async def call(self, cmd: str, *, call_timeout: float | None = None, **args: Any) -> Any:
        """Run one command and return its result; raise HarnessError on an error reply.

        `call_timeout` is only a safety net against a stuck harness (the harness times out its
        own waits, `timeout=` in args): by default the command's own timeout plus
        `default_timeout`, and no limit for `replay`, whose length depends on the trace.
        """
        if self._dead:
            raise self._dead
        assert self._proc is not None and self._proc.stdin is not None, "start() first"
        if call_timeout is None and cmd != "replay":
            call_timeout = float(args.get("timeout", 0)) + self.default_timeout
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **args}).encode() + b"\n")
        try:
            await self._proc.stdin.drain()
            return await asyncio.wait_for(future, call_timeout)
        except TimeoutError:
            raise HarnessError(f"no reply to {cmd} {args} within {call_timeout}s") from None
        finally:
            self._pending.pop(request_id, None)

    async def wait_event(
        self,
        predicate: Callable[[Event], bool],
        timeout: float | None = None,  # mirrors the harness's own `timeout`
    ) -> Event:
        """Take the oldest not yet taken event that matches; wait for one if there is none.

        Events are claimed: two waits for the same kind of event get two different events.
        """
        timeout = self.default_timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, event in enumerate(self._unclaimed):
                if predicate(event):
                    return self._unclaimed.pop(i)
            if self._dead:
                raise self._dead
            self._event_arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._event_arrived.wait(), max(remaining, 0))
            except TimeoutError:
                recent = self.events[-5:]
                raise HarnessError(
                    f"no matching event within {timeout}s; last events: {recent}"
                ) from None

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    async def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and not self._dead:
            with contextlib.suppress(HarnessError, ConnectionError):
                await self.call("exit", call_timeout=10)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._proc = None

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self._stderr_tail.append(f"(non-JSON on stdout) {raw!r}")
                continue
            if "event" in message:
                self.events.append(message)
                self._unclaimed.append(message)
                self._event_arrived.set()
                continue
            future = self._pending.get(message.get("id"))
            if future is None or future.done():
                continue
            if message.get("ok"):
                future.set_result(message.get("result"))
            else:
                future.set_exception(HarnessError(message.get("error", "unknown error")))
        # stdout closed: the process is gone; fail whoever is still waiting
        code = await self._proc.wait()
        self._dead = HarnessError(f"node harness exited with {code}; stderr:\n{self.stderr_tail()}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._dead)
        self._event_arrived.set()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr_tail.append(line)
            print(f"[node] {line}", file=sys.stderr)  # pytest shows it with a failure


@contextlib.asynccontextmanager
async def node_harness(**kwargs: Any) -> AsyncIterator[NodeHarness]:
    """`async with node_harness() as node:`; also usable as the body of an async fixture."""
    harness = NodeHarness(**kwargs)
    try:
        await harness.start()
        yield harness
    finally:
        await harness.close()
