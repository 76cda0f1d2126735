"""Prometheus metrics (``GET /metrics``). Module-level, in the default registry, which also
carries the process's own CPU and memory figures."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CONNECTIONS = Gauge("tandem_connections", "Open WebSocket connections")
ROOMS_LOADED = Gauge("tandem_rooms_loaded", "Documents loaded in memory")
OUTBOX_FRAMES = Gauge("tandem_fanout_queue_frames", "Frames queued for clients, all connections")
UPDATES_IN = Counter("tandem_updates_in", "Update-bearing messages received (sync step 2, update)")
MESSAGES_IN = Counter("tandem_messages_in", "Messages received")
BYTES_IN = Counter("tandem_bytes_in", "Bytes received in WebSocket messages")
MESSAGES_OUT = Counter("tandem_messages_out", "Frames queued to clients")
BYTES_OUT = Counter("tandem_bytes_out", "Bytes queued to clients")
CLOSES = Counter("tandem_closes", "Connections closed by the server, by close code", ["code"])
COMMIT_BATCH = Histogram(
    "tandem_commit_batch_appends",
    "Appends per group commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
COMMIT_SECONDS = Histogram(
    "tandem_commit_seconds",
    "Time to commit one batch",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
ACK_SECONDS = Histogram(
    "tandem_ack_seconds",
    "From an update's arrival to its durable commit",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)


def watch(rooms_loaded: Callable[[], int], queued_frames: Callable[[], int]) -> None:
    """Gauges read at scrape time from the running application."""
    ROOMS_LOADED.set_function(rooms_loaded)
    OUTBOX_FRAMES.set_function(queued_frames)


async def metrics(_request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
