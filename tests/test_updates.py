"""server.updates: one test per rule of the strict reading, with updates forged by ycraft.

Every refusal is a ProtocolError with close code 1007 (invalid payload).
"""

from __future__ import annotations

import random
import tracemalloc

import pytest
from pycrdt import Doc, Map, Text

from server.protocol import ProtocolError
from server.updates import (
    CLOCK_LIMIT,
    EMPTY_UPDATE,
    _typed,
    _update,
    check_state_vector,
    check_update,
    strict_json,
)
from testkit.traces import trace_updates

from . import ycraft as y

X = 2**31 + 7  # a client id of the usual size
Y = 42


def refused(update: bytes, reason: str = "") -> str:
    """The refusal's message; fails unless ``update`` is refused with 1007 (and ``reason``)."""
    with pytest.raises(ProtocolError) as info:
        check_update(update)
    assert info.value.close_code == 1007
    assert reason in str(info.value), str(info.value)
    return str(info.value)


def item(content: y.Content, **fields: object) -> bytes:
    """An update of one item of client X at clock 0, by default in the root text."""
    fields.setdefault("parent", "content")
    return y.update(y.Group(X, 0, [y.Item(content, **fields)]))  # type: ignore[arg-type]


def nested(depth: int, obj: bool = False) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"k": value} if obj else [value]
    return value


# --- what real clients send passes ------------------------------------------------------------


def test_a_keystroke() -> None:
    summary = check_update(y.insert_text(X, 5, "hi"))
    assert summary.structs == [(X, 5, 7)]
    assert summary.deletes == [] and summary.refs == {}


def test_the_empty_update() -> None:
    assert check_update(EMPTY_UPDATE).empty


def test_every_update_of_a_real_trace() -> None:
    updates, _text = trace_updates()
    for update in updates:
        check_update(update)


def test_what_pycrdt_writes_for_every_kind_of_value() -> None:
    doc = Doc()
    text = doc.get("content", type=Text)
    text.insert(0, "h😀\ufeff\x00é", {"bold": True})
    text.insert_embed(1, {"image": "x.png"})
    values = doc.get("m", type=Map)
    for key, value in {"i": 5, "f": 1.5, "b": b"\x00\xff", "n": None, "t": True}.items():
        values[key] = value
    values["nested"] = Map({"list": [1, "two", {"three": 3.0}]})
    del text[0:1]
    check_update(doc.get_update())


# --- clocks, lengths and client ids ------------------------------------------------------------


def test_clock_past_32_bits() -> None:
    refused(y.insert_text(X, 2**32 + 13, "hi"), "2^32")


def test_struct_reaching_2_32() -> None:
    refused(y.insert_text(X, CLOCK_LIMIT - 2, "hi"), "2^32")
    check_update(y.insert_text(X, CLOCK_LIMIT - 3, "hi"))


def test_reference_past_32_bits() -> None:
    refused(item(y.String("a"), origin=y.ID(Y, 2**32 + 1)), "2^32")


def test_deletion_past_32_bits() -> None:
    refused(y.update(deletes=[y.DeleteEntry(X, [(2**32 - 1, 1)])]), "2^32")
    refused(y.update(deletes=[y.DeleteEntry(X, [(2**32 + 13, 1)])]), "2^32")


def test_client_id_2_53() -> None:
    refused(y.insert_text(2**53, 0, "hi"), "2^53")
    check_update(y.insert_text(2**53 - 1, 0, "hi"))


def test_integer_of_more_than_8_bytes() -> None:
    # clock 0 written in 9 bytes: a varUint lib0 never writes
    raw = (
        bytes([1, 1])
        + y.var_uint(X)
        + b"\x80" * 8
        + b"\x00"
        + y.Item(y.String("a"), parent="content").write()
        + b"\x00"
    )
    refused(raw, "8 bytes")


# --- content refs, type refs, the info byte ------------------------------------------------------


def test_content_json() -> None:
    refused(item(y.JSONContent(['"a"'])), "JSON")


def test_subdocument() -> None:
    refused(item(y.DocContent("guid", {})), "subdocument")


@pytest.mark.parametrize("ref", [11, 12, 15, 16, 20, 24, 31])
def test_unknown_content_ref(ref: int) -> None:
    # 20 = 16 + 4: yrs reads the low 4 bits, a string; Yjs the low 5 and finds nothing
    refused(item(y.Raw(ref, b"\x01a")), "content ref")


@pytest.mark.parametrize("type_ref", [7, 8, 9, 15, 255])
def test_unknown_type_ref(type_ref: int) -> None:
    refused(item(y.Type(type_ref)), "type ref")


def test_xml_hook() -> None:
    refused(item(y.Type(y.XML_HOOK, "hook")), "type ref 5")


@pytest.mark.parametrize("type_ref", [y.ARRAY, y.MAP, y.TEXT, y.XML_FRAGMENT, y.XML_TEXT])
def test_known_type_refs(type_ref: int) -> None:
    check_update(item(y.Type(type_ref)))
    check_update(item(y.Type(y.XML_ELEMENT, "p")))


@pytest.mark.parametrize(
    "fields",
    [{"parent_sub": "k"}, {"origin": y.ID(Y, 0)}, {"right_origin": y.ID(Y, 0)}],
    ids=["key", "origin", "right-origin"],
)
def test_gc_and_skip_with_flags(fields: dict[str, object]) -> None:
    # yrs takes GC (0) and skip (10) only as the whole info byte, Yjs by the low 5 bits
    refused(item(y.Raw(y.REF_GC, b"\x01"), **fields), "GC with flags")
    refused(item(y.Raw(y.REF_SKIP, b"\x01"), **fields), "skip with flags")
    refused(y.update(y.Group(X, 0, [y.GC(1, 0x10)])), "content ref 16")


def test_parent_info_other_than_0_or_1() -> None:
    refused(item(y.String("a"), parent_info=2), "parent info")


# --- one group and one deletion entry per client; nothing empty ------------------------------


def test_two_groups_of_one_client() -> None:
    first = y.Group(X, 0, [y.Item(y.String("a"), parent="content")])
    second = y.Group(X, 1, [y.Item(y.String("b"), origin=y.ID(X, 0))])
    refused(y.update(first, second), "two groups")


def test_two_deletion_entries_of_one_client() -> None:
    entries = [y.DeleteEntry(X, [(0, 1)]), y.DeleteEntry(X, [(5, 1)])]
    refused(y.update(deletes=entries), "two delete entries")


@pytest.mark.parametrize(
    "update",
    [
        item(y.String("")),
        item(y.Deleted(0)),
        item(y.AnyContent([])),
        y.update(y.Group(X, 0, [y.GC(0)])),
        y.update(y.Group(X, 0, [y.Skip(0)])),
        y.update(y.Group(X, 0, [])),
        y.update(deletes=[y.DeleteEntry(X, [(3, 0)])]),
        y.update(deletes=[y.DeleteEntry(X, [])]),
    ],
    ids=["string", "deleted", "any", "gc", "skip", "group", "range", "entry"],
)
def test_zero_length(update: bytes) -> None:
    refused(update)


# --- references -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["origin", "right_origin", "parent"])
def test_reference_to_itself_or_later(field: str) -> None:
    for clock in (1, 2):  # the item is X:1 ("b"): itself, then the one after it
        structs = [
            y.Item(y.String("a"), parent="content"),
            y.Item(y.String("b"), **{field: y.ID(X, clock)}),  # type: ignore[arg-type]
        ]
        refused(y.update(y.Group(X, 0, structs)), "points at itself or later")


def test_reference_to_an_earlier_clock_of_its_own_client() -> None:
    structs = [
        y.Item(y.Type(y.MAP), parent="m", parent_sub="n"),
        y.Item(y.AnyContent([1]), parent=y.ID(X, 0), parent_sub="k"),
    ]
    assert check_update(y.update(y.Group(X, 0, structs))).refs == {X: 0}


# --- map entries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [y.String("ab"), y.Embed({"e": 1}), y.Format("bold", "true")], ids=repr
)
def test_map_entry_holding_text(content: y.Content) -> None:
    refused(item(content, parent="m", parent_sub="k"), "map entry")
    # with an origin the key is not written, but the flag says it is an entry all the same
    refused(item(content, origin=y.ID(Y, 0), keyed=True), "map entry")


@pytest.mark.parametrize(
    "content",
    [y.AnyContent(["v"]), y.Binary(b"\x01"), y.Type(y.MAP), y.Deleted(1)],
    ids=lambda c: type(c).__name__,
)
def test_map_entry_holding_a_value(content: y.Content) -> None:
    check_update(item(content, parent="m", parent_sub="k"))


# --- "any" values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{"__proto__": 1}, [{"a": {"__proto__": {"x": 1}}}]],
    ids=["top", "nested"],
)
def test_any_key_proto(value: object) -> None:
    refused(item(y.AnyContent([value]), parent="a"), "__proto__")


def test_map_and_format_key_proto() -> None:
    refused(item(y.AnyContent([1]), parent="m", parent_sub="__proto__"), "__proto__")
    refused(item(y.Format("__proto__", "true")), "__proto__")


def test_any_nesting() -> None:
    check_update(item(y.AnyContent([nested(63)]), parent="a"))
    check_update(item(y.AnyContent([nested(63, obj=True)]), parent="a"))
    refused(item(y.AnyContent([nested(65)]), parent="a"), "nested")
    refused(item(y.AnyContent([nested(65, obj=True)]), parent="a"), "nested")


def test_any_integer_past_2_53() -> None:
    check_update(item(y.AnyContent([y.VarInt(2**53 - 1)]), parent="a"))
    refused(item(y.AnyContent([y.VarInt(2**53)]), parent="a"), "2^53")


def test_any_bigint() -> None:
    refused(item(y.AnyContent([y.BigInt64(5)]), parent="a"), "BigInt")


@pytest.mark.parametrize("tag", [0, 115, 128, 255])
def test_any_unknown_tag(tag: int) -> None:
    refused(item(y.AnyContent([y.RawAny(bytes([tag]))]), parent="a"))


def test_any_numbers_of_every_width() -> None:
    values = [0, -1, 2**31 - 1, y.Float32(1.5), y.Float64(0.1), y.VarInt(0, negative_zero=True)]
    check_update(item(y.AnyContent([*values, None, y.UNDEFINED, True, False, b"\x00", "s"])))


# --- embedded JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["NaN", "Infinity", "-Infinity", '{"a":NaN}', "1e400", '"\\ud800"', "9007199254740993"],
)
def test_embed_not_strict_json(text: str) -> None:
    refused(item(y.Embed(text)), "JSON")
    refused(item(y.Format("bold", text)), "JSON")


def test_embed_nesting() -> None:
    check_update(item(y.Embed(nested(63))))
    refused(item(y.Embed(nested(65))), "nested")
    with pytest.raises(ValueError):
        strict_json("[" * 65 + "]" * 65)


# --- strings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"a\x80", b"\xe2\x82"],
    ids=["ff", "surrogate", "overlong", "past-10ffff", "continuation", "truncated"],
)
def test_not_utf8(raw: bytes) -> None:
    refused(item(y.String(raw)), "UTF-8")
    refused(item(y.String("a"), parent=raw), "UTF-8")
    refused(item(y.AnyContent([1]), parent="m", parent_sub=raw), "UTF-8")
    refused(item(y.AnyContent([y.RawAny(b"\x77" + y.var_bytes(raw))]), parent="a"), "UTF-8")


def test_odd_but_valid_strings() -> None:
    for text in ["😀", "\ufeff", "\ufeffx", "\x00", "e\u0301", "\U0010ffff"]:
        assert check_update(item(y.String(text))).structs == [(X, 0, y.utf16_length(text))]


# --- counts and lengths beyond the bytes -------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        y.Update(group_count=2**50).encode(),
        y.Update([y.Group(X, 0, [y.Item(y.String("a"), parent="content")], count=2**40)]).encode(),
        y.Update(delete_count=2**45).encode(),
        y.Update(deletes=[y.DeleteEntry(X, [(0, 1)], count=2**44)]).encode(),
        item(y.Raw(y.REF_ANY, y.var_uint(2**50) + b"\x7e")),
        item(y.Raw(y.REF_STRING, y.var_uint(2**50) + b"ab")),
        item(y.Raw(y.REF_BINARY, y.var_uint(2**50) + b"ab")),
        item(y.AnyContent([y.RawAny(b"\x75" + y.var_uint(2**50))]), parent="a"),
        item(y.AnyContent([y.RawAny(b"\x76" + y.var_uint(2**50))]), parent="a"),
    ],
    ids=[
        "groups",
        "structs",
        "deletions",
        "ranges",
        "values",
        "string",
        "binary",
        "array",
        "object",
    ],
)
def test_counts_beyond_the_bytes(update: bytes) -> None:
    tracemalloc.start()
    try:
        refused(update)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"refusing a forged count took {peak} bytes"


def test_truncated_and_trailing() -> None:
    whole = y.insert_text(X, 0, "hello")
    for cut in range(len(whole) - 1):
        refused(whole[:cut])
    refused(whole + b"\x00", "trailing")


# --- state vectors -----------------------------------------------------------------------------


def test_state_vector() -> None:
    assert check_state_vector(b"\x00") == {}
    assert check_state_vector(b"\x02" + y.var_uint(X) + b"\x05\x01\x00") == {X: 5, 1: 0}
    for bad in (
        b"\x01" + y.var_uint(X) + y.var_uint(2**32),  # clock past 32 bits
        b"\x01" + y.var_uint(X),  # truncated
        b"\x00\x00",  # trailing
        y.var_uint(2**40),  # a count beyond the bytes
    ):
        with pytest.raises(ProtocolError) as info:
            check_state_vector(bad)
        assert info.value.close_code == 1007


def test_the_keystroke_path_reads_exactly_as_the_full_reading() -> None:
    """check_update reads a keystroke's update at a glance (server.updates._typed): whatever it
    accepts, the full reading must accept with the same summary; whatever the full reading
    refuses, it must leave to it. Real updates, then thousands of mutations of them."""
    rng = random.Random(20261201)
    updates, _text = trace_updates(limit=3000)
    typed = 0
    cases = list(updates)
    for _ in range(20_000):
        frame = bytearray(rng.choice(updates))
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        cases.append(bytes(frame))
    for update in cases:
        try:
            fast = _typed(update)
        except IndexError:  # check_update then asks the full reading
            fast = None
        try:
            full = _update(update)
        except (ProtocolError, IndexError):
            assert fast is None, update.hex()
            continue
        if fast is not None:
            typed += 1
            assert fast == full, update.hex()
    assert typed > len(updates) // 2  # the path is taken for most real keystrokes
