"""Yjs V1 updates, built byte by byte as lib0/Yjs write them: valid ones and forged ones.

A small struct model (:class:`Update` of :class:`Group` of :class:`Item` / :class:`GC` /
:class:`Skip`, plus a delete set) that :meth:`Update.encode` writes exactly as Yjs's
``writeStructs`` / ``writeDeleteSet`` and lib0's ``writeAny`` would. Nothing is validated: a
clock of 2^32 + 13, a content ref of 31 or a count far beyond the bytes is written as given, so
tests can forge what no client writes. :func:`decode` reads an update back into the model (for
mutating real updates); ``decode(u).encode() == u`` for whatever Yjs or pycrdt wrote.

Example: client X at clock 2^32 + 13 inserting "hi" into the root text ``content``::

    Update([Group(X, 2**32 + 13, [Item(String("hi"), parent="content")])]).encode()
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Info byte flags and content refs (Yjs Item.write / readItemContent).
HAS_ORIGIN = 0x80
HAS_RIGHT_ORIGIN = 0x40
HAS_PARENT_SUB = 0x20
REF_GC, REF_DELETED, REF_JSON, REF_BINARY, REF_STRING = 0, 1, 2, 3, 4
REF_EMBED, REF_FORMAT, REF_TYPE, REF_ANY, REF_DOC, REF_SKIP = 5, 6, 7, 8, 9, 10
# Type refs (Yjs typeRefs).
ARRAY, MAP, TEXT, XML_ELEMENT, XML_FRAGMENT, XML_HOOK, XML_TEXT = 0, 1, 2, 3, 4, 5, 6


class ID(NamedTuple):
    client: int
    clock: int


# --- lib0 primitives --------------------------------------------------------------------------


def var_uint(value: int) -> bytes:
    """lib0 writeVarUint: 7 bits a byte, low first (any size: forged ones too)."""
    if value < 0:
        raise ValueError("varUint of a negative number")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_int(value: int, negative_zero: bool = False) -> bytes:
    """lib0 writeVarInt: sign and magnitude; the first byte holds a sign bit and 6 bits."""
    negative = value < 0 or negative_zero
    value = abs(value)
    out = bytearray([(0x80 if value > 0x3F else 0) | (0x40 if negative else 0) | (value & 0x3F)])
    value >>= 6
    while value > 0:
        out.append((0x80 if value > 0x7F else 0) | (value & 0x7F))
        value >>= 7
    return bytes(out)


def utf8(text: str | bytes) -> bytes:
    """The bytes of a string as TextEncoder writes them: a lone surrogate becomes U+FFFD, a
    surrogate pair its astral character. ``bytes`` pass as they are (to forge bad UTF-8)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        units = text.encode("utf-16-le", "surrogatepass")
        return units.decode("utf-16-le", "replace").encode("utf-8")


def var_string(text: str | bytes) -> bytes:
    raw = utf8(text)
    return var_uint(len(raw)) + raw


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


def utf16_length(text: str | bytes) -> int:
    """A string's length as Yjs counts it (UTF-16 code units of what it decodes)."""
    decoded = utf8(text).decode("utf-8", "replace")
    return len(decoded.encode("utf-16-le")) // 2


# --- lib0 "any" values --------------------------------------------------------------------------


@dataclass(frozen=True)
class VarInt:
    """An integer written with tag 125, whatever its size (lib0 writes |n| <= 2^31 - 1)."""

    value: int
    negative_zero: bool = False


@dataclass(frozen=True)
class Float32:
    value: float


@dataclass(frozen=True)
class Float64:
    value: float


@dataclass(frozen=True)
class BigInt64:
    value: int  # written as 8 bytes, two's complement, big-endian


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class RawAny:
    """Bytes written where a value goes: a forged tag, a truncated number, a lying count."""

    data: bytes


AnyValue = Any  # None, bool, int, float, str, bytes, list, dict and the wrappers above


def _is_float32(value: float) -> bool:
    try:
        return struct.unpack(">f", struct.pack(">f", value))[0] == value
    except OverflowError:  # JavaScript's setFloat32 would store Infinity: not equal either
        return False


def _number(value: float) -> bytes:
    """lib0 writeAny of a JavaScript number."""
    if math.isfinite(value) and value == int(value) and abs(value) <= 2**31 - 1:
        return b"\x7d" + var_int(int(value), negative_zero=math.copysign(1.0, value) < 0)
    if _is_float32(value):
        return b"\x7c" + struct.pack(">f", value)
    return b"\x7b" + struct.pack(">d", value)


def any_value(value: AnyValue) -> bytes:
    """lib0 writeAny. Python ints and floats are JavaScript numbers (an int past 2^31 is a
    float, as in JavaScript); the wrappers force a tag."""
    if value is None:
        return b"\x7e"
    if value is UNDEFINED:
        return b"\x7f"
    if value is True:
        return b"\x78"
    if value is False:
        return b"\x79"
    if isinstance(value, int):
        return _number(value if abs(value) <= 2**31 - 1 else float(value))
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return b"\x77" + var_string(value)
    if isinstance(value, bytes | bytearray):
        return b"\x74" + var_bytes(bytes(value))
    if isinstance(value, list | tuple):
        return b"\x75" + var_uint(len(value)) + b"".join(any_value(v) for v in value)
    if isinstance(value, dict):
        parts = [var_string(k) + any_value(v) for k, v in value.items()]
        return b"\x76" + var_uint(len(value)) + b"".join(parts)
    if isinstance(value, VarInt):
        return b"\x7d" + var_int(value.value, value.negative_zero)
    if isinstance(value, Float32):
        return b"\x7c" + struct.pack(">f", value.value)
    if isinstance(value, Float64):
        return b"\x7b" + struct.pack(">d", value.value)
    if isinstance(value, BigInt64):
        return b"\x7a" + (value.value % 2**64).to_bytes(8, "big")
    if isinstance(value, RawAny):
        return value.data
    raise TypeError(f"no lib0 encoding for {type(value).__name__}")


def json_text(value: object) -> str:
    """JSON.stringify's compact form (for values it and Python write alike)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- content ----------------------------------------------------------------------------------


@dataclass
class Deleted:
    length: int
    REF = REF_DELETED

    def write(self) -> bytes:
        return var_uint(self.length)

    def clocks(self) -> int:
        return self.length


@dataclass
class JSONContent:
    """Obsolete ContentJSON: each value its JSON text (Yjs writes "undefined" for undefined)."""

    values: list[str | bytes]
    REF = REF_JSON

    def write(self) -> bytes:
        return var_uint(len(self.values)) + b"".join(var_string(v) for v in self.values)

    def clocks(self) -> int:
        return len(self.values)


@dataclass
class Binary:
    data: bytes
    REF = REF_BINARY

    def write(self) -> bytes:
        return var_bytes(self.data)

    def clocks(self) -> int:
        return 1


@dataclass
class String:
    text: str | bytes
    REF = REF_STRING

    def write(self) -> bytes:
        return var_string(self.text)

    def clocks(self) -> int:
        return utf16_length(self.text)


@dataclass
class Embed:
    """An embed: its JSON text (``str`` or ``bytes``), or any other value, written as JSON."""

    value: object
    REF = REF_EMBED

    def write(self) -> bytes:
        return var_string(_as_json(self.value))

    def clocks(self) -> int:
        return 1


@dataclass
class Format:
    key: str | bytes
    value: object  # JSON text (str / bytes) or a value to write as JSON
    REF = REF_FORMAT

    def write(self) -> bytes:
        return var_string(self.key) + var_string(_as_json(self.value))

    def clocks(self) -> int:
        return 1


@dataclass
class Type:
    """A nested type; ``name`` (an XML element's node name, a hook's name) is written when
    given."""

    type_ref: int
    name: str | bytes | None = None
    REF = REF_TYPE

    def write(self) -> bytes:
        return var_uint(self.type_ref) + (b"" if self.name is None else var_string(self.name))

    def clocks(self) -> int:
        return 1


@dataclass
class AnyContent:
    values: list[AnyValue]
    REF = REF_ANY

    def write(self) -> bytes:
        return var_uint(len(self.values)) + b"".join(any_value(v) for v in self.values)

    def clocks(self) -> int:
        return len(self.values)


@dataclass
class DocContent:
    guid: str | bytes
    options: AnyValue = field(default_factory=dict)
    REF = REF_DOC

    def write(self) -> bytes:
        return var_string(self.guid) + any_value(self.options)

    def clocks(self) -> int:
        return 1


@dataclass
class Raw:
    """Content bytes as given, under content ref ``ref``, taking ``length`` clocks."""

    ref: int
    data: bytes
    length: int = 1

    @property
    def REF(self) -> int:
        return self.ref

    def write(self) -> bytes:
        return self.data

    def clocks(self) -> int:
        return self.length


Content = (
    Deleted | JSONContent | Binary | String | Embed | Format | Type | AnyContent | DocContent | Raw
)


def _as_json(value: object) -> bytes | str:
    return value if isinstance(value, str | bytes) else json_text(value)


# --- structs ----------------------------------------------------------------------------------


@dataclass
class Item:
    """An item. Its parent (a root type's name, or the ID of the item holding a nested type)
    and its map key are written only when it has neither origin, as Yjs does; ``keyed`` is the
    map-key flag (Yjs sets it whenever the item has a key, origins or not). ``info`` replaces
    the whole info byte; ``parent_info`` the parent's tag (1 by name, 0 by ID)."""

    content: Content
    origin: ID | None = None
    right_origin: ID | None = None
    parent: str | bytes | ID | None = None
    parent_sub: str | bytes | None = None
    keyed: bool | None = None
    info: int | None = None
    parent_info: int | None = None

    def info_byte(self) -> int:
        if self.info is not None:
            return self.info
        keyed = self.parent_sub is not None if self.keyed is None else self.keyed
        return (
            (self.content.REF & 0x1F)
            | (HAS_ORIGIN if self.origin is not None else 0)
            | (HAS_RIGHT_ORIGIN if self.right_origin is not None else 0)
            | (HAS_PARENT_SUB if keyed else 0)
        )

    def write(self) -> bytes:
        info = self.info_byte()
        out = bytearray([info])
        if info & HAS_ORIGIN:
            out += _id(self.origin, "origin")
        if info & HAS_RIGHT_ORIGIN:
            out += _id(self.right_origin, "right origin")
        if not info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN):
            parent = self.parent
            if parent is None:
                raise ValueError("an item without origins needs a parent")
            if isinstance(parent, ID):
                out += var_uint(0 if self.parent_info is None else self.parent_info)
                out += _id(parent, "parent")
            else:
                out += var_uint(1 if self.parent_info is None else self.parent_info)
                out += var_string(parent)
            if info & HAS_PARENT_SUB:
                if self.parent_sub is None:
                    raise ValueError("the map-key flag needs a parent_sub")
                out += var_string(self.parent_sub)
        out += self.content.write()
        return bytes(out)

    def clocks(self) -> int:
        return self.content.clocks()


@dataclass
class GC:
    length: int
    info: int = REF_GC

    def write(self) -> bytes:
        return bytes([self.info]) + var_uint(self.length)

    def clocks(self) -> int:
        return self.length


@dataclass
class Skip:
    length: int
    info: int = REF_SKIP

    def write(self) -> bytes:
        return bytes([self.info]) + var_uint(self.length)

    def clocks(self) -> int:
        return self.length


Struct = Item | GC | Skip


def _id(value: ID | None, what: str) -> bytes:
    if value is None:
        raise ValueError(f"the info byte announces a {what}, the item has none")
    return var_uint(value.client) + var_uint(value.clock)


@dataclass
class Group:
    """A client's consecutive structs from ``clock``; ``count`` overrides their number."""

    client: int
    clock: int
    structs: list[Struct]
    count: int | None = None

    def write(self) -> bytes:
        count = len(self.structs) if self.count is None else self.count
        head = var_uint(count) + var_uint(self.client) + var_uint(self.clock)
        return head + b"".join(s.write() for s in self.structs)

    def end(self) -> int:
        return self.clock + sum(s.clocks() for s in self.structs)

    def ids(self) -> list[tuple[ID, Struct]]:
        """Each struct with its ID."""
        out: list[tuple[ID, Struct]] = []
        clock = self.clock
        for s in self.structs:
            out.append((ID(self.client, clock), s))
            clock += s.clocks()
        return out


@dataclass
class DeleteEntry:
    """A client's deleted ranges, ``(clock, length)`` each; ``count`` overrides their number."""

    client: int
    ranges: list[tuple[int, int]]
    count: int | None = None

    def write(self) -> bytes:
        count = len(self.ranges) if self.count is None else self.count
        out = var_uint(self.client) + var_uint(count)
        return out + b"".join(var_uint(c) + var_uint(n) for c, n in self.ranges)


@dataclass
class Update:
    groups: list[Group] = field(default_factory=list)
    deletes: list[DeleteEntry] = field(default_factory=list)
    group_count: int | None = None
    delete_count: int | None = None

    def encode(self) -> bytes:
        groups = len(self.groups) if self.group_count is None else self.group_count
        deletes = len(self.deletes) if self.delete_count is None else self.delete_count
        return b"".join(
            [
                var_uint(groups),
                *(g.write() for g in self.groups),
                var_uint(deletes),
                *(d.write() for d in self.deletes),
            ]
        )


def update(*groups: Group, deletes: list[DeleteEntry] | None = None) -> bytes:
    """Shorthand: the encoded update of these groups and deletions."""
    return Update(list(groups), deletes or []).encode()


def insert_text(client: int, clock: int, text: str, root: str = "content") -> bytes:
    """The update of a client typing ``text`` at the start of a root text."""
    return update(Group(client, clock, [Item(String(text), parent=root)]))


# --- reading back (well-formed updates only; forged bytes raise) -------------------------------


class DecodeError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise DecodeError("unexpected end")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError("unexpected end")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def uint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    def int_(self) -> tuple[int, bool]:
        b = self.byte()
        negative = bool(b & 0x40)
        value = b & 0x3F
        shift = 6
        while b & 0x80:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
        return (-value if negative else value), negative and value == 0

    def string(self) -> str | bytes:
        raw = self.take(self.uint())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    def id(self) -> ID:
        return ID(self.uint(), self.uint())

    def any(self) -> AnyValue:
        tag = self.byte()
        if tag == 127:
            return UNDEFINED
        if tag == 126:
            return None
        if tag == 125:
            value, negative_zero = self.int_()
            if not negative_zero and abs(value) <= 2**31 - 1:
                return value  # as lib0 writes a JavaScript number
            return VarInt(value, negative_zero)
        if tag in (124, 123):
            raw = self.take(4 if tag == 124 else 8)
            number = struct.unpack(">f" if tag == 124 else ">d", raw)[0]
            if math.isnan(number):  # keep its bits
                return RawAny(bytes([tag]) + raw)
            return Float32(number) if tag == 124 else Float64(number)
        if tag == 122:
            return BigInt64(int.from_bytes(self.take(8), "big", signed=True))
        if tag in (120, 121):
            return tag == 120
        if tag == 119:
            return self.string()
        if tag == 118:
            obj: dict[str | bytes, AnyValue] = {}
            for _ in range(self.uint()):
                key = self.string()
                obj[key] = self.any()
            return obj
        if tag == 117:
            return [self.any() for _ in range(self.uint())]
        if tag == 116:
            return self.take(self.uint())
        raise DecodeError(f"value tag {tag}")

    def content(self, ref: int) -> Content:
        if ref == REF_DELETED:
            return Deleted(self.uint())
        if ref == REF_JSON:
            return JSONContent([self.string() for _ in range(self.uint())])
        if ref == REF_BINARY:
            return Binary(self.take(self.uint()))
        if ref == REF_STRING:
            return String(self.string())
        if ref == REF_EMBED:
            return Embed(self.string())
        if ref == REF_FORMAT:
            return Format(self.string(), self.string())
        if ref == REF_TYPE:
            type_ref = self.uint()
            name = self.string() if type_ref in (XML_ELEMENT, XML_HOOK) else None
            return Type(type_ref, name)
        if ref == REF_ANY:
            return AnyContent([self.any() for _ in range(self.uint())])
        if ref == REF_DOC:
            return DocContent(self.string(), self.any())
        raise DecodeError(f"content ref {ref}")

    def struct(self) -> Struct:
        info = self.byte()
        ref = info & 0x1F
        if ref == REF_GC:
            return GC(self.uint(), info)
        if ref == REF_SKIP:
            return Skip(self.uint(), info)
        item = Item(Deleted(0), keyed=bool(info & HAS_PARENT_SUB))
        if info & HAS_ORIGIN:
            item.origin = self.id()
        if info & HAS_RIGHT_ORIGIN:
            item.right_origin = self.id()
        if not info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN):
            item.parent = self.string() if self.uint() == 1 else self.id()
            if info & HAS_PARENT_SUB:
                item.parent_sub = self.string()
        item.content = self.content(ref)
        return item


def decode(data: bytes) -> Update:
    """The model of a V1 update; raises :class:`DecodeError` for bytes it cannot read."""
    r = _Reader(data)
    out = Update()
    for _ in range(r.uint()):
        count = r.uint()
        client, clock = r.uint(), r.uint()
        out.groups.append(Group(client, clock, [r.struct() for _ in range(count)]))
    for _ in range(r.uint()):
        client = r.uint()
        out.deletes.append(DeleteEntry(client, [(r.uint(), r.uint()) for _ in range(r.uint())]))
    if r.pos != len(data):
        raise DecodeError(f"{len(data) - r.pos} trailing bytes")
    return out
