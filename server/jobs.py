"""CPU-heavy work on document states, as pure functions that run in worker processes.

A diff of two large versions, the HTML rendering of a large document or the line diff of a
restore can take seconds of pure Python: on the event loop that would stall every editor of
every document. :mod:`server.workers` runs these in processes of their own, with time limits.
Everything here takes and returns plain, picklable values.
"""

from __future__ import annotations

import difflib
import hashlib
from difflib import SequenceMatcher

from pycrdt import get_state

from .exports import Rendered, indexed_text_of, render, text_of
from .protocol import ProtocolError
from .updates import check_state_vector, check_update

# One step of a restore: replace the UTF-8 byte range [start, end) of the text by ``insert``.
TextEdit = tuple[int, int, str]


def export(
    fmt: str,
    name: str,
    state: bytes,
    version: int | None,
    updated_at: float | None,
) -> Rendered:
    return render(
        fmt, name=name, state=state, version=version, updated_at=updated_at, size_bytes=len(state)
    )


def text(state: bytes) -> str:
    return text_of(state)


def indexed_text(state: bytes) -> str:
    return indexed_text_of(state)


def diff(name: str, before: bytes, after: bytes, label_a: str, label_b: str) -> str:
    """Unified diff of the text of two states."""
    lines = difflib.unified_diff(
        text_of(before).splitlines(keepends=True),
        text_of(after).splitlines(keepends=True),
        fromfile=f"{name} ({label_a})",
        tofile=f"{name} ({label_b})",
    )
    # A last line without a newline gets the standard marker, as diff(1) writes it.
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def editors(before: bytes, after: bytes) -> list[int]:
    """The client ids whose clocks differ between two states: those that added to the
    document between them (a deletion carries no client id of its deleter)."""
    a = check_state_vector(get_state(before))
    b = check_state_vector(get_state(after))
    return sorted(client for client in a.keys() | b.keys() if a.get(client, 0) != b.get(client, 0))


def diff_and_editors(
    name: str, before: bytes, after: bytes, label_a: str, label_b: str
) -> tuple[str, list[int]]:
    """:func:`diff` and :func:`editors` in one job."""
    return diff(name, before, after, label_a, label_b), editors(before, after)


def text_edits(old: str, new: str) -> list[TextEdit]:
    """The line edits that turn ``old`` into ``new``, last first (so earlier offsets stay
    valid while they are applied), as UTF-8 byte offsets (pycrdt indexes text by them; an
    embed, written as NOT_TEXT in both, is one byte too).

    Only the lines that differ are touched, so unchanged text keeps its identity (and the
    embeds in it)."""
    before = old.splitlines(keepends=True)
    after = new.splitlines(keepends=True)
    offsets = [0]
    for line in before:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    edits: list[TextEdit] = []
    ops = SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag != "equal":
            edits.append((offsets[i1], offsets[i2], "".join(after[j1:j2])))
    return edits


def state_digest(state: bytes) -> bytes:
    """Equal for two encodings of the same state: what it holds (each client's clock range)
    and what it deleted (merged ranges), however its items happen to be split."""
    try:
        summary = check_update(state)
    except ProtocolError:  # a state stored before the strict reading: its bytes, then
        return hashlib.sha256(b"raw:" + state).digest()
    merged: dict[int, list[tuple[int, int]]] = {}
    for client, start, end in sorted(summary.deletes):
        ranges = merged.setdefault(client, [])
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
        else:
            ranges.append((start, end))
    digest = hashlib.sha256()
    digest.update(repr(sorted(summary.structs)).encode())
    digest.update(repr(sorted(merged.items())).encode())
    return digest.digest()
