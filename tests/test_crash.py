"""kill -9 while writers in several rooms are being acked, versions are being saved and the store
compacts every few updates: every acked edit survives, in order, exactly once; every acked version
is listed and every listed version loads; the file passes ``PRAGMA integrity_check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.crashloop import Settings, failures, run_cycles, summarise

pytestmark = pytest.mark.crash

SHORT = Settings(rooms=3, clients=6, versions_per_s=8.0, compact_updates=10, compact_bytes=256)


async def test_nothing_acked_is_lost_across_sigkills_in_compactions_and_versions(
    tmp_path: Path,
) -> None:
    run = await run_cycles(tmp_path / "crash.db", cycles=12, seed=2026, settings=SHORT)
    summary = summarise(run)
    print("crash cycles:", summary)
    # The server under test is this checkout's.
    assert run.server_file == str(Path(__file__).resolve().parents[1] / "server" / "__init__.py")
    assert failures(run) == []
    assert summary["rooms"] == 12 * 3
    assert summary["edits_acked"] > 0
    # The kills landed among compactions and version saves, not in a quiet store.
    assert summary["compactions_committed"] > 0
    assert summary["versions_acked"] > 0
    assert summary["final_check"]["rooms"] == 12 * 3
