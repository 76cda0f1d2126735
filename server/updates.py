"""A strict reader of the Yjs V1 update format: what yrs (pycrdt) and Yjs read alike, or nothing.

Pure and bounds-checked: bytes in, a summary out, :class:`ProtocolError` (1007) for anything
else. The server applies an update to its pycrdt document only after this check, because yrs and
Yjs do not read every update the same way, and a server that stores what yrs accepts can hold a
document no browser can load, or one that differs from what the editors see:

- yrs keeps clocks and lengths in 32 bits (it wraps larger ones): a struct or a deletion may not
  reach 2^32. JavaScript keeps client ids as safe integers: at most 2^53 - 1.
- yrs takes the content ref from the info byte's low 4 bits, Yjs from its low 5: only the refs
  both know and read the same way pass: deleted (1), binary (3), string (4), embed (5), format
  (6), type (7), any (8). JSON (2) is read with one string more by yrs; subdocuments (9) are not
  served; GC (0) and skip (10) must be their bare info byte (yrs matches the whole byte).
- Type refs: array, map, text, XML element, fragment and text (0-4, 6). yrs knows more (weak
  links, subdocuments) that make every Yjs client fail; an XML hook (5) carries a name Yjs reads
  and yrs does not.
- A client's structs come in one group, a client's deletions in one entry: Yjs keeps the last
  group of a client, yrs appends them (and keeps the last deletion entry where Yjs merges).
- Nothing empty: a struct, a deletion range or a group of length 0 is not something either
  writes, and they disagree on keeping it.
- Strings are strict UTF-8 (their length in clocks is their UTF-16 length, as both count it).
  Embedded JSON is strict (no NaN, Infinity, lone surrogates, integers past 2^53, nesting past
  64); "any" values know only lib0's tags (120-127), nest at most 64 deep, hold no key
  ``__proto__`` (JavaScript would set the object's prototype instead, as it would for a map key
  or a format key ``__proto__``: refused too) and no integer past 2^53. No BigInt (tag 122)
  either: yrs reads it but writes it back as a plain number (rounded past 2^53), so the next
  browser to load the document would get another value, of another type.
- An item points (origin, right origin, parent) only at what existed before it: of its own
  client, only at clocks below its own. Yjs never writes another and throws reading one
  ("Unexpected case" or a TypeError, halfway through the update) where yrs integrates it.
- A map entry (an item with the key flag) holds "any" values, binary, a type or nothing
  (deleted): never a string, an embed or a format. Yjs never writes one; reading one, Yjs keeps
  a string's last character where yrs keeps the whole string, and pycrdt fails on a format.
- Every count is bounded by the bytes left, so a forged count can make neither side allocate.

What no update alone shows is out of reach here (it depends on the document): an origin or a
deletion cutting an astral character in two, origins in two lists, clocks forged over what the
document holds, a struct after a gap (yrs integrates it, Yjs waits), a pending item whose
parent turns out to be no type. tests/test_differential.py pins each as a known divergence.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

from .contract import CloseCode
from .protocol import ProtocolError, write_var_uint

# Both sides keep clocks in 32 bits: a struct's clock plus its length stays below this.
CLOCK_LIMIT = 2**32
# JavaScript clients keep client ids (and lib0 integers) as safe integers.
MAX_CLIENT_ID = 2**53 - 1
MAX_SAFE_INTEGER = 2**53 - 1
# Nesting of "any" values and embedded JSON.
MAX_DEPTH = 64

_GC = 0
_SKIP = 10
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_CONTENT_REF_MASK = 0x1F
# Content refs read alike by both: deleted, binary, string, embed, format, type, any.
_DELETED, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY = 1, 3, 4, 5, 6, 7, 8
_TYPE_XML_ELEMENT = 3
_TYPE_REFS = frozenset((0, 1, 2, 3, 4, 6))
_CONTENT_NAMES = {0: "GC with flags", 2: "JSON", 9: "subdocument", 10: "skip with flags"}

# The empty update: no structs, no deletions.
EMPTY_UPDATE = b"\x00\x00"


class UpdateSummary(NamedTuple):
    """What an update touches: ``structs`` as ``(client, start clock, end clock)`` per client,
    ``deletes`` as ``(client, start clock, end clock)`` per deleted range, ``refs``: for each
    client another struct points into (origin, right origin, parent), the highest clock it
    points at, and ``skips``: for each client whose structs hold a skip (a range the update
    does not carry), where its last skip ends."""

    structs: list[tuple[int, int, int]]
    deletes: list[tuple[int, int, int]]
    refs: dict[int, int]
    skips: dict[int, int]

    @property
    def empty(self) -> bool:
        return not self.structs and not self.deletes


_EMPTY_SUMMARY = UpdateSummary([], [], {}, {})


class _Reject(ProtocolError):
    def __init__(self, message: str) -> None:
        super().__init__(f"update refused: {message}", CloseCode.invalidPayload)


def check_update(update: bytes) -> UpdateSummary:
    """Read a whole V1 update; return its summary or raise :class:`ProtocolError` (1007)."""
    if update == EMPTY_UPDATE:
        return _EMPTY_SUMMARY
    try:
        typed = _typed(update)
    except IndexError:  # short of what a keystroke would be: the full reading says what
        typed = None
    try:
        return typed or _update(update)
    except IndexError:  # every read past the end lands here
        raise _Reject("truncated") from None


def _typed(buf: bytes) -> UpdateSummary | None:
    """The update a keystroke makes, read at a glance: nothing but deletions, or one string
    item after (and maybe before) items of its own client, with deletions of one client or
    none. Anything else, or anything in it the full reading would look at twice, is left to
    :func:`_update` (None); what this accepts, that accepts alike, with the same summary
    (tests/test_updates.py checks it)."""
    groups = buf[0]
    if groups == 0:
        return _typed_deletes(buf, 1, [], {})
    if groups != 1 or buf[1] != 1 or len(buf) < 8:
        return None
    pos = 2
    while buf[pos] >= 0x80:  # the client id: kept as bytes, its items are compared by them
        pos += 1
        if pos > 9:
            return None
    pos += 1
    raw_client = buf[2:pos]
    # A clock of at most 4 bytes: below 2^28, so clock + length is below 2^32.
    clock, pos = _short_uint(buf, pos)
    if clock < 0:
        return None
    info = buf[pos]
    pos += 1
    if info == 0x84:
        refs = 1
    elif info == 0xC4:
        refs = 2
    elif info == 0x44:
        refs = 1
    else:
        return None
    highest = -1
    for _ in range(refs):
        if not buf.startswith(raw_client, pos):
            return None  # another client's item: the full reading
        ref, pos = _short_uint(buf, pos + len(raw_client))
        if ref < 0 or ref >= clock:
            return None  # it points at itself or later: refused by the full reading
        if ref > highest:
            highest = ref
    length = buf[pos]
    pos += 1
    end = pos + length
    if length == 0 or length >= 0x80 or end >= len(buf):
        return None
    raw = buf[pos:end]
    if not raw.isascii():
        try:
            length = len(raw.decode("utf-8").encode("utf-16-le")) // 2
        except UnicodeDecodeError:
            return None
    client = _client_ids.get(raw_client) or _decode_client(raw_client)
    if client is None:
        return None
    return _typed_deletes(buf, end, [(client, clock, clock + length)], {client: highest})


def _typed_deletes(
    buf: bytes, pos: int, structs: list[tuple[int, int, int]], refs: dict[int, int]
) -> UpdateSummary | None:
    """The rest of :func:`_typed`: no deletions, or a few ranges of one client, to the end."""
    last = len(buf) - 1
    count = buf[pos]
    if count == 0:
        return UpdateSummary(structs, [], refs, {}) if pos == last else None
    if count != 1 or pos >= last:
        return None
    pos += 1
    start = pos
    while buf[pos] >= 0x80:
        pos += 1
        if pos - start > 7:
            return None
    pos += 1
    raw_client = buf[start:pos]
    client = _client_ids.get(raw_client) or _decode_client(raw_client)
    ranges = buf[pos]
    pos += 1
    if client is None or ranges == 0 or ranges >= 0x20:
        return None
    deletes: list[tuple[int, int, int]] = []
    for _ in range(ranges):
        clock, pos = _short_uint(buf, pos)
        length, pos = _short_uint(buf, pos)
        if clock < 0 or length <= 0:
            return None
        deletes.append((client, clock, clock + length))
    if pos != len(buf):
        return None
    return UpdateSummary(structs, deletes, refs, {})


def _short_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """A varUint of at most 4 bytes (below 2^28), or (-1, pos) for a longer one."""
    value = buf[pos]
    pos += 1
    if value < 0x80:
        return value, pos
    value &= 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            return -1, pos


# Client ids of the keystroke path, by their bytes (a few hundred writers are typical; the
# cache starts over beyond that).
_client_ids: dict[bytes, int] = {}
_CACHED_CLIENT_IDS = 4096


def _decode_client(raw: bytes) -> int | None:
    value = 0
    shift = 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        shift += 7
    if value > MAX_CLIENT_ID:
        return None
    if len(_client_ids) >= _CACHED_CLIENT_IDS:
        _client_ids.clear()
    _client_ids[raw] = value
    return value


def check_state_vector(state_vector: bytes) -> dict[int, int]:
    """A client's state vector, within the same bounds: ``{client: clock}``."""
    try:
        count, pos = _count(state_vector, 0)
        clocks: dict[int, int] = {}
        for _ in range(count):
            client, pos = _uint(state_vector, pos)
            clock, pos = _uint(state_vector, pos)
            if clock >= CLOCK_LIMIT:
                raise _Reject(f"state vector clock {clock} is not below 2^32")
            clocks[client] = clock
    except IndexError:
        raise _Reject("truncated state vector") from None
    _end(state_vector, pos)
    return clocks


def encode_state_vector(clocks: dict[int, int]) -> bytes:
    """``{client: clock}`` as a V1 state vector (clients in descending order, as Yjs writes)."""
    parts = [write_var_uint(len(clocks))]
    for client in sorted(clocks, reverse=True):
        parts.append(write_var_uint(client))
        parts.append(write_var_uint(clocks[client]))
    return b"".join(parts)


# --- primitives: (bytes, position) in, (value, next position) out; a read past the end raises
# IndexError, which the entry points turn into a refusal.


def _uint(buf: bytes, pos: int) -> tuple[int, int]:
    """A lib0 varUint of at most 8 bytes (53 bits)."""
    byte = buf[pos]
    if byte < 0x80:  # the common case
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 49:
            raise _Reject("integer longer than 8 bytes")
    if value > MAX_SAFE_INTEGER:
        raise _Reject("integer past 2^53")
    return value, pos + 1


def _client(buf: bytes, pos: int, seen: list[tuple[bytes, int]]) -> tuple[int, int]:
    """A client id. An update names the same few clients again and again (7-8 bytes each):
    a varUint is self-delimiting, so the bytes of one already read match it exactly."""
    for raw, value in seen:
        if buf.startswith(raw, pos):
            return value, pos + len(raw)
    value, end = _uint(buf, pos)
    seen.append((buf[pos:end], value))
    return value, end


def _count(buf: bytes, pos: int) -> tuple[int, int]:
    """A count of things that each take at least one byte: never more than the bytes left."""
    value, pos = _uint(buf, pos)
    if value > len(buf) - pos:
        raise _Reject(f"count {value} exceeds the bytes left")
    return value, pos


def _raw(buf: bytes, pos: int) -> tuple[bytes, int]:
    """A length-prefixed byte string."""
    length, pos = _uint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise _Reject("length runs past the end")
    return buf[pos:end], end


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _raw(buf, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise _Reject("string is not UTF-8") from None


def _end(buf: bytes, pos: int) -> None:
    if pos != len(buf):
        raise _Reject(f"{len(buf) - pos} trailing bytes")


# --- the update ---------------------------------------------------------------------------------


def _update(buf: bytes, layout: list[_Group] | None = None) -> UpdateSummary:
    """Read ``buf``; with ``layout``, also record where each struct lies (for splitting)."""
    uint = _uint
    client_id = _client
    clients: list[tuple[bytes, int]] = []
    structs: list[tuple[int, int, int]] = []
    # With a layout: the IDs the current struct points at.
    points: list[tuple[int, int]] | None = [] if layout is not None else None
    refs: dict[int, int] = {}
    skips: dict[int, int] = {}
    groups, pos = _count(buf, 0)
    for _ in range(groups):
        count, pos = _count(buf, pos)
        if count == 0:
            raise _Reject("a group of no structs")
        client, pos = client_id(buf, pos, clients)
        for seen, _start, _end_clock in structs:
            if seen == client:
                raise _Reject(f"client {client} has two groups of structs")
        start, pos = uint(buf, pos)
        clock = start
        placed: list[_Struct] | None = None
        if layout is not None:
            placed = []
            layout.append(_Group(client, placed))
        for _ in range(count):
            struct_at = pos
            info = buf[pos]
            pos += 1
            if info == _GC or info == _SKIP:
                length, pos = uint(buf, pos)
                if length == 0:
                    raise _Reject("a struct of length 0")
                if info == _SKIP:
                    skips[client] = clock + length
            else:
                ref = info & _CONTENT_REF_MASK
                # What an item points at (origin, right origin, parent) was there before it:
                # of its own client, only clocks below its own. Yjs fails on any other.
                if info & _HAS_ORIGIN:
                    pos = _pointer(buf, pos, clients, client, clock, refs, points)
                if info & _HAS_RIGHT_ORIGIN:
                    pos = _pointer(buf, pos, clients, client, clock, refs, points)
                if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
                    parent, pos = uint(buf, pos)
                    if parent == 1:
                        _name, pos = _string(buf, pos)  # a root type, by name
                    elif parent == 0:  # a nested type, by the ID of the item holding it
                        pos = _pointer(buf, pos, clients, client, clock, refs, points)
                    else:
                        raise _Reject(f"parent info {parent}")
                    if info & _HAS_PARENT_SUB:
                        key, pos = _string(buf, pos)
                        if key == "__proto__":
                            raise _Reject("map key __proto__")
                if info & _HAS_PARENT_SUB and (ref == _STRING or ref == _EMBED or ref == _FORMAT):
                    # A map value is "any", binary or a type: Yjs reads the last character of
                    # a string there, yrs the whole string, and pycrdt fails on a format.
                    raise _Reject("a map entry holding text, an embed or a format")
                if ref == _STRING:  # by far the most common: typed text
                    length, pos = uint(buf, pos)
                    end = pos + length
                    if end > len(buf):
                        raise _Reject("length runs past the end")
                    raw = buf[pos:end]
                    pos = end
                    if raw.isascii():
                        if length == 0:
                            raise _Reject("an empty string")
                    else:
                        try:
                            text = raw.decode("utf-8")
                        except UnicodeDecodeError:
                            raise _Reject("string is not UTF-8") from None
                        # Yjs counts UTF-16 code units, and so do yrs's clocks.
                        length = len(text.encode("utf-16-le")) // 2
                elif ref == _DELETED:
                    length, pos = uint(buf, pos)
                    if length == 0:
                        raise _Reject("deleted content of length 0")
                else:
                    reader = _CONTENT_READERS.get(ref)
                    if reader is None:
                        name = _CONTENT_NAMES.get(ref, str(ref))
                        raise _Reject(f"content ref {name} is not read alike by yrs and Yjs")
                    length, pos = reader(buf, pos)
            if placed is not None and points is not None:
                placed.append(_Struct(clock, clock + length, struct_at, pos, info == _SKIP, points))
                points = []
            clock += length
        if clock >= CLOCK_LIMIT:
            raise _Reject(f"client {client} reaches clock {clock}, not below 2^32")
        structs.append((client, start, clock))
    for ref_client, ref_clock in refs.items():
        if ref_clock >= CLOCK_LIMIT or ref_client > MAX_CLIENT_ID:
            raise _Reject(f"reference to clock {ref_clock}, not below 2^32")
    deletes, pos = _delete_set(buf, pos, clients)
    _end(buf, pos)
    return UpdateSummary(structs, deletes, refs, skips)


def _pointer(
    buf: bytes,
    pos: int,
    clients: list[tuple[bytes, int]],
    client: int,
    clock: int,
    refs: dict[int, int],
    points: list[tuple[int, int]] | None,
) -> int:
    """An ID the item ``client:clock`` points at (origin, right origin, parent): it must be
    there before it (of its own client, a lower clock: Yjs fails on any other)."""
    ref_client, pos = _client(buf, pos, clients)
    ref_clock, pos = _uint(buf, pos)
    if ref_client == client and ref_clock >= clock:
        raise _Reject(f"item {client}:{clock} points at itself or later")
    if refs.get(ref_client, -1) < ref_clock:
        refs[ref_client] = ref_clock
    if points is not None:
        points.append((ref_client, ref_clock))
    return pos


class _Struct(NamedTuple):
    start: int
    end: int
    byte_start: int
    byte_end: int
    skip: bool
    points: list[tuple[int, int]]


class _Group(NamedTuple):
    client: int
    structs: list[_Struct]


def split_ready(update: bytes, clocks: dict[int, int]) -> tuple[bytes | None, bytes | None]:
    """Split an update into what a document with state vector ``clocks`` can take now and what
    must wait, as Yjs splits it: each client's structs go in up to the first that follows a
    gap or points at something neither the document nor the taken part has; that one and the
    rest of its client's wait. The deletions go with the part taken now. Returns (taken now,
    waiting), each as an update of its own (None when empty)."""
    layout: list[_Group] = []
    try:
        _update(update, layout)
    except IndexError:
        raise _Reject("truncated") from None
    covered = dict(clocks)
    taken = [0] * len(layout)
    progress = True
    while progress:  # one client's structs may wait for another's taken later
        progress = False
        for g, group in enumerate(layout):
            structs = group.structs
            while taken[g] < len(structs):
                struct = structs[taken[g]]
                known = covered.get(group.client, 0)
                if struct.skip or struct.start > known:
                    break
                if any(clock >= covered.get(client, 0) for client, clock in struct.points):
                    break
                if struct.end > known:
                    covered[group.client] = struct.end
                taken[g] += 1
                progress = True
    now = [(group, group.structs[: taken[g]]) for g, group in enumerate(layout)]
    later = []
    for g, group in enumerate(layout):
        rest = group.structs[taken[g] :]
        while rest and rest[0].skip:  # a leading gap marker: the rest starts after it
            rest = rest[1:]
        later.append((group, rest))
    deletes_at = layout[-1].structs[-1].byte_end if layout and layout[-1].structs else 0
    if not layout:
        deletes_at = _count(update, 0)[1]
    deletes = update[deletes_at:]
    first = _encode_groups(update, now, deletes)
    second = _encode_groups(update, later, EMPTY_DELETE_SET)
    return (
        None if first == EMPTY_UPDATE else first,
        None if second == EMPTY_UPDATE else second,
    )


EMPTY_DELETE_SET = b"\x00"


def _encode_groups(
    update: bytes, groups: list[tuple[_Group, list[_Struct]]], deletes: bytes
) -> bytes:
    parts = []
    kept = [(group, structs) for group, structs in groups if structs]
    parts.append(write_var_uint(len(kept)))
    for group, structs in kept:
        parts.append(write_var_uint(len(structs)))
        parts.append(write_var_uint(group.client))
        parts.append(write_var_uint(structs[0].start))
        for struct in structs:
            parts.append(update[struct.byte_start : struct.byte_end])
    parts.append(deletes)
    return b"".join(parts)


def _delete_set(
    buf: bytes, pos: int, clients: list[tuple[bytes, int]]
) -> tuple[list[tuple[int, int, int]], int]:
    count, pos = _count(buf, pos)
    if count == 0:
        return [], pos
    deletes: list[tuple[int, int, int]] = []
    seen: set[int] = set()
    for _ in range(count):
        client, pos = _client(buf, pos, clients)
        if client in seen:
            raise _Reject(f"client {client} has two delete entries")
        seen.add(client)
        ranges, pos = _count(buf, pos)
        if ranges == 0:
            raise _Reject("a delete entry of no ranges")
        for _ in range(ranges):
            clock, pos = _uint(buf, pos)
            length, pos = _uint(buf, pos)
            end = clock + length
            if length == 0 or end >= CLOCK_LIMIT:
                raise _Reject(f"deleted range {clock}+{length} is empty or not below 2^32")
            deletes.append((client, clock, end))
    return deletes, pos


# --- content other than strings and deletions: (bytes, position) in, (length, position) out


def _content_binary(buf: bytes, pos: int) -> tuple[int, int]:
    return 1, _raw(buf, pos)[1]


def _content_embed(buf: bytes, pos: int) -> tuple[int, int]:
    text, pos = _string(buf, pos)
    _strict_json(text)
    return 1, pos


def _content_format(buf: bytes, pos: int) -> tuple[int, int]:
    key, pos = _string(buf, pos)
    if key == "__proto__":  # Yjs's toDelta sets the attributes object's prototype instead
        raise _Reject("format key __proto__")
    text, pos = _string(buf, pos)
    _strict_json(text)
    return 1, pos


def _content_type(buf: bytes, pos: int) -> tuple[int, int]:
    type_ref, pos = _uint(buf, pos)
    if type_ref not in _TYPE_REFS:
        raise _Reject(f"type ref {type_ref} is not read alike by yrs and Yjs")
    if type_ref == _TYPE_XML_ELEMENT:
        _node_name, pos = _string(buf, pos)
    return 1, pos


def _content_any(buf: bytes, pos: int) -> tuple[int, int]:
    count, pos = _count(buf, pos)
    if count == 0:
        raise _Reject("no values")
    for _ in range(count):
        pos = _any(buf, pos, 0)
    return count, pos


def _any(buf: bytes, pos: int, depth: int) -> int:
    """One lib0 "any" value (tags 116-127); returns the position after it."""
    if depth >= MAX_DEPTH:
        raise _Reject(f"values nested deeper than {MAX_DEPTH}")
    tag = buf[pos]
    pos += 1
    if tag == 127 or tag == 126 or tag == 121 or tag == 120:  # undefined, null, false, true
        return pos
    if tag == 125:  # varInt: continuation bit, sign bit, six bits; then 7 bits a byte
        byte = buf[pos]
        pos += 1
        if byte & 0x80:  # the bytes after the first are the varUint of what is above 6 bits
            rest, pos = _uint(buf, pos)
            if (byte & 0x3F) | (rest << 6) > MAX_SAFE_INTEGER:
                raise _Reject("integer past 2^53")
        return pos
    if tag == 124:  # float32
        end = pos + 4
    elif tag == 123:  # float64
        end = pos + 8
    elif tag == 122:
        raise _Reject("a BigInt (yrs writes it back as a number)")
    elif tag == 119:
        return _string(buf, pos)[1]
    elif tag == 118:  # object
        count, pos = _count(buf, pos)
        for _ in range(count):
            key, pos = _string(buf, pos)
            if key == "__proto__":
                raise _Reject("object key __proto__")
            pos = _any(buf, pos, depth + 1)
        return pos
    elif tag == 117:  # array
        count, pos = _count(buf, pos)
        for _ in range(count):
            pos = _any(buf, pos, depth + 1)
        return pos
    elif tag == 116:  # Uint8Array
        return _raw(buf, pos)[1]
    else:
        raise _Reject(f"unknown value tag {tag}")
    if end > len(buf):
        raise _Reject("truncated number")
    return end


_CONTENT_READERS = {
    _BINARY: _content_binary,
    _EMBED: _content_embed,
    _FORMAT: _content_format,
    _TYPE: _content_type,
    _ANY: _content_any,
}


# --- strict JSON ------------------------------------------------------------------------------


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} overflows a double")
    return value


def _safe_int(text: str) -> int | float:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer {text} is past 2^53")
    return value


def _nesting(text: str) -> int:
    """Deepest nesting of arrays and objects (outside strings)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def strict_json(text: str) -> object:
    """Parse ``text`` as JSON that JavaScript's ``JSON.parse`` and serde_json read alike; raise
    ValueError otherwise."""
    if text.count("[") + text.count("{") > MAX_DEPTH and _nesting(text) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH}")
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_safe_int)
    if "\\u" in text:
        # An escaped lone surrogate parses, but is no Unicode text: serde_json refuses it.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def _strict_json(text: str) -> None:
    try:
        strict_json(text)
    except (ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise _Reject(f"embedded JSON: {exc}") from None
