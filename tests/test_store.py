"""The stores on real files and a real PostgreSQL: append/load, group commit, compaction,
migrations. The shared behaviour runs against both backends (the ``backend`` fixture); what only
one of them has (SQLite's file, PostgreSQL's sequence numbers and several instances on one
database) has tests of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pycrdt import Doc, Text

from server.storage import Store as BaseStore
from server.storage import StoreError, postgres_schema
from server.storage import postgres as pgstore
from server.storage.base import FILE_ID
from server.storage.events import NewEvent
from server.storage.postgres import PostgresStore
from server.storage.sqlite import SQLiteStore as Store
from server.storage.sqlite_schema import SCHEMA_VERSION
from server.storage.writer import MAX_BATCH_APPENDS
from testkit.services import Postgres
from testkit.traces import load_trace, trace_updates

from .conftest import eventually


class Backend:
    """Opens stores of one kind: SQLite files under the test's tmp_path, or fresh databases on
    the session's PostgreSQL. The same ``name`` opens the same file or database again."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._tmp_path = tmp_path
        self._request = request
        self._urls: dict[str, str] = {}

    @property
    def postgres(self) -> Postgres:
        server: Postgres = self._request.getfixturevalue("postgres")
        return server

    def location(self, name: str = "t") -> Path | str:
        if self.kind == "sqlite":
            return self._tmp_path / f"{name}.db"
        if name not in self._urls:
            self._urls[name] = self.postgres.new_database()
        return self._urls[name]

    async def open(self, name: str = "t", **kwargs: Any) -> BaseStore:
        where = self.location(name)
        if self.kind == "sqlite":
            return await Store.open(where, **kwargs)
        return await PostgresStore.open(str(where), **kwargs)

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION if self.kind == "sqlite" else postgres_schema.SCHEMA_VERSION


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    # The session's PostgreSQL starts only when a postgres case asks for it.
    return Backend(request.param, tmp_path, request)


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend("postgres", tmp_path, request)


def doc_from(updates: list[bytes]) -> Doc:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


async def test_appended_updates_load_back_in_order(backend: Backend) -> None:
    store = await backend.open()
    try:
        for i in range(5):
            store.append("doc", f"u{i}".encode())
        store.append("other", b"x")
        await store.flush()
        assert await store.load("doc") == [f"u{i}".encode() for i in range(5)]
        assert await store.load("other") == [b"x"]
        assert await store.load("missing") == []
    finally:
        await store.close()


async def test_ack_callback_runs_only_once_the_row_is_committed(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = await Store.open(db)
    seen_by_other_connection: list[int] = []

    def on_commit() -> None:
        # A separate connection sees only committed data.
        with sqlite3.connect(db) as other:
            (count,) = other.execute("SELECT COUNT(*) FROM updates").fetchone()
        seen_by_other_connection.append(count)

    try:
        store.append("doc", b"payload", on_commit)
        store.append("doc", None, on_commit)  # an empty update is acked in order, stores nothing
        assert seen_by_other_connection == []
        await store.flush()
        assert seen_by_other_connection == [1, 1]
    finally:
        await store.close()


async def test_appends_queued_together_share_one_commit(backend: Backend) -> None:
    store = await backend.open()
    try:
        before = store.health.batches
        for i in range(100):
            store.append("doc", bytes([i]))
        await store.flush()
        assert store.health.batches - before == 1
        assert len(await store.load("doc")) == 100
    finally:
        await store.close()


async def test_a_long_queue_commits_in_bounded_batches_with_acks_in_order(
    backend: Backend,
) -> None:
    """A client replaying a long log must not make one giant transaction (the WAL would hold
    all of it, and no ack would go out before the very end)."""
    store = await backend.open(compact_updates=10**9, compact_bytes=10**12)
    acked: list[int] = []
    total = MAX_BATCH_APPENDS * 2 + 10
    try:
        before = store.health.batches
        for i in range(total):
            store.append("doc", i.to_bytes(4, "big"), lambda i=i: acked.append(i))
        await store.flush()
        assert store.health.batches - before == 3
        assert acked == list(range(total))
        assert len(await store.load("doc")) == total
    finally:
        await store.close()


async def test_a_log_that_cannot_be_compacted_is_not_retried_after_every_commit(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    store = await backend.open(compact_updates=100)
    try:
        for i in range(150):
            store.append("poisoned", b"\x01\x02garbage" + bytes([i]))
        await store.flush()
        skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
        assert len(skipped) == 1
        for _ in range(20):  # twenty more commits, far from another threshold's worth
            store.append("poisoned", b"\x01\x02garbage")
            await store.flush()
        assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1
        assert await store.log_length("poisoned") == 170  # nothing dropped
    finally:
        await store.close()


async def test_compaction_of_a_real_trace_keeps_the_document_identical(backend: Backend) -> None:
    updates, text = trace_updates()
    assert text == load_trace()["endContent"]
    plain = await backend.open("plain", compact_updates=10**9, compact_bytes=10**12)
    compacted = await backend.open("compact", compact_updates=500)
    try:
        for start in range(0, len(updates), 250):
            for update in updates[start : start + 250]:
                plain.append("svelte", update)
                compacted.append("svelte", update)
            await compacted.flush()
        await plain.flush()
        assert await plain.log_length("svelte") == len(updates)
        # Compacted along the way: the log is one snapshot plus a tail of at most a quarter of
        # it (or 500 updates), not 18,335 rows.
        log_rows = await compacted.log_length("svelte")
        print(f"log rows {log_rows}, compactions {compacted.health.compactions}")
        assert log_rows < len(updates) // 5
        assert compacted.health.compactions >= 5
        info = await compacted.document("svelte")
        assert info is not None
        merged_size = len(doc_from(await plain.load("svelte")).get_update())
        assert info.size_bytes <= 1.5 * merged_size + 500 * 100

        reference = doc_from(await plain.load("svelte"))
        loaded = doc_from(await compacted.load("svelte"))
        assert str(loaded.get("content", type=Text)) == text
        assert loaded.get_state() == reference.get_state()
        # Nothing in either (insertions or deletions) is missing from the other.
        for a, b in ((reference, loaded), (loaded, reference)):
            union = doc_from([a.get_update(), b.get_update()])
            assert str(union.get("content", type=Text)) == text
            assert union.get_state() == a.get_state()

        assert info.size_bytes < (await plain.document("svelte")).size_bytes  # type: ignore[union-attr]
        # An explicit full compaction leaves exactly one row that loads the same document.
        assert await compacted.compact("svelte")
        assert await compacted.log_length("svelte") == 1
        again = doc_from(await compacted.load("svelte"))
        assert str(again.get("content", type=Text)) == text
    finally:
        await plain.close()
        await compacted.close()


async def test_compaction_keeps_updates_still_waiting_for_their_dependencies(
    backend: Backend,
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    text += "first "
    text += "second"
    store = await backend.open()
    try:
        # Only the second update arrives: it cannot be integrated yet, but must be kept.
        store.append("doc", produced[1])
        store.append("doc", b"\x00\x00")
        await store.flush()
        assert await store.compact("doc")
        doc = doc_from(await store.load("doc"))
        doc.apply_update(produced[0])
        assert str(doc.get("content", type=Text)) == "first second"
    finally:
        await store.close()


def pages(db: Path) -> tuple[int, int, int]:
    """(auto_vacuum mode, pages in the file, pages on the free list), read-only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("auto_vacuum", "page_count", "freelist_count")
        )


async def test_compaction_gives_the_freed_pages_back_to_the_file_system(
    tmp_path: Path,
) -> None:
    updates, text = trace_updates()
    db = tmp_path / "t.db"
    store = await Store.open(db, compact_updates=10**9, compact_bytes=10**12)
    try:
        for update in updates:
            store.append("svelte", update)
        await store.flush()
        mode, before, _ = pages(db)
        assert mode == 2  # incremental
        assert await store.compact("svelte")
        _, after, free = pages(db)
        # The log of 18k rows is gone and so are its pages, not just onto the free list.
        assert free * 4 < after
        assert after * 4 < before
        assert str(doc_from(await store.load("svelte")).get("content", type=Text)) == text
    finally:
        await store.close()


async def test_a_file_made_without_auto_vacuum_is_switched_at_open(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    assert pages(db)[0] == 0
    store = await Store.open(db)
    await store.close()
    assert pages(db)[0] == 2


async def test_a_compacted_log_loads_with_the_state_vector_of_its_snapshot(
    backend: Backend,
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    for i in range(10):
        text += f"line {i}\n"
    store = await backend.open()
    try:
        for update in produced:
            store.append("doc", update)
        await store.flush()
        assert (await store.load_document("doc")).snapshot_state is None  # a log, not a snapshot
        assert await store.compact("doc")
        stored = await store.load_document("doc")
        assert len(stored.updates) == 1
        assert stored.snapshot_state == source.get_state()
        # Any append makes the recorded state vector stale: it is not returned any more.
        text += "more"
        store.append("doc", produced[-1])
        await store.flush()
        stored = await store.load_document("doc")
        assert len(stored.updates) == 2 and stored.snapshot_state is None
        assert str(doc_from(stored.updates).get("content", type=Text)) == str(text)
        assert (await store.load_document("missing")).updates == []
        # A document of one row is compacted at shutdown only to record its state vector.
        store.append("single", produced[0])
        await store.flush()
        assert (await store.load_document("single")).snapshot_state is None
        assert await store.compact_all() >= 1
        single = await store.load_document("single")
        assert single.snapshot_state == doc_from([produced[0]]).get_state()
        assert len(single.updates) == 1
        assert not await store.compact("single")  # nothing left to do
    finally:
        await store.close()


async def test_migration_from_schema_version_1_backfills_the_document_list(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    old = await Store.open(db, schema_version=1)
    await old.close()
    updates, text = trace_updates(limit=300)
    # What a version-1 server wrote: the update log alone.
    with sqlite3.connect(db) as legacy:
        assert legacy.execute("PRAGMA user_version").fetchone() == (1,)
        legacy.executemany(
            "INSERT INTO updates (doc, data, created_at) VALUES (?, ?, ?)",
            [("legacy", u, 1000.0 + i) for i, u in enumerate(updates)],
        )
    store = await Store.open(db, compact_updates=100)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        [info] = await store.list_documents()
        assert info.name == "legacy"
        assert info.size_bytes == sum(len(u) for u in updates)
        assert (info.created_at, info.updated_at) == (1000.0, 1000.0 + len(updates) - 1)
        doc = doc_from(await store.load("legacy"))
        assert str(doc.get("content", type=Text)) == text
        # The migrated tail counts toward compaction like any other.
        store.append("legacy", b"\x00\x00")
        await store.flush()
        assert await store.log_length("legacy") == 1
    finally:
        await store.close()


async def test_versions_are_stored_compressed_and_old_uncompressed_ones_still_read(
    tmp_path: Path,
) -> None:
    updates, text = trace_updates()
    state = doc_from(updates).get_update()
    db = tmp_path / "t.db"
    old = await Store.open(db, schema_version=3)
    await old.close()
    with sqlite3.connect(db) as conn:  # a version saved by a schema-3 server
        conn.execute(
            "INSERT INTO versions (doc, created_at, label, auto, data) VALUES (?, ?, ?, ?, ?)",
            ("svelte", 1000.0, "old", 0, state),
        )
    store = await Store.open(db)
    try:
        new_id = await store.save_version("svelte", state, "new")
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT LENGTH(data) FROM versions WHERE id = ?", (new_id,))
            assert stored.fetchone()[0] * 2 < len(state)
        versions = await store.list_versions("svelte")
        assert [(v.label, v.size_bytes) for v in versions] == [
            ("new", len(state)),
            ("old", len(state)),
        ]
        for v in versions:
            found = await store.version("svelte", v.id)
            assert found is not None and found[1] == state
        assert str(doc_from([state]).get("content", type=Text)) == text
    finally:
        await store.close()


async def test_a_database_from_a_newer_server_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        await Store.open(db)


@pytest.mark.parametrize(("setting", "value"), [("FULL", 2), ("NORMAL", 1)])
async def test_wal_mode_and_synchronous_setting_are_applied(
    tmp_path: Path, setting: str, value: int
) -> None:
    store = await Store.open(tmp_path / "t.db", synchronous=setting)  # type: ignore[arg-type]
    try:
        # `synchronous` belongs to a connection, not to the file: ask the writer's own.
        async with store._conn.execute("PRAGMA synchronous") as cur:
            assert await cur.fetchone() == (value,)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# --- both backends: migrations and what every log must survive ---------------------------------


async def test_a_store_is_migrated_once_and_opens_again_with_its_data(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tandem.storage")
    store = await backend.open()
    try:
        assert await store.schema_version() == backend.schema_version
        store.append("doc", b"kept")
        await store.flush()
    finally:
        await store.close()
    caplog.clear()
    store = await backend.open()
    try:
        assert await store.schema_version() == backend.schema_version
        assert not [r for r in caplog.records if "migrated" in r.getMessage()]
        assert await store.load("doc") == [b"kept"]
    finally:
        await store.close()


def waiting_updates(count: int) -> list[bytes]:
    """Updates of one editor after its first: none can be integrated without that first one."""
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    for i in range(count + 1):
        text += f"part {i} "
    return produced[1:]


async def test_a_log_whose_every_row_waits_for_a_dependency_is_kept_and_the_writer_goes_on(
    backend: Backend,
) -> None:
    """A compaction that finds nothing to merge must leave the log alone, also when it runs in
    the writer's turn after a commit (an exception there would stop every later commit)."""
    store = await backend.open(compact_updates=2)
    try:
        pending = waiting_updates(3)
        for update in pending:
            store.append("doc", update)
        await asyncio.wait_for(store.flush(), 30)
        store.append("other", b"\x00\x00")
        await asyncio.wait_for(store.flush(), 30)  # the writer still commits
        assert set(pending) <= set(await store.load("doc"))
        assert await store.load("other") == [b"\x00\x00"]
    finally:
        await store.close()


# --- PostgreSQL: the twins of the SQLite-only tests above --------------------------------------


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def count_rows_from_another_connection(url: str) -> int:
    """What a separate connection sees now (a thread of its own: an ack callback is sync)."""

    async def count() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM updates"))
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, count()).result(30)


async def test_postgres_ack_callback_runs_only_once_the_row_is_committed(
    pg_backend: Backend,
) -> None:
    url = str(pg_backend.location())
    store = await pg_backend.open()
    seen_by_other_connection: list[int] = []

    def on_commit() -> None:
        seen_by_other_connection.append(count_rows_from_another_connection(url))

    try:
        store.append("doc", b"payload", on_commit)
        store.append("doc", None, on_commit)
        assert seen_by_other_connection == []
        await store.flush()
        assert seen_by_other_connection == [1, 1]
    finally:
        await store.close()


async def test_a_postgres_database_from_a_newer_server_is_refused(pg_backend: Backend) -> None:
    url = str(pg_backend.location())
    store = await pg_backend.open()
    await store.close()
    pg_backend.postgres.psql("UPDATE tandem_schema SET version = 99", database_of(url))
    with pytest.raises(StoreError, match="newer") as refused:
        await pg_backend.open()
    assert "\n" not in str(refused.value)


async def test_a_postgres_database_at_an_older_schema_is_migrated_forward(
    pg_backend: Backend,
) -> None:
    url = str(pg_backend.location())
    old = await pg_backend.open(schema_version=0)
    await old.close()
    tables = pg_backend.postgres.psql("SELECT to_regclass('updates') IS NULL", database_of(url))
    assert tables == "t"  # schema 0: the version table alone
    store = await pg_backend.open()
    try:
        assert await store.schema_version() == postgres_schema.SCHEMA_VERSION
        store.append("doc", b"x")
        await store.flush()
        assert await store.load("doc") == [b"x"]
    finally:
        await store.close()


async def test_two_stores_migrating_one_fresh_postgres_database_at_once_both_succeed(
    pg_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Instances started together: the migration runs once, under its lock."""
    caplog.set_level(logging.INFO, logger="tandem.storage")
    url = str(pg_backend.location())
    a, b = await asyncio.gather(PostgresStore.open(url), PostgresStore.open(url))
    try:
        for store in (a, b):
            assert await store.schema_version() == postgres_schema.SCHEMA_VERSION
        migrated = [r for r in caplog.records if "migrated to schema" in r.getMessage()]
        assert len(migrated) == postgres_schema.SCHEMA_VERSION
        assert pg_backend.postgres.psql("SELECT count(*) FROM tandem_schema", database_of(url)) == (
            "1"
        )
        a.append("doc", b"from a")
        b.append("doc", b"from b")
        await asyncio.gather(a.flush(), b.flush())
        assert sorted(await a.load("doc")) == [b"from a", b"from b"]
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_postgres_versions_are_stored_compressed_and_uncompressed_ones_still_read(
    pg_backend: Backend,
) -> None:
    updates, _ = trace_updates()
    state = doc_from(updates).get_update()
    url = str(pg_backend.location())
    store = await pg_backend.open()
    try:
        new_id = await store.save_version("svelte", state, "new")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(
                "SELECT length(data) FROM versions WHERE id = $1", new_id
            ) * 2 < len(state)
            await conn.execute(
                "INSERT INTO versions (doc, created_at, label, auto, data, codec) "
                "VALUES ('svelte', 1000.0, 'plain', false, $1, 'none')",
                state,
            )
        finally:
            await conn.close()
        versions = await store.list_versions("svelte")
        assert [(v.label, v.size_bytes) for v in versions] == [
            ("new", len(state)),
            ("plain", len(state)),
        ]
        for v in versions:
            found = await store.version("svelte", v.id)
            assert found is not None and found[1] == state
    finally:
        await store.close()


# --- PostgreSQL: sequence numbers, and several instances on one database ----------------------

NEVER_COMPACT: dict[str, int] = {"compact_updates": 10**9, "compact_bytes": 10**12}


async def test_each_documents_updates_are_numbered_1_to_n_in_commit_order(
    pg_backend: Backend,
) -> None:
    store = await pg_backend.open(**NEVER_COMPACT)
    assert isinstance(store, PostgresStore)
    told: list[tuple[str, int, bytes]] = []
    store.on_committed = lambda doc, seq, data: told.append((doc, seq, data))
    expected: dict[str, list[bytes]] = {"a": [], "b": []}
    try:
        for batch in range(6):
            for i in range(batch * 7 + 1):
                for doc, payloads in expected.items():
                    payloads.append(f"{doc}{batch}.{i}".encode())
                    store.append(doc, payloads[-1])
            await store.flush()
        for doc, payloads in expected.items():
            rows = await store.load_after(doc, 0)
            assert [seq for seq, _ in rows] == list(range(1, len(payloads) + 1))
            assert [data for _, data in rows] == payloads
            assert (await store.load_document(doc)).last_seq == len(payloads)
            # What the writer reported (what a cluster publishes) is what was stored.
            assert [(seq, data) for d, seq, data in told if d == doc] == rows
        assert (await store.load_document("missing")).last_seq == 0
    finally:
        await store.close()


async def test_last_seqs_gives_each_stored_documents_last_number(pg_backend: Backend) -> None:
    store = await pg_backend.open()
    assert isinstance(store, PostgresStore)
    try:
        for i in range(3):
            store.append("three", bytes([i]))
        for i in range(5):
            store.append("five", bytes([i]))
        await store.flush()
        assert await store.last_seqs(["three", "five", "missing"]) == {"three": 3, "five": 5}
        assert await store.last_seqs([]) == {}
        store.append("three", b"\x00\x00")
        await store.flush()
        await store.compact("five")
        assert await store.last_seqs(["three", "five"]) == {"three": 4, "five": 5}
    finally:
        await store.close()


async def test_two_instances_appending_to_one_document_get_contiguous_numbers(
    pg_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Two pools are two instances: their commits of one document queue on its row, so the
    numbers run 1..n with no gap and no duplicate, and every append is there exactly once."""
    a = await pg_backend.open(**NEVER_COMPACT)
    b = await pg_backend.open(**NEVER_COMPACT)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    told: list[tuple[str, int, bytes]] = []
    a.on_committed = b.on_committed = lambda doc, seq, data: told.append((doc, seq, data))

    async def write(store: BaseStore, tag: str) -> list[bytes]:
        sent: list[bytes] = []
        for batch in range(40):
            for i in range(25):
                payload = f"{tag}-{batch}-{i}".encode()
                sent.append(payload)
                # Two documents per commit, locked in one order by both: never crosswise.
                store.append("shared", payload)
                store.append("second", payload)
            if batch % 3 == 0:
                await store.flush()
            else:
                await asyncio.sleep(0)
        await store.flush()
        return sent

    try:
        sent_a, sent_b = await asyncio.gather(write(a, "a"), write(b, "b"))
        assert not [r for r in caplog.records if "commit failed" in r.getMessage()]
        for doc in ("shared", "second"):
            rows = await a.load_after(doc, 0)
            assert [seq for seq, _ in rows] == list(range(1, len(sent_a) + len(sent_b) + 1))
            stored = [data for _, data in rows]
            assert sorted(stored) == sorted(sent_a + sent_b)
            assert len(set(stored)) == len(stored)
            # Each instance's appends in the order it made them.
            assert [d for d in stored if d.startswith(b"a-")] == sent_a
            assert [d for d in stored if d.startswith(b"b-")] == sent_b
            assert sorted((seq, data) for d, seq, data in told if d == doc) == rows
            assert (await b.load_document(doc)).last_seq == len(rows)
        stored = [data for _, data in await a.load_after("shared", 0)]
        switches = sum(1 for x, y in itertools.pairwise(stored) if x[:1] != y[:1])
        print(f"commits of the two instances interleaved {switches} times")
        assert switches > 1  # the instances did write at the same time
    finally:
        await asyncio.gather(a.close(), b.close())


def doc_text(updates: list[bytes]) -> str:
    return str(doc_from(updates).get("content", type=Text))


async def test_load_after_a_compaction_returns_the_snapshot_in_place_of_what_it_replaced(
    pg_backend: Backend,
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    for i in range(10):
        text += f"line {i}\n"
    store = await pg_backend.open(**NEVER_COMPACT)
    assert isinstance(store, PostgresStore)
    try:
        for update in produced:
            store.append("doc", update)
        await store.flush()
        assert [seq for seq, _ in await store.load_after("doc", 0)] == list(range(1, 11))
        assert await store.compact("doc")
        [(seq, snapshot)] = await store.load_after("doc", 0)
        # The snapshot takes the number of the last update it replaced.
        assert seq == 10 and doc_text([snapshot]) == str(text)
        # An instance that had seen up to 4 gets the snapshot: it holds 5..10.
        assert await store.load_after("doc", 4) == [(10, snapshot)]
        assert await store.load_after("doc", 10) == []
        for i in range(2):
            text += f"more {i}\n"
        store.append("doc", produced[-2])
        store.append("doc", produced[-1])
        await store.flush()
        assert await store.load_after("doc", 10) == [(11, produced[-2]), (12, produced[-1])]
        after_3 = await store.load_after("doc", 3)
        assert [seq for seq, _ in after_3] == [10, 11, 12]
        assert doc_text([data for _, data in after_3]) == str(text)
        assert (await store.load_document("doc")).last_seq == 12

        # A row still waiting for its dependency keeps its number beside the snapshot.
        pending = waiting_updates(1)[0]
        store.append("gappy", pending)
        store.append("gappy", b"\x00\x00")
        await store.flush()
        assert await store.compact("gappy")
        rows = await store.load_after("gappy", 0)
        assert [seq for seq, _ in rows] == [1, 2] and rows[0][1] == pending
    finally:
        await store.close()


async def test_compaction_started_from_two_instances_at_once_runs_once(
    pg_backend: Backend,
) -> None:
    """The advisory lock: one compacts, the other skips; appends another instance makes
    meanwhile wait on the document's row and are all there afterwards."""
    updates, final_text = trace_updates(limit=4000)
    first, rest = updates[:3000], updates[3000:]
    a = await pg_backend.open(**NEVER_COMPACT)
    b = await pg_backend.open(**NEVER_COMPACT)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    try:
        for update in first:
            a.append("svelte", update)
        await a.flush()
        results = await asyncio.gather(a.compact("svelte"), b.compact("svelte"))
        assert sorted(results) == [False, True]
        assert a.health.compactions + b.health.compactions == 1
        assert await a.log_length("svelte") == 1
        assert doc_text(await b.load("svelte")) == doc_text(first)

        async def append_rest() -> None:
            for i, update in enumerate(rest):
                b.append("svelte", update)
                if i % 50 == 0:
                    await asyncio.sleep(0)
            await b.flush()

        for update in first[:500]:  # a tail for the next compaction to merge
            a.append("svelte", update)
        await a.flush()
        await asyncio.gather(a.compact("svelte"), b.compact("svelte"), append_rest())
        await a.compact("svelte")
        rows = await a.load_after("svelte", 0)
        assert len(rows) == 1 and rows[0][0] == len(updates) + 500
        assert doc_text([rows[0][1]]) == final_text
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_an_automatic_version_saved_by_two_instances_at_once_is_stored_once(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Doc()
    source.get("content", type=Text).insert(0, "versioned")
    state = source.get_update()
    a = await pg_backend.open()
    b = await pg_backend.open()
    try:
        first, second = await asyncio.gather(
            a.save_version("doc", state, auto=True), b.save_version("doc", state, auto=True)
        )
        assert first == second
        assert await b.save_version("doc", state, auto=True) == first  # still within the gap
        assert [v.id for v in await a.list_versions("doc")] == [first]
        # Named versions are each kept.
        named = {await a.save_version("doc", state, "one"), await b.save_version("doc", state)}
        assert len(named) == 2 and first not in named
        monkeypatch.setattr(pgstore, "AUTO_VERSION_GAP", 0.0)
        later = await b.save_version("doc", state, auto=True)
        versions = await a.list_versions("doc")
        assert later not in named | {first}
        assert sorted(v.id for v in versions if v.auto) == sorted([first, later])
    finally:
        await asyncio.gather(a.close(), b.close())


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A PostgreSQL of the test's own, to stop and start again."""
    server = Postgres().start()
    yield server
    server.close()


async def test_while_postgres_is_down_appends_wait_unacked_and_commit_once_it_is_back(
    own_postgres: Postgres,
) -> None:
    store = await PostgresStore.open(own_postgres.new_database(), retry_delay=0.05)
    acked: list[str] = []
    try:
        store.append("doc", b"before", lambda: acked.append("before"))
        await store.flush()
        own_postgres.stop()
        for i in range(3):
            store.append("doc", f"during {i}".encode(), lambda i=i: acked.append(f"during {i}"))
        await eventually(lambda: not store.health.ok and store.health.failures >= 3, timeout=30)
        print(f"while down: {store.health.error}")
        assert store.health.error and store.health.since is not None
        # Every read says so instead of looking empty (or raising the driver's own error).
        reads: list[Callable[[], Awaitable[object]]] = [
            lambda: store.load_document("doc"),
            lambda: store.load_after("doc", 0),
            lambda: store.last_seqs(["doc"]),
            store.list_documents,
            lambda: store.list_versions("doc"),
        ]
        for read in reads:
            with pytest.raises(StoreError):
                await read()
        assert acked == ["before"] and store.pending >= 3
        own_postgres.start_again()
        await asyncio.wait_for(store.flush(), 60)
        assert acked == ["before", "during 0", "during 1", "during 2"]
        assert store.health.ok and store.health.error is None
        assert await store.load_after("doc", 0) == [
            (1, b"before"),
            (2, b"during 0"),
            (3, b"during 1"),
            (4, b"during 2"),
        ]
    finally:
        started = time.monotonic()
        await asyncio.wait_for(store.close(), 60)
        assert time.monotonic() - started < 60


async def test_a_postgres_store_compacts_at_shutdown_only_what_it_wrote(
    pg_backend: Backend,
) -> None:
    """The database is shared: an instance on its way out must not merge the documents the
    other instances are writing."""
    mine, theirs = await pg_backend.open(), await pg_backend.open()
    try:
        for i in range(3):
            mine.append("mine", text_update(f"m{i}", i))
            theirs.append("theirs", text_update(f"t{i}", i))
        await mine.flush()
        await theirs.flush()
        assert await mine.compact_all() == 1
        assert await mine.log_length("mine") == 1
        assert await mine.log_length("theirs") == 3
    finally:
        await mine.close()
        await theirs.close()


def text_update(text: str, client: int) -> bytes:
    doc = Doc(client_id=client + 1)
    doc.get("content", type=Text).insert(0, text)
    return doc.get_update()


# --- the webhook outbox ------------------------------------------------------------------------

TARGETS = ("http://receiver.example/a", "http://receiver.example/b")


async def test_the_outbox_holds_each_event_per_target_from_the_commit_that_made_it(
    backend: Backend,
) -> None:
    store = await backend.open()
    store.webhook_targets = TARGETS
    try:
        store.append("doc", text_update("hello", 0))
        await store.flush()
        events = await store.claim_events(time.time() + 1, lease=30, limit=100)
        assert {(e.kind, e.target) for e in events} == {
            ("document.created", TARGETS[0]),
            ("document.created", TARGETS[1]),
        }
        assert len({e.event_id for e in events}) == 1  # one event, once per target
        assert events[0].state_vector == state_of(text_update("hello", 0))
        # Claimed: held for its lease, not handed out twice.
        assert await store.claim_events(time.time() + 1, lease=30, limit=100) == []
        await store.event_delivered(events[0].row)
        await store.retry_event(events[1].row, time.time() - 1)
        again = await store.claim_events(time.time(), lease=30, limit=100)
        assert [(e.row, e.attempts) for e in again] == [(events[1].row, 1)]
        # The edit's note: one pending change, consumed once into a document.changed.
        [change] = await store.quiet_changes(time.time() + 5, quiet=2, max_wait=10)
        assert change.doc == "doc"
        event = NewEvent("document.changed", "doc", time.time(), b"\x01\x01\x00", 5)
        assert await store.consume_change(change, event)
        assert not await store.consume_change(change, event)  # another consumer: nothing
        assert await store.quiet_changes(time.time() + 5, quiet=2, max_wait=10) == []
        changed = await store.claim_events(time.time() + 1, lease=30, limit=100)
        assert {(e.kind, e.text_length) for e in changed} == {("document.changed", 5)}
        # A saved version and a deletion are events of their own transactions.
        version = await store.save_version("doc", text_update("hello", 0))
        assert await store.delete_document("doc", tombstone=b"\x01\x01\x05")
        rest = await store.claim_events(time.time() + 1, lease=30, limit=100)
        assert sorted({(e.kind, e.version_id) for e in rest}) == [
            ("document.deleted", None),
            ("version.saved", version),
        ]
    finally:
        await store.close()


async def test_a_change_noted_while_its_event_is_made_gets_an_event_of_its_own(
    backend: Backend,
) -> None:
    store = await backend.open()
    store.webhook_targets = TARGETS[:1]
    try:
        store.append("doc", text_update("a", 0))
        await store.flush()
        [change] = await store.quiet_changes(time.time() + 11, quiet=2, max_wait=10)
        store.append("doc", text_update("b", 1))  # after the note was read
        await store.flush()
        event = NewEvent("document.changed", "doc", time.time(), b"\x00", 1)
        assert await store.consume_change(change, event)
        # The note stays for the later edit, its wait starting again.
        [later] = await store.quiet_changes(time.time() + 11, quiet=2, max_wait=10)
        assert later.doc == "doc" and later.gen > change.gen
    finally:
        await store.close()


async def test_no_outbox_rows_without_webhooks(backend: Backend) -> None:
    store = await backend.open()
    try:
        store.append("doc", text_update("hello", 0))
        await store.flush()
        assert not await store.events_due(time.time() + 1)
        assert await store.quiet_changes(time.time() + 60, quiet=2, max_wait=10) == []
    finally:
        await store.close()


def state_of(update: bytes) -> bytes:
    doc = Doc()
    doc.apply_update(update)
    return doc.get_state()


# --- version numbers and files (both backends) -------------------------------------------------


async def test_versions_are_numbered_1_to_n_per_document_and_never_renumbered(
    backend: Backend,
) -> None:
    store = await backend.open()
    state = text_update("versioned", 1)
    try:
        a = [await store.save_version("a", state, f"a{i}") for i in range(3)]
        await store.save_version("b", state)
        a.append(await store.save_version("a", state, auto=True))
        await store.save_version("b", state)
        assert [v.number for v in await store.list_versions("a")] == [4, 3, 2, 1]
        assert [v.number for v in await store.list_versions("b")] == [2, 1]
        # Deleting versions (as thinning does) renumbers none, and no number is given twice.
        assert await store.delete_versions("a", [a[1], a[3]]) == 2
        assert [(v.id, v.number) for v in await store.list_versions("a")] == [(a[2], 3), (a[0], 1)]
        newest = await store.save_version("a", state)
        info = await store.version_info("a", newest)
        assert info is not None and info.number == 5 and info.label is None
        found = await store.version("a", a[2])
        assert found is not None and found[0].number == 3 and found[1] == state
        assert await store.version_info("b", newest) is None
        # A document deleted and made again counts from 1.
        await store.delete_document("a")
        again = await store.version_info("a", await store.save_version("a", state))
        assert again is not None and again.number == 1
        assert [v.number for v in await store.list_versions("b")] == [2, 1]
    finally:
        await store.close()


async def _insert_legacy_version(store: BaseStore, doc: str, created_at: float) -> None:
    """A version row as a server before version numbers wrote it."""
    data = text_update(doc, 1)
    if isinstance(store, Store):
        await store._conn.execute(
            "INSERT INTO versions (doc, created_at, label, auto, data, codec, state_bytes) "
            "VALUES (?, ?, NULL, 0, ?, 'none', ?)",
            (doc, created_at, data, len(data)),
        )
        return
    assert isinstance(store, PostgresStore)
    async with store._pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO versions (doc, created_at, label, auto, data, codec, state_bytes) "
            "VALUES ($1, $2, NULL, false, $3, 'none', $4)",
            doc,
            created_at,
            data,
            len(data),
        )


async def test_migration_numbers_the_stored_versions_in_the_order_they_were_saved(
    backend: Backend,
) -> None:
    before_numbers = 6 if backend.kind == "sqlite" else 2
    old = await backend.open(schema_version=before_numbers)
    try:
        # Ids in insertion order, saved times not: the numbers follow the times (then ids).
        for doc, created_at in [("a", 300.0), ("b", 100.0), ("a", 100.0), ("a", 200.0)]:
            await _insert_legacy_version(old, doc, created_at)
        await _insert_legacy_version(old, "a", 200.0)
    finally:
        await old.close()
    store = await backend.open()
    try:
        assert await store.schema_version() == backend.schema_version
        listed = await store.list_versions("a")
        assert [(v.created_at, v.number) for v in listed] == [
            (300.0, 4),
            (200.0, 3),
            (200.0, 2),
            (100.0, 1),
        ]
        assert listed[1].id > listed[2].id  # the tie is broken by id
        assert [v.number for v in await store.list_versions("b")] == [1]
        state = text_update("after", 2)
        later = await store.version_info("a", await store.save_version("a", state))
        first = await store.version_info("c", await store.save_version("c", state))
        assert later is not None and later.number == 5
        assert first is not None and first.number == 1
    finally:
        await store.close()


async def test_two_instances_saving_versions_of_one_document_at_once_get_distinct_numbers(
    pg_backend: Backend,
) -> None:
    a = await pg_backend.open()
    b = await pg_backend.open()
    state = text_update("shared", 3)
    try:
        saves = [store.save_version("doc", state, f"{i}") for i in range(10) for store in (a, b)]
        ids = await asyncio.gather(*saves)
        versions = await b.list_versions("doc")
        assert sorted(v.id for v in versions) == sorted(ids)
        assert sorted(v.number for v in versions) == list(range(1, 21))
        # In the order they were saved.
        by_id = sorted(versions, key=lambda v: v.id)
        assert [v.number for v in by_id] == sorted(v.number for v in by_id)
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_files_are_kept_once_per_document_and_deleted_with_it(backend: Backend) -> None:
    store = await backend.open()
    try:
        stored, new = await store.save_file("doc", "image/png", b"png bytes")
        assert new and FILE_ID.fullmatch(stored.id) and stored.size == len(b"png bytes")
        assert stored.sha256 == hashlib.sha256(b"png bytes").hexdigest()
        again, new = await store.save_file("doc", "image/png", b"png bytes")
        assert not new and again.id == stored.id
        other, new = await store.save_file("other", "image/png", b"png bytes")
        assert new and other.id != stored.id
        full = await store.file("doc", stored.id)
        assert full is not None and full.data == b"png bytes" and full.content_type == "image/png"
        meta = await store.file("doc", stored.id, data=False)
        assert meta is not None and meta.data is None and meta.sha256 == stored.sha256
        assert await store.file("other", stored.id) is None
        assert await store.file("doc", "x" * 22) is None
        store.append("doc", text_update("text", 4))
        await store.flush()
        assert await store.delete_document("doc", tombstone=None)
        assert await store.file("doc", stored.id) is None
        kept = await store.file("other", other.id)
        assert kept is not None and kept.data == b"png bytes"
    finally:
        await store.close()
