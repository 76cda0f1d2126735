"""The first update of a copy of a document (``POST /api/docs/{name}/duplicate``): the source's
current state under new Yjs client ids. Pure: bytes in, bytes out; it runs in the workers.

Why new client ids: a document's tombstone (:mod:`server.documents`, ``delete``) is the state
vector of everything it held, and a client holding items of any client in it is refused for
good (4410). A copy that kept the source's client ids would share them with the source, so
deleting the copy and copying the source again to the same name (or copying the copy back over a
deleted source) would make the new document refuse every client of its own. Under new ids the
copy shares nothing with the source: each can be deleted, and re-made, without the other
noticing.

The renaming keeps everything else byte for byte (clocks, content, what each item points at),
and keeps the clients in the same order: Yjs and yrs order concurrent insertions at one place by
client id, so an order-preserving renaming integrates into exactly the same document. The new
ids are random 32-bit numbers, as Yjs's own are; which old id became which new one is returned
too, so that who wrote what (the authors map, per client id) can follow the copy.

Links to the source's files (images: ``/api/docs/{source}/files/{id}``) are pointed at the
copy's own files in the same update, so the copy keeps its images when the source is deleted.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from typing import NamedTuple

from pycrdt import Doc, Text

from .contract import CONTENT_TEXT
from .exports import indexed_text, text_of
from .panics import CrdtFailures
from .protocol import write_var_uint
from .storage.base import FILE_ID
from .updates import check_update

# The V1 update format (the same constants as server/updates.py's strict reader).
_GC = 0
_SKIP = 10
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_CONTENT_REF_MASK = 0x1F
_TYPE_XML_ELEMENT = 3
_TYPE_XML_HOOK = 5
# A new client id: 32 random bits, as Yjs makes them (below 2^53 for JavaScript either way).
_ID_BITS = 32
_UNREADABLE = CrdtFailures(lambda exc: ValueError(f"pycrdt cannot integrate it: {exc}"))


class CopiedState(NamedTuple):
    """A copy's first update, and which client id of the source became which in it."""

    update: bytes
    clients: dict[int, int]


# --- where an update names its clients ---------------------------------------------------------


def _uint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _skip_raw(buf: bytes, pos: int) -> int:
    length, pos = _uint(buf, pos)
    if pos + length > len(buf):
        raise IndexError("length runs past the end")
    return pos + length


def _skip_any(buf: bytes, pos: int) -> int:
    """Past one lib0 "any" value."""
    tag = buf[pos]
    pos += 1
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return pos
    if tag == 125:  # varInt
        first = buf[pos]
        pos += 1
        return _uint(buf, pos)[1] if first & 0x80 else pos
    if tag == 124:  # float32
        return pos + 4
    if tag in (123, 122):  # float64, BigInt
        return pos + 8
    if tag in (119, 116):  # string, Uint8Array
        return _skip_raw(buf, pos)
    if tag == 118:  # object
        count, pos = _uint(buf, pos)
        for _ in range(count):
            pos = _skip_any(buf, _skip_raw(buf, pos))
        return pos
    if tag == 117:  # array
        count, pos = _uint(buf, pos)
        for _ in range(count):
            pos = _skip_any(buf, pos)
        return pos
    raise ValueError(f"unknown value tag {tag}")


def _skip_content(buf: bytes, pos: int, ref: int) -> int:
    if ref == 4 or ref == 3 or ref == 5:  # string, binary, embed (a JSON string)
        return _skip_raw(buf, pos)
    if ref == 1:  # deleted: a length
        return _uint(buf, pos)[1]
    if ref == 6:  # format: key, JSON value
        return _skip_raw(buf, _skip_raw(buf, pos))
    if ref == 7:  # type
        type_ref, pos = _uint(buf, pos)
        return _skip_raw(buf, pos) if type_ref in (_TYPE_XML_ELEMENT, _TYPE_XML_HOOK) else pos
    if ref == 8:  # any: a count of values
        count, pos = _uint(buf, pos)
        for _ in range(count):
            pos = _skip_any(buf, pos)
        return pos
    if ref == 2:  # JSON: a count of strings
        count, pos = _uint(buf, pos)
        for _ in range(count):
            pos = _skip_raw(buf, pos)
        return pos
    raise ValueError(f"content ref {ref} cannot be copied")  # subdocuments (9), unknown refs


def client_spans(update: bytes) -> list[tuple[int, int, int]]:
    """Every place a V1 update names a client, as ``(start, end, client)`` byte ranges: each
    group of structs, each ID an item points at (origin, right origin, parent) and each entry
    of the delete set. Raises ValueError for an update it cannot read."""
    buf = update
    spans: list[tuple[int, int, int]] = []

    def client_at(pos: int) -> int:
        client, end = _uint(buf, pos)
        spans.append((pos, end, client))
        return end

    try:
        groups, pos = _uint(buf, 0)
        for _ in range(groups):
            count, pos = _uint(buf, pos)
            pos = client_at(pos)
            _clock, pos = _uint(buf, pos)
            for _ in range(count):
                info = buf[pos]
                pos += 1
                if info == _GC or info == _SKIP:
                    pos = _uint(buf, pos)[1]
                    continue
                if info & _HAS_ORIGIN:
                    pos = _uint(buf, client_at(pos))[1]
                if info & _HAS_RIGHT_ORIGIN:
                    pos = _uint(buf, client_at(pos))[1]
                if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
                    parent, pos = _uint(buf, pos)
                    pos = _skip_raw(buf, pos) if parent == 1 else _uint(buf, client_at(pos))[1]
                    if info & _HAS_PARENT_SUB:
                        pos = _skip_raw(buf, pos)
                pos = _skip_content(buf, pos, info & _CONTENT_REF_MASK)
        entries, pos = _uint(buf, pos)
        for _ in range(entries):
            pos = client_at(pos)
            ranges, pos = _uint(buf, pos)
            for _ in range(ranges):
                pos = _uint(buf, _uint(buf, pos)[1])[1]
    except IndexError:
        raise ValueError("truncated update") from None
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} trailing bytes")
    return spans


def client_ids(update: bytes) -> set[int]:
    """Every client a V1 update names (its structs', what they point at, its deletions')."""
    return {client for _start, _end, client in client_spans(update)}


def rename_clients(update: bytes, renamed: Mapping[int, int]) -> bytes:
    """``update`` with each client id ``c`` written as ``renamed[c]`` (every id it names must be
    in ``renamed``), everything else as it was."""
    parts: list[bytes] = []
    last = 0
    for start, end, client in client_spans(update):
        parts.append(update[last:start])
        parts.append(write_var_uint(renamed[client]))
        last = end
    parts.append(update[last:])
    return b"".join(parts)


def _new_id(avoid: Collection[int]) -> int:
    while True:
        candidate = secrets.randbits(_ID_BITS)
        if candidate not in avoid:
            return candidate


def fresh_ids(clients: Collection[int], avoid: Collection[int] = ()) -> dict[int, int]:
    """A new random id for each of ``clients``, none of them a client or in ``avoid``, in the
    same order as the old ones (the lowest old id gets the lowest new one)."""
    taken = set(clients) | set(avoid)
    chosen: set[int] = set()
    while len(chosen) < len(clients):
        chosen.add(_new_id(taken))
    return dict(zip(sorted(clients), sorted(chosen), strict=True))


# --- the copy ----------------------------------------------------------------------------------

# What may follow a file id in a link that names exactly that file.
_ID_ENDS = "(?![A-Za-z0-9_-])"


def linked_files(state: bytes, prefix: str) -> list[str]:
    """The ids of the files the text of ``state`` links to under ``prefix`` (the source's
    ``/api/docs/{name}/files/``)."""
    link = re.compile(re.escape(prefix) + f"({FILE_ID.pattern}){_ID_ENDS}")
    return sorted({match.group(1) for match in link.finditer(text_of(state))})


def _relink(doc: Doc, links: Mapping[str, str]) -> None:
    """Replace each of ``links`` (old path → new path) in ``content``, as one edit of the
    doc's own client."""
    try:
        text = doc.get(CONTENT_TEXT, type=Text)
    except (TypeError, ValueError):
        return  # `content` is another type in this (third-party) document: no links to mend
    indexed = indexed_text(text)
    olds = "|".join(re.escape(old) for old in sorted(links, key=len, reverse=True))
    pattern = re.compile(f"(?:{olds}){_ID_ENDS}")
    # pycrdt indexes text by UTF-8 bytes (an embed, NOT_TEXT, is one byte as well).
    edits: list[tuple[int, int, str]] = []
    offset = 0
    last = 0
    for match in pattern.finditer(indexed):
        offset += len(indexed[last : match.start()].encode("utf-8"))
        end = offset + len(match.group().encode("utf-8"))
        edits.append((offset, end, links[match.group()]))
        offset, last = end, match.end()
    if not edits:
        return
    with doc.transaction(origin="tandem-copy"):
        for start, end, new in reversed(edits):
            del text[start:end]
            text.insert(start, new)


def copy_state(
    state: bytes, avoid: Collection[int] = (), links: Mapping[str, str] | None = None
) -> CopiedState:
    """The first update of a copy of ``state`` (a full state): what it holds (what waits for
    missing dependencies is left out), with ``links`` replaced in its text, under new client ids
    none of which is in ``avoid`` (the target's tombstone) or the source's. Raises ValueError
    for a state that cannot be copied."""
    # The server's own edit (the links) is made by a client of neither document.
    editor = _new_id(client_ids(state) | set(avoid))
    with _UNREADABLE:  # a state pycrdt cannot integrate (its panics included)
        doc = Doc(client_id=editor)
        doc.apply_update(state)
        if links:
            _relink(doc, links)
        whole = doc.get_update()
    clients = client_ids(whole)
    renamed = fresh_ids(clients, set(avoid) | clients | {editor})
    update = rename_clients(whole, renamed)
    # The same structs and deletions under the new names, or no copy at all.
    before, after = check_update(whole), check_update(update)
    if sorted((renamed[c], s, e) for c, s, e in before.structs) != sorted(after.structs) or sorted(
        (renamed[c], s, e) for c, s, e in before.deletes
    ) != sorted(after.deletes):
        raise ValueError("the renamed state does not hold what the source holds")
    return CopiedState(update, {old: new for old, new in renamed.items() if old != editor})
