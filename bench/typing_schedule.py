"""Users typing at a steady rate from one load generator (W2, W6): each user sends its
pre-encoded frames at ``rate`` per second from a random phase, all users on one heap; server CPU
and the load generator's own are measured from the start of the measured window."""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import loadgen, procstat
from .loadgen import WSClient

# A send later than this behind its schedule counts as late (the load generator fell behind).
LATE_SECONDS = 0.05


class Typist(Protocol):
    index: int
    frames: list[bytes]  # one client frame per edit
    sent_at: list[float]


@dataclass(frozen=True, slots=True)
class Typed:
    t0: float  # when the schedule started
    measuring_from: float
    measured_seconds: float  # from the measured window's start to the last send
    server_cpu_share: float
    server_cpu_seconds: float
    loadgen_cpu_share: float
    late: int  # sends more than LATE_SECONDS behind their schedule


def start_times(warmup: float) -> tuple[float, float]:
    """When typing starts (a moment from now) and when the measured window opens."""
    t0 = time.perf_counter() + 0.1
    return t0, t0 + warmup


async def type_at_rate(
    server_pid: int,
    people: Sequence[Typist],
    clients: Sequence[WSClient],
    *,
    rate: float,
    edits: int,
    start: tuple[float, float],
    duration: float,
    rng: random.Random,
    on_measuring: Callable[[], None] | None = None,
) -> Typed:
    """Send until ``duration`` s of the measured window have passed; ``start`` from
    :func:`start_times` (the caller's tallies need its window before the first send)."""
    t0, measuring_from = start
    period = 1.0 / rate
    schedule = [(t0 + rng.uniform(0, period), u.index, 0) for u in people]
    heapq.heapify(schedule)
    end_at = measuring_from + duration
    meter: procstat.CpuMeter | None = None
    gen_cpu0 = 0.0
    late = 0
    while schedule:
        due, index, k = schedule[0]
        now = time.perf_counter()
        if meter is None and now >= measuring_from:
            meter = procstat.CpuMeter(server_pid)
            gen_cpu0 = loadgen.cpu_seconds()
            if on_measuring is not None:
                on_measuring()
        if due > now:
            await asyncio.sleep(min(due - now, 0.005))
            continue
        heapq.heappop(schedule)
        if now - due > LATE_SECONDS:
            late += 1
        user = people[index]
        user.sent_at.append(now)
        clients[index].write_frames(user.frames[k], update_bearing=1)
        if k + 1 < edits and due + period < end_at:
            heapq.heappush(schedule, (due + period, index, k + 1))
    measured = time.perf_counter() - (meter.wall0 if meter else t0)
    gen_share = (loadgen.cpu_seconds() - gen_cpu0) / measured if measured > 0 else 0.0
    return Typed(
        t0=t0,
        measuring_from=measuring_from,
        measured_seconds=measured,
        server_cpu_share=meter.share() if meter else 0.0,
        server_cpu_seconds=meter.seconds() if meter else 0.0,
        loadgen_cpu_share=gen_share,
        late=late,
    )
