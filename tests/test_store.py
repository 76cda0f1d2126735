"""The SQLite store on real files: append/load, group commit, compaction, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pycrdt import Doc, Text

from server.storage import StoreError
from server.storage.sqlite import SQLiteStore as Store
from server.storage.sqlite_schema import SCHEMA_VERSION
from server.storage.writer import MAX_BATCH_APPENDS
from testkit.traces import load_trace, trace_updates


def doc_from(updates: list[bytes]) -> Doc:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


async def test_appended_updates_load_back_in_order(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.db")
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


async def test_appends_queued_together_share_one_commit(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.db")
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
    tmp_path: Path,
) -> None:
    """A client replaying a long log must not make one giant transaction (the WAL would hold
    all of it, and no ack would go out before the very end)."""
    store = await Store.open(tmp_path / "t.db", compact_updates=10**9, compact_bytes=10**12)
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
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "t.db", compact_updates=100)
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


async def test_compaction_of_a_real_trace_keeps_the_document_identical(tmp_path: Path) -> None:
    updates, text = trace_updates()
    assert text == load_trace()["endContent"]
    plain = await Store.open(tmp_path / "plain.db", compact_updates=10**9, compact_bytes=10**12)
    compacted = await Store.open(tmp_path / "compact.db", compact_updates=500)
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
    tmp_path: Path,
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    text += "first "
    text += "second"
    store = await Store.open(tmp_path / "t.db")
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
    tmp_path: Path,
) -> None:
    source = Doc()
    text = source.get("content", type=Text)
    produced: list[bytes] = []
    source.observe(lambda event: produced.append(event.update))
    for i in range(10):
        text += f"line {i}\n"
    store = await Store.open(tmp_path / "t.db")
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
