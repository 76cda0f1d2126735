"""Prometheus metrics (``GET /metrics``). Module-level, in the default registry, which also
carries the process's own CPU and memory figures."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import ClassVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONNECTIONS = Gauge("tandem_connections", "Open WebSocket connections")
ROOMS_LOADED = Gauge("tandem_rooms_loaded", "Documents loaded in memory")
OUTBOX_FRAMES = Gauge("tandem_fanout_queue_frames", "Frames queued for clients, all connections")


class Traffic:
    """Per-message counters, kept as plain ints: a prometheus Counter takes a lock on every
    ``inc``, a measurable share of the hot path. Exported as counters at scrape time."""

    __slots__ = ("bytes_in", "bytes_out", "messages_in", "messages_out", "updates_in")

    HELP: ClassVar[dict[str, str]] = {
        "updates_in": "Update-bearing messages received (sync step 2, update)",
        "messages_in": "Messages received",
        "bytes_in": "Bytes received in WebSocket messages",
        "messages_out": "Frames written to clients",
        "bytes_out": "Bytes written to clients (payloads)",
    }

    def __init__(self) -> None:
        self.updates_in = 0
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0


TRAFFIC = Traffic()


class _TrafficCollector(Collector):
    def collect(self) -> list[Metric]:
        return [
            CounterMetricFamily(f"tandem_{name}", help_text, value=getattr(TRAFFIC, name))
            for name, help_text in Traffic.HELP.items()
        ]


REGISTRY.register(_TrafficCollector())
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


class PlainHistogram(Collector):
    """A histogram observed once per update: plain ints and a bisect, no lock (a prometheus
    Histogram takes a lock per bucket on every ``observe``); exported at scrape time."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def collect(self) -> list[Metric]:
        cumulative = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            cumulative.append((str(bound), running))
        cumulative.append(("+Inf", running + self.counts[-1]))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, self.total)
        return [family]


ACK_SECONDS = PlainHistogram(
    "tandem_ack_seconds",
    "From an update's arrival to its durable commit",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
REGISTRY.register(ACK_SECONDS)


def watch(rooms_loaded: Callable[[], int], queued_frames: Callable[[], int]) -> None:
    """Gauges read at scrape time from the running application."""
    ROOMS_LOADED.set_function(rooms_loaded)
    OUTBOX_FRAMES.set_function(queued_frames)


async def metrics(_request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# --- several instances (server.cluster) --------------------------------------------------------
CLUSTER_PUBLISHED = Counter(
    "tandem_cluster_published", "Messages published to the other instances (Redis)"
)
CLUSTER_DROPPED = Counter(
    "tandem_cluster_publish_dropped",
    "Messages not published (Redis down or queue full): the others read them from the store",
)
CLUSTER_RECEIVED = Counter(
    "tandem_cluster_received", "Messages received from other instances", ["kind"]
)
CLUSTER_DUPLICATES = Counter(
    "tandem_cluster_duplicate_updates", "Updates received again (by Redis or a repair): ignored"
)
CLUSTER_GAPS = Counter(
    "tandem_cluster_gaps_repaired", "Gaps in a document's sequence numbers read back from the store"
)
CLUSTER_REPAIRED = Counter(
    "tandem_cluster_repaired_updates",
    "Updates (or snapshots) read back from the store to fill gaps",
)
CLUSTER_LAG = Histogram(
    "tandem_cluster_lag_seconds",
    "From an instance publishing a committed update to another receiving it",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
CLUSTER_REDIS_UP = Gauge("tandem_cluster_redis_up", "1 while the Redis subscriber is connected")

# --- webhooks (server.webhooks) ----------------------------------------------------------------
WEBHOOK_DELIVERED = Counter("tandem_webhook_delivered", "Webhook events a receiver accepted (2xx)")
WEBHOOK_FAILED = Counter(
    "tandem_webhook_failed_attempts", "Webhook attempts that failed (retried with backoff)"
)
WEBHOOK_GIVEN_UP = Counter(
    "tandem_webhook_given_up", "Webhook events dropped after --webhook-max-age without success"
)
