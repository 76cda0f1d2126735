"""What a Tandem database holds after a run, counted in the database itself (not from the acks).

Compaction folds the update log into a snapshot, so stored updates cannot be counted as rows: the
stored document is read back through the server's own store (``open_store`` + ``load_document``)
and integrated; each update of the trace is then applied to it in order, and counts as stored
when it changes nothing (the database holds what it inserts and what it deletes). The stored text
is compared with the trace's final text too.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pycrdt import Text, TransactionEvent

from server.integrate import load_doc
from server.storage import StoreError, open_store

from .traces import CONTENT, EncodedTrace


async def _stored_logs(db: Path) -> dict[str, list[bytes]]:
    store = await open_store(db)
    try:
        return {
            info.name: (await store.load_document(info.name)).updates
            for info in await store.list_documents()
        }
    finally:
        await store.close()


def tandem_stored(db: Path, trace: EncodedTrace) -> dict[str, Any]:
    """How many of ``trace``'s updates the one document in ``db`` holds, and whether its text is
    the trace's. Called after the server stopped, from inside the bench's event loop: the store
    is read on a thread of its own."""
    try:
        with ThreadPoolExecutor(1) as pool:
            logs = pool.submit(asyncio.run, _stored_logs(db)).result()
    except StoreError as exc:  # e.g. a baseline's file this checkout cannot read: say so
        return {"stored_updates_after_stop": None, "stored_error": str(exc)}
    if len(logs) != 1:  # W1 writes one document; anything else is not what was measured
        return {"stored_updates_after_stop": None, "stored_documents": len(logs)}
    (updates,) = logs.values()
    doc = load_doc(updates)
    text_matches = str(doc.get(CONTENT, type=Text)) == trace.text
    # Each update of the trace, in order, applied to what is stored: one the database holds
    # (its structs and its deletions) changes nothing, and the Doc reports no transaction.
    changed = False

    def note(_event: TransactionEvent) -> None:
        nonlocal changed
        changed = True

    subscription = doc.observe(note)
    stored = 0
    for update in trace.updates:
        changed = False
        doc.apply_update(update)
        stored += not changed
    doc.unobserve(subscription)
    return {
        "stored_updates_after_stop": stored,
        "stored_percent": round(100 * stored / len(trace.updates), 1),
        "stored_text_matches": text_matches,
    }
