"""Real editing traces (/work/shared/traces, CC BY 4.0: Joseph Gentle's editing-traces;
automerge-paper recorded by Martin Kleppmann) turned into Yjs updates once, then cached.

One update per transaction, produced by pycrdt exactly as an editor would send them; the
cache (bench/.cache, git-ignored) keeps a second run from spending ~20 s re-encoding.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from pycrdt import Text

from server.integrate import load_doc
from testkit.traces import trace_updates

# The team folder sits beside the repository (../shared), in CI as on a developer's machine.
TRACES = Path(
    os.environ.get("TANDEM_TRACES", Path(__file__).resolve().parents[2] / "shared" / "traces")
)
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
    updates, text = trace_updates(path, limit)
    return updates, text, load_doc(updates).get_update()


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
    return str(load_doc(updates).get(CONTENT, type=Text))
