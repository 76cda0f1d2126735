"""Shared fixtures: a real Tandem server process on a free port over a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, async_playwright

from testkit.serverproc import ServerProcess
from testkit.services import Postgres, Redis

from .browser import NewPerson, launch, new_person


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Start servers (killed at the end of the test) with ``server_factory(db, *args)``."""
    started: list[ServerProcess] = []

    class Factory(ServerProcess):
        def __init__(
            self,
            db: Path | None = None,
            *args: str,
            port: int = 0,
            env: dict[str, str] | None = None,
        ) -> None:
            super().__init__(db or tmp_path / "tandem.db", *args, port=port, env=env)
            started.append(self)

    yield Factory
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by a module's tests (use distinct document names per test)."""
    db = tmp_path_factory.mktemp("server") / "tandem.db"
    proc = ServerProcess(db, "--keepalive", "2").start()
    yield proc
    proc.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


def unique(prefix: str) -> str:
    """A document name no other test uses."""
    return f"{prefix}-{time.monotonic_ns()}"


async def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (tests take a fresh database each)."""
    server = Postgres().start()
    yield server
    server.close()


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    """A real redis-server of the test's own (tests kill and restart it)."""
    server = Redis().start()
    yield server
    server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One real Chromium per browser test module (each test makes its own contexts)."""
    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def person(browser: Browser) -> AsyncIterator[NewPerson]:
    """``await person("Ada", color=None, **context_options)``: a new browser context (one
    person), closed after the test, which fails if a page of it threw an uncaught error."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def make(name: str, color: str | None = None, **options: Any) -> BrowserContext:
        context = await new_person(browser, name, color, **options)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
