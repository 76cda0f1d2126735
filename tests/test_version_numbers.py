"""Version numbers per document over HTTP and in the CLI, against a real server: 1, 2, 3... as
saved, each document its own, never renumbered or given twice."""

from __future__ import annotations

import subprocess
import sys

import aiohttp

from testkit.serverproc import REPO_ROOT
from testkit.yclient import YClient

from .conftest import ServerProcess, unique


async def typed(http: aiohttp.ClientSession, server: ServerProcess, text: str) -> str:
    name = unique("numbered")
    client = await YClient(http, server.ws_url, name).connect()
    await client.append(text)
    await client.wait_acked()
    await client.close()
    return name


async def save(
    http: aiohttp.ClientSession, server: ServerProcess, name: str, label: str
) -> dict[str, int]:
    url = f"{server.url}/api/docs/{name}/versions"
    async with http.post(url, json={"label": label}) as resp:
        assert resp.status == 201, await resp.text()
        saved: dict[str, int] = await resp.json()
        return saved


async def listed(http: aiohttp.ClientSession, server: ServerProcess, name: str) -> list[dict]:
    async with http.get(f"{server.url}/api/docs/{name}/versions") as resp:
        assert resp.status == 200
        versions: list[dict] = await resp.json()
        return versions


async def test_versions_are_numbered_per_document_over_http_and_in_the_cli(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory().start()
    first = await typed(http, srv, "one")
    other = await typed(http, srv, "other")
    client = await YClient(http, srv.ws_url, first).connect()
    saved = []
    for label in ("a", "b", "c"):
        await client.append(f" {label}")  # a new state each time (the same one is not saved twice)
        await client.wait_acked()
        saved.append(await save(http, srv, first, label))
    await client.close()
    assert [s["number"] for s in saved] == [1, 2, 3]
    assert (await save(http, srv, other, "x"))["number"] == 1
    versions = await listed(http, srv, first)
    assert [(v["number"], v["label"]) for v in versions] == [(3, "c"), (2, "b"), (1, "a")]
    assert [v["id"] for v in versions] == [s["id"] for s in reversed(saved)]

    # Deleting one renumbers none; the next save does not take a freed number.
    async with http.delete(f"{srv.url}/api/docs/{first}/versions/{saved[2]['id']}") as resp:
        assert resp.status == 200
    assert [v["number"] for v in await listed(http, srv, first)] == [2, 1]
    client = await YClient(http, srv.ws_url, first).connect()
    await client.append(" d")
    await client.wait_acked()
    await client.close()
    assert (await save(http, srv, first, "d"))["number"] == 4

    shown = subprocess.run(
        [sys.executable, "-m", "server", "versions", first, "--db", str(srv.db)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split()[:2] == ["NUMBER", "ID"]
    assert [row.split()[0] for row in rows] == ["4", "2", "1"]
    assert [row.split()[-1] for row in rows] == ["d", "b", "a"]
