"""kill -9 while a writer is being acked: every acked edit survives, in order, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.crashloop import run_cycles, summarise

pytestmark = pytest.mark.crash


async def test_no_acked_edit_is_lost_across_50_sigkills(tmp_path: Path) -> None:
    results = await run_cycles(tmp_path / "crash.db", cycles=50, seed=2026)
    summary = summarise(results)
    print("crash cycles:", summary)
    assert summary["edits_acked"] > 0
    assert summary["acked_edits_lost"] == 0, [r for r in results if r.lost]
    assert summary["unordered_or_duplicated_cycles"] == 0, [r for r in results if not r.ordered]
    assert summary["integrity_failures"] == 0
