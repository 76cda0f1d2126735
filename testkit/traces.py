"""Real editing traces (testkit/data, CC BY 4.0, see its README) replayed into pycrdt updates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

DATA = Path(__file__).resolve().parent / "data"
SVELTE = DATA / "sveltecomponent.json.gz"


def load_trace(path: Path = SVELTE) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def trace_updates(path: Path = SVELTE, limit: int | None = None) -> tuple[list[bytes], str]:
    """One Yjs update per transaction of the trace, and the text they produce."""
    trace = load_trace(path)
    txns = trace["txns"][:limit] if limit is not None else trace["txns"]
    doc = Doc()
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for txn in txns:
        with doc.transaction():
            for pos, delete, insert in txn["patches"]:
                if delete:
                    del text[pos : pos + delete]
                if insert:
                    text.insert(pos, insert)
    doc.unobserve(sub)
    result = str(text)
    if limit is None:
        assert result == trace["endContent"], "trace replay diverged"
    return updates, result
