"""Real editing traces (/work/shared/traces, CC BY 4.0: Joseph Gentle's editing-traces;
automerge-paper recorded by Martin Kleppmann) turned into Yjs updates once, then cached.

One update per transaction, produced by pycrdt exactly as an editor would send them; the
cache (bench/.cache, git-ignored) keeps a second run from spending ~20 s re-encoding.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from pycrdt import Doc, Text

TRACES = Path(os.environ.get("TANDEM_TRACES", "/work/shared/traces"))
CACHE = Path(__file__).resolve().parent / ".cache"
CONTENT = "content"


@dataclass(frozen=True)
class EncodedTrace:
    name: str
    updates: list[bytes]  # one Yjs update per transaction, in trace order
    text: str  # the text they produce
    state: bytes  # the merged document: Doc.get_update() after all of them

    @property
    def update_bytes(self) -> int:
        return sum(map(len, self.updates))


def _encode(path: Path, limit: int | None) -> tuple[list[bytes], str, bytes]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        trace = json.load(fh)
    txns = trace["txns"] if limit is None else trace["txns"][:limit]
    doc = Doc()
    text = doc.get(CONTENT, type=Text)
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
    if limit is None or limit >= len(trace["txns"]):
        assert result == trace["endContent"], f"{path.name}: replay diverged"
    return updates, result, doc.get_update()


def _write_blobs(path: Path, blobs: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for blob in blobs:
            fh.write(struct.pack("<I", len(blob)))
            fh.write(blob)
    tmp.replace(path)


def _read_blobs(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def load(name: str, limit: int | None = None) -> EncodedTrace:
    """The trace ``name`` (e.g. ``rustcode``) as updates, at most ``limit`` transactions."""
    source = TRACES / f"{name}.json.gz"
    key = f"{name}-{limit or 'all'}-pycrdt{version('pycrdt')}"
    cached = CACHE / f"{key}.bin"
    if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
        blobs = _read_blobs(cached)
        return EncodedTrace(name, blobs[2:], blobs[0].decode(), blobs[1])
    updates, text, state = _encode(source, limit)
    CACHE.mkdir(exist_ok=True)
    _write_blobs(cached, [text.encode(), state, *updates])
    return EncodedTrace(name, updates, text, state)


def text_of(updates: list[bytes]) -> str:
    """The content text after applying ``updates`` in order to a fresh document."""
    doc = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return str(doc.get(CONTENT, type=Text))
