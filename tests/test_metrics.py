"""GET /metrics: Prometheus counters move with real traffic."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from testkit.yclient import YClient

from .conftest import ServerProcess, unique
from .wsframes import close_code


async def scrape(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, float]:
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            samples[key] = sample.value
    return samples


async def test_metrics_count_traffic_commits_acks_and_closes(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    before = await scrape(http, server)
    name = unique("metrics")
    writer = await YClient(http, server.ws_url, name).connect()
    reader = await YClient(http, server.ws_url, name, ack=False).connect()
    for i in range(10):
        await writer.append(f"line {i}\n")
    await writer.wait_acked()
    bad = await http.ws_connect(f"{server.ws_url}/{name}")
    await bad.send_str("text frames are refused")
    assert await close_code(bad) == 1003
    during = await scrape(http, server)
    await writer.close()
    await reader.close()

    def moved(key: str) -> float:
        return during.get(key, 0) - before.get(key, 0)

    assert moved("tandem_updates_in_total") >= 11  # 10 edits + the step 2 of the sync
    assert moved("tandem_messages_in_total") >= 11
    assert moved("tandem_bytes_in_total") > 0
    assert moved("tandem_messages_out_total") >= 10  # relayed to the reader, acks, syncs
    assert moved("tandem_bytes_out_total") > 0
    assert moved("tandem_commit_seconds_count") >= 1
    assert moved("tandem_commit_batch_appends_sum") >= 10
    assert moved("tandem_ack_seconds_count") >= 11
    assert moved("tandem_closes_total{code=1003}") == 1
    assert during["tandem_connections"] >= 2
    assert during["tandem_rooms_loaded"] >= 1
    assert "tandem_fanout_queue_frames" in during
    assert during["process_resident_memory_bytes"] > 0
