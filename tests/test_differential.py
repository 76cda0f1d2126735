"""Differential test: every update Tandem accepts reads the same in pycrdt (yrs) and in Yjs.

A seeded generator makes updates of four kinds: valid ones from real operations (Yjs in Node,
and pycrdt), byte-level and structure-aware mutations of those (through tests/ycraft.py), and
hand-crafted adversarial ones. Each goes through ``server.updates.check_update``; what it
refuses is done with. What it accepts is applied, on top of its base updates, to a fresh pycrdt
doc the way the server's room does (server.integrate: what builds on what the doc lacks waits, as
in Yjs; a pycrdt error: the server refuses it too) and to a fresh Y.Doc the way a browser does
(tests/node/differential.mjs). Then Yjs must not throw and every root must
read the same on both sides; and so must the server's re-encoding of its doc read by Yjs (what
the next browser to join gets) and Yjs's re-encoding read by pycrdt (what a browser sends when
it reconnects), which check_update must accept as well. Every valid update must pass
check_update: the check never refuses what real clients send.

Some divergences no update alone shows (they depend on what the document holds); a stateless
check cannot refuse them, so cases showing one are counted, not compared (see KNOWN_STATEFUL,
splits_surrogate, and the test_known_* tests that pin each). Updates that arrive before what
they build on are compared in full: the room holds them back as Yjs does. Real operations are
always compared.

``TANDEM_DIFFERENTIAL_CASES=N`` (and ``TANDEM_DIFFERENTIAL_SEED``) size and seed the run;
``pytest -m fuzz`` adds a long run. A failure prints the seed, the case's kind and its bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from server.integrate import apply_in_order
from server.protocol import ProtocolError
from server.updates import check_update
from testkit.traces import trace_updates

from . import ycraft as y

NODE_SCRIPT = Path(__file__).resolve().parent / "node" / "differential.mjs"
SEED = int(os.environ.get("TANDEM_DIFFERENTIAL_SEED", "1337"))
CASES = int(os.environ.get("TANDEM_DIFFERENTIAL_CASES", "6000"))
LONG_CASES = 40_000
ROOTS = {"content": "text", "m": "map", "a": "array", "x": "xml"}
ROOT_TYPES: dict[str, type] = {"text": Text, "map": Map, "array": Array, "xml": XmlFragment}
# pycrdt (Rust) panics are pyo3's PanicException, a BaseException; the server catches those too.
_CONTROL_FLOW = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


@dataclass
class Case:
    kind: str
    base: list[bytes]
    update: bytes
    valid: bool = False  # made by real operations: check_update must accept it
    after: list[bytes] = field(default_factory=list)  # applied after the update (the gap it left)


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    refused_by_check: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Case, str, dict[str, Any]]] = field(default_factory=list)


# --- the canonical view (tests/node/differential.mjs describes it) ------------------------------


def _number(value: float) -> int | float | None:
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) <= 2**53:
        return int(value)  # also -0.0 -> 0
    return value


def canon(value: Any) -> Any:
    """A pycrdt value, as the Node side writes the Yjs one."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):  # pycrdt reads lib0 numbers as floats: an int is a BigInt
        return {"$bigint": str(value)}
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, XmlText):
        return {"$xmltext": _delta(value)}
    if isinstance(value, Text):
        return {"$text": _delta(value)}
    if isinstance(value, XmlElement):
        attrs = {k: canon(v) for k, v in value.attributes}
        children = [canon(c) for c in value.children]
        return {"$xmlelement": value.tag, "attrs": attrs, "children": children}
    if isinstance(value, XmlFragment):
        return {"$xmlfragment": [canon(c) for c in value.children]}
    if isinstance(value, Map):
        return {"$map": {k: canon(v) for k, v in value.items()}}
    if isinstance(value, Array):
        return {"$array": [canon(v) for v in value]}
    if isinstance(value, Doc):
        return {"$doc": value.guid}
    return {"$unknown": type(value).__name__}


def _delta(text: Text | XmlText) -> list[dict[str, Any]]:
    ops = []
    for insert, attrs in text.diff():
        op: dict[str, Any] = {"insert": canon(insert)}
        if attrs:
            op["attributes"] = {k: canon(v) for k, v in attrs.items()}
        ops.append(op)
    return ops


def _root_view(doc: Doc, name: str, kind: str) -> Any:
    root = doc.get(name, type=ROOT_TYPES[kind])
    if kind == "text":
        return {"delta": _delta(root), "string": str(root)}
    if kind == "map":
        return {k: canon(v) for k, v in root.items()}
    if kind == "array":
        return [canon(v) for v in root]
    return {"children": [canon(c) for c in root.children]}


def pycrdt_view(doc: Doc, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The canonical view of every root but those in ``skip``, each normalized; a root pycrdt
    cannot read is ``{"$error": ...}``."""
    out: dict[str, Any] = {}
    for name, kind in ROOTS.items():
        if name in skip:
            continue
        try:
            out[name] = normalize(_root_view(doc, name, kind))
        except _CONTROL_FLOW:
            raise
        except BaseException as exc:  # a panic too: reported as a divergence, not raised
            out[name] = {"$error": f"{type(exc).__name__}: {exc}"}
    return out


def yjs_view(view: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    return {name: normalize(v) for name, v in view.items() if name not in skip}


def normalize(value: Any) -> Any:
    """What either side may write differently without reading differently: integral floats,
    and a delta's string inserts split where the other side joins them."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)  # JSON.stringify writes 3.2e17 as digits: still a double
    if isinstance(value, list):
        items = [normalize(v) for v in value]
        merged: list[Any] = []
        for item in items:
            prev = merged[-1] if merged else None
            if (
                isinstance(item, dict)
                and isinstance(prev, dict)
                and set(item) <= {"insert", "attributes"}
                and set(prev) <= {"insert", "attributes"}
                and isinstance(item.get("insert"), str)
                and isinstance(prev.get("insert"), str)
                and item.get("attributes") == prev.get("attributes")
            ):
                merged[-1] = {**prev, "insert": prev["insert"] + item["insert"]}
            else:
                merged.append(item)
        return merged
    if isinstance(value, dict):
        if set(value) == {"$bigint"} and abs(int(value["$bigint"])) <= 2**53:
            # pycrdt hands out a BigInt this small as a float: no way to tell them apart there
            return int(value["$bigint"])
        return {k: normalize(v) for k, v in value.items()}
    return value


# --- pycrdt, as the server applies updates -----------------------------------------------------


def pycrdt_apply(updates: list[bytes]) -> Doc:
    """A fresh doc holding ``updates`` as the server's room takes them (server.integrate:
    each once what it builds on is there, as Yjs does); raises whatever pycrdt raises."""
    doc: Doc = Doc()
    apply_in_order(doc, updates)
    return doc


def pycrdt_try(updates: list[bytes]) -> Doc | str:
    try:
        return pycrdt_apply(updates)
    except _CONTROL_FLOW:
        raise
    except BaseException as exc:  # the server turns these into a refusal (1007)
        return f"{type(exc).__name__}: {exc}"


def out_of_order(case: Case) -> bool:
    """Whether the case holds structs after a gap in their client's clocks: past a skip, past
    clocks neither the base nor the update has, or past a struct that waits for what it points
    at. Yjs holds a client's structs back from the first that waits; yrs integrates every struct
    whose own references are there (it fills the gap with a skip), so until the gap is filled
    the server shows what no browser shows."""
    covered: dict[int, int] = {}
    models = [y.decode(u) for u in [*case.base, *case.after, case.update]]
    for model in models:  # what the base and the update hold, at best
        for group in model.groups:
            clock = covered.get(group.client, 0)
            for sid, struct in group.ids():
                if not isinstance(struct, y.Skip) and sid.clock <= clock:
                    clock = max(clock, sid.clock + struct.clocks())
            covered[group.client] = clock
    for group in models[-1].groups:
        waiting = False
        for sid, struct in group.ids():
            if isinstance(struct, y.Skip):
                waiting = True
                continue
            if waiting or sid.clock >= covered.get(group.client, 0):
                return True
            refs = (
                [struct.origin, struct.right_origin, struct.parent]
                if isinstance(struct, y.Item)
                else []
            )
            waiting = any(
                isinstance(ref, y.ID) and ref.clock >= covered.get(ref.client, 0) for ref in refs
            )
    return False


def splits_surrogate(case: Case) -> bool:
    """Whether the case cuts an astral character (a surrogate pair, two clocks) in two: a
    deletion, an origin or a right origin, or a struct overlapping what is there, at its second
    half. Yjs then writes U+FFFD for both halves (or throws), yrs keeps the character whole and
    gives it the wrong length: no update alone shows it, since it depends on the text."""
    low: set[y.ID] = set()  # the second halves
    cuts: list[y.ID] = []  # where a struct would begin
    covered: dict[int, int] = {}
    for update in [*case.base, case.update]:
        model = y.decode(update)
        for group in model.groups:
            known = covered.get(group.client, 0)
            if group.clock < known < group.end():
                cuts.append(y.ID(group.client, known))
            covered[group.client] = max(known, group.end())
            for sid, struct in group.ids():
                if not isinstance(struct, y.Item):
                    continue
                if isinstance(struct.content, y.String):
                    units = y.utf8(struct.content.text).decode("utf-8", "replace")
                    raw = units.encode("utf-16-le")
                    for i in range(1, len(raw) // 2):
                        if 0xDC00 <= int.from_bytes(raw[2 * i : 2 * i + 2], "little") <= 0xDFFF:
                            low.add(y.ID(sid.client, sid.clock + i))
                if struct.origin is not None:
                    cuts.append(y.ID(struct.origin.client, struct.origin.clock + 1))
                if struct.right_origin is not None:
                    cuts.append(struct.right_origin)
        for entry in model.deletes:
            for clock, length in entry.ranges:
                cuts += [y.ID(entry.client, clock), y.ID(entry.client, clock + length)]
    return any(cut in low for cut in cuts)


def crosses_parents(case: Case) -> bool:
    """Whether an item's origin and right origin lie in different lists (of two types, or a
    type's list and one of its map entries). Yjs inserts it after its origin; yrs links it to
    its right origin and loses what lay between. Only what they point at tells."""
    where: dict[y.ID, object] = {}  # each clock's list: (parent, key)
    crossing = False
    for update in [*case.base, case.update]:
        for group in y.decode(update).groups:
            for sid, struct in group.ids():
                if not isinstance(struct, y.Item):
                    continue
                left = where.get(struct.origin) if struct.origin else None
                right = where.get(struct.right_origin) if struct.right_origin else None
                if left is not None and right is not None and left != right:
                    crossing = True
                if struct.origin is None and struct.right_origin is None:
                    home: object = (struct.parent, struct.parent_sub)
                else:
                    home = left if left is not None else right
                if home is not None:
                    for k in range(struct.clocks()):
                        where[y.ID(sid.client, sid.clock + k)] = home
    return crossing


_LIST_CONTENT: dict[str, tuple[type, ...]] = {
    "text": (y.String, y.Embed, y.Format, y.Type, y.Deleted),
    "array": (y.AnyContent, y.Binary, y.Type, y.Deleted),
    "xml": (y.Type, y.Deleted),
    "map": (y.Deleted,),
}
_TYPE_KINDS = {y.ARRAY: "array", y.MAP: "map", y.TEXT: "text", y.XML_TEXT: "text"}


def pycrdt_ill_typed(doc: Doc) -> set[str]:
    """The roots of ``doc`` holding content their type never holds, read from pycrdt's own
    encoding (what it integrated: yrs may hold what Yjs keeps pending, and loops forever reading
    a string in an array). The same rules as wellTyped in differential.mjs, deletions aside."""
    items = [
        (sid, struct)
        for group in y.decode(doc.get_update()).groups
        for sid, struct in group.ids()
        if isinstance(struct, y.Item)
    ]
    home: dict[y.ID, tuple[object, object]] = {}  # each clock: (container, key)
    placed: dict[y.ID, tuple[object, object]] = {}
    while True:  # an origin may lie in a group written later: until nothing more is placed
        before = len(placed)
        for sid, struct in items:
            if sid in placed:
                continue
            if struct.origin is None and struct.right_origin is None:
                place: tuple[object, object] | None = (struct.parent, struct.parent_sub)
            else:
                place = home.get(struct.origin or struct.right_origin)  # type: ignore[arg-type]
            if place is not None:
                placed[sid] = place
                for k in range(struct.clocks()):
                    home[y.ID(sid.client, sid.clock + k)] = place
        if len(placed) == before:
            break
    kinds: dict[object, str] = dict(ROOTS)
    owner: dict[object, object] = {}  # a nested type's container
    for sid, struct in items:
        if sid in placed and isinstance(struct.content, y.Type):
            kinds[sid] = _TYPE_KINDS.get(struct.content.type_ref, "xml")
            owner[sid] = placed[sid][0]
    roots: set[str] = set()
    for sid, struct in items:
        if sid not in placed:
            continue
        container, key = placed[sid]
        kind = kinds.get(container, "map" if isinstance(container, str) else "")
        content = struct.content
        if key is None:
            ok = isinstance(content, _LIST_CONTENT.get(kind, ())) and not (
                kind == "xml"
                and isinstance(content, y.Type)
                and content.type_ref not in (y.XML_ELEMENT, y.XML_TEXT)
            )
        else:
            ok = isinstance(content, (y.AnyContent, y.Binary, y.Deleted)) or (
                kind == "map" and isinstance(content, y.Type)
            )
        if ok:
            continue
        seen = set()
        while container in owner and container not in seen:
            seen.add(container)
            container = owner[container]
        if isinstance(container, str):
            roots.add(container)
        else:  # an unknown parent: it may hold anything, so may every root
            roots.update(ROOTS)
    return roots


def _clock_units(struct: y.Item) -> list[object]:
    """What each clock of an item holds, to tell a re-sent item from a forged one."""
    content = struct.content
    if isinstance(content, y.String):
        text = y.utf8(content.text).decode("utf-8", "replace").encode("utf-16-le")
        return [text[i : i + 2] for i in range(0, len(text), 2)]
    if isinstance(content, y.AnyContent):
        return [repr(v) for v in content.values]
    return [repr(content)] * content.clocks()


def forges_clocks(case: Case) -> bool:
    """Whether the update claims clocks the base holds with other content (or as GC where
    the base has an item, or the reverse). Real clients re-send what a doc has, never
    something else under the same clocks; yrs and Yjs each keep a part of the forgery."""
    seen: dict[y.ID, object] = {}
    for update in case.base:
        for group in y.decode(update).groups:
            for sid, struct in group.ids():
                if isinstance(struct, y.Skip):
                    continue
                units = _clock_units(struct) if isinstance(struct, y.Item) else []
                for k in range(struct.clocks()):
                    seen[y.ID(sid.client, sid.clock + k)] = units[k] if units else "gc"
    for group in y.decode(case.update).groups:
        for sid, struct in group.ids():
            if isinstance(struct, y.Skip):
                continue
            units = _clock_units(struct) if isinstance(struct, y.Item) else []
            for k in range(struct.clocks()):
                known = seen.get(y.ID(sid.client, sid.clock + k))
                if known is not None and known != (units[k] if units else "gc"):
                    return True
    return False


def refers_to_gc(case: Case) -> bool:
    """Whether an item points (origin, right origin, parent) at a GC'd clock. Yjs turns such an
    item into GC too, yrs integrates it next to its other origin: alike when the GC'd clocks
    are a deleted type's (as real clients write them), not when a forged GC sits in a list."""
    gc: set[y.ID] = set()
    refs: list[y.ID] = []
    for update in [*case.base, case.update]:
        for group in y.decode(update).groups:
            for sid, struct in group.ids():
                if isinstance(struct, y.GC):
                    gc.update(y.ID(sid.client, sid.clock + k) for k in range(struct.clocks()))
                elif isinstance(struct, y.Item):
                    for ref in (struct.origin, struct.right_origin, struct.parent):
                        if isinstance(ref, y.ID):
                            refs.append(ref)
    return any(r in gc for r in refs)


# Divergences no update alone shows (each depends on what the doc holds), for the report.
KNOWN_STATEFUL: dict[str, Callable[[Case], bool]] = {
    "crossing parents": crosses_parents,
    "forged clocks": forges_clocks,
    "pointing at GC": refers_to_gc,
}


# --- Yjs, through Node --------------------------------------------------------------------------


def node(requests: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Run requests through tests/node/differential.mjs; answers by id."""
    if not (NODE_SCRIPT.parent / "node_modules").is_dir():
        pytest.fail(f"run `npm ci` in {NODE_SCRIPT.parent} first")
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run(
        ["node", str(NODE_SCRIPT)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"differential.mjs exited {proc.returncode}: {proc.stderr[-3000:]}"
    answers = {}
    for line in proc.stdout.splitlines():
        answer = json.loads(line)
        answers[answer["id"]] = answer
    assert len(answers) == len(requests), f"{len(requests)} requests, {len(answers)} answers"
    return answers


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# --- valid updates: real operations -------------------------------------------------------------


@dataclass
class Session:
    """Updates in the order they were made (each applies on the ones before it) and other
    updates real clients send, as ``(number of chain updates below it, update, kind)``."""

    source: str
    chain: list[bytes]
    extras: list[tuple[int, bytes, str]]


def yjs_sessions(seed: int, count: int, steps: int) -> list[Session]:
    answer = node([{"id": 0, "cmd": "generate", "seed": seed, "sessions": count, "steps": steps}])
    reply = answer[0]
    assert reply["ok"], reply.get("error")
    return [
        Session(
            "yjs",
            [_unb64(u) for u in s["chain"]],
            [(e["base"], _unb64(e["update"]), e["kind"]) for e in s["extras"]],
        )
        for s in reply["sessions"]
    ]


CHUNKS = ["a", "hello ", "é", "中文", "😀", "𝔘𝔫", "\ufeff", "\x00", "e\u0301", "\n", "👩‍💻"]
KEYS = ["a", "b", "k", "ü", "😀", "", "constructor", "0"]
# One attribute name only: yrs writes the formats of several names in hash order (random in each
# process), and one seed should be one run. The Yjs side formats with many names.
ATTRS: list[dict[str, Any]] = [
    {"bold": True},
    {"bold": None},
    {"bold": "#f00"},
    {"bold": {"href": "https://x.test/ü"}},
    {"bold": 12},
]


def _py_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 7)
    if kind == 0:
        return rng.choice([0, 1, -1, 42, 2**31, 2**53 - 1, -(2**40)])
    if kind == 1:
        return rng.choice([1.5, 0.1, -0.0, math.nan, math.inf, 1e300, 5e-324])
    if kind == 2:
        return "".join(rng.choice(CHUNKS) for _ in range(rng.randint(0, 3)))
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return rng.randbytes(rng.randrange(4))
    if kind == 6:
        return rng.uniform(-1e6, 1e6)
    if kind == 7:
        return [_py_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(KEYS): _py_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _text_units(text: Text | XmlText) -> list[int]:
    """Byte offsets (pycrdt's text index) between characters and embeds."""
    offsets = [0]
    for insert, _attrs in text.diff():
        for char in insert if isinstance(insert, str) else [None]:
            offsets.append(offsets[-1] + (len(char.encode()) if char is not None else 1))
    return offsets


def _py_text_op(rng: random.Random, text: Text | XmlText) -> None:
    offsets = _text_units(text)
    i = rng.randrange(len(offsets))
    j = rng.randrange(i, min(len(offsets), i + 5))
    start, stop = offsets[i], offsets[j]
    kind = rng.randrange(8)
    chunk = "".join(rng.choice(CHUNKS) for _ in range(rng.randint(1, 3)))
    if kind <= 2:
        text.insert(start, chunk, rng.choice([None, *ATTRS]) if rng.random() < 0.3 else None)
    elif kind <= 4 and stop > start:
        del text[start:stop]
    elif kind <= 5 and stop > start:
        text.format(start, stop, rng.choice(ATTRS))
    elif kind == 6:
        text.insert_embed(start, rng.choice([{"image": "a.png"}, [1, 2], 42.0]))
    else:
        text.insert(start, chunk)


def _py_prelim(rng: random.Random) -> Any:
    kind = rng.randrange(3)
    if kind == 0:
        return Map({rng.choice(KEYS): _py_value(rng)})
    if kind == 1:
        return Array([_py_value(rng), _py_value(rng)])
    return Text(rng.choice(CHUNKS))


def _py_op(rng: random.Random, doc: Doc) -> None:
    kind = rng.randrange(10)
    if kind <= 3:
        targets: list[Any] = [doc.get("content", type=Text)]
        m = doc.get("m", type=Map)
        for key in sorted(m.keys()):  # pycrdt's maps iterate in hash order: sorted, for the seed
            if isinstance(m[key], Text):
                targets.append(m[key])
        _py_text_op(rng, rng.choice(targets))
    elif kind <= 5:
        m = doc.get("m", type=Map)
        if rng.random() < 0.2 and len(m):
            del m[rng.choice(sorted(m.keys()))]
        else:
            m[rng.choice(KEYS)] = _py_prelim(rng) if rng.random() < 0.2 else _py_value(rng)
    elif kind <= 7:
        a = doc.get("a", type=Array)
        if rng.random() < 0.3 and len(a):
            i = rng.randrange(len(a))
            del a[i : min(len(a), i + rng.randint(1, 2))]
        else:
            value = _py_prelim(rng) if rng.random() < 0.2 else _py_value(rng)
            a.insert(rng.randint(0, len(a)), value)
    else:
        x = doc.get("x", type=XmlFragment)
        children = list(x.children)
        elements = [c for c in children if isinstance(c, XmlElement)]
        choice = rng.randrange(4)
        if choice == 0 or not children:
            tag = rng.choice(["p", "div", "Custom-Tag", "ü"])
            x.children.insert(rng.randint(0, len(children)), XmlElement(tag, {"class": "c"}))
        elif choice == 1:
            x.children.insert(rng.randint(0, len(children)), rng.choice(CHUNKS))
        elif choice == 2 and elements:
            rng.choice(elements).attributes[rng.choice(KEYS[:4])] = rng.choice(CHUNKS)
        else:
            del x.children[rng.randrange(len(children))]


def _sorted_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_value(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_value(v) for v in value]
    return value


def stable(update: bytes) -> bytes:
    """pycrdt's update with what yrs writes in hash order (random in each process: an object's
    keys, the clients of a deletion set) sorted, so that one seed is one run. Yjs writes the
    same values and deletions in its own order; either way the update reads the same."""
    model = y.decode(update)
    for group in model.groups:
        for struct in group.structs:
            if isinstance(struct, y.Item) and isinstance(struct.content, y.AnyContent):
                struct.content.values = [_sorted_value(v) for v in struct.content.values]
    model.deletes.sort(key=lambda entry: -entry.client)
    return model.encode()


def _recorder(chain: list[bytes], syncing: list[bool]) -> Callable[[Any], None]:
    def record(event: Any) -> None:
        if not syncing:
            chain.append(stable(event.update))

    return record


def pycrdt_sessions(rng: random.Random, count: int, steps: int) -> list[Session]:
    sessions = []
    for _ in range(count):
        pool = [rng.randrange(2**32), rng.randrange(2**32), 2**53 - 1, 2**32 + 5, 7]
        docs = [Doc(client_id=c) for c in rng.sample(pool, rng.randint(1, 3))]
        chain: list[bytes] = []
        extras: list[tuple[int, bytes, str]] = []
        syncing: list[bool] = []  # non-empty while a sync diff is applied: no edit of its own
        record = _recorder(chain, syncing)
        subs = [doc.observe(record) for doc in docs]
        for _ in range(steps):
            if len(docs) > 1 and rng.random() < 0.2:
                a, b = rng.sample(docs, 2)
                diff = a.get_update(b.get_state())
                extras.append((len(chain), stable(diff), "sync"))
                syncing.append(True)
                b.apply_update(diff)
                syncing.clear()
                continue
            doc = rng.choice(docs)
            with doc.transaction():
                for _ in range(rng.randint(1, 3)):
                    _py_op(rng, doc)
        for doc, sub in zip(docs, subs, strict=True):
            doc.unobserve(sub)
            extras.append((0, stable(doc.get_update()), "state"))
        sessions.append(Session("pycrdt", chain, extras))
    return sessions


def valid_cases(sessions: list[Session]) -> Iterator[Case]:
    for s in sessions:
        for i, update in enumerate(s.chain):
            yield Case(f"valid/{s.source}/edit", s.chain[:i], update, valid=True)
            if i + 2 < len(s.chain):
                # The next but one update first, then the rest: both sides must end alike.
                j = i + 2
                after = [*s.chain[i:j], *s.chain[j + 1 :]]
                yield Case(f"valid/{s.source}/early", s.chain[:i], s.chain[j], True, after)
        for base, update, kind in s.extras:
            yield Case(f"valid/{s.source}/{kind}", s.chain[:base], update, valid=True)


# --- mutations ---------------------------------------------------------------------------------

# Strings both sides should read alike, or refuse: astral, BOM, NUL, combining, and bytes that
# are no UTF-8 (lone and paired surrogates written as UTF-8, overlong forms, past U+10FFFF).
ODD_STRINGS: list[str | bytes] = [
    "😀",
    "a😀b",
    "\ufeff",
    "\ufeffx",
    "\x00",
    "e\u0301",
    "\ud800",  # ycraft writes a lone surrogate as TextEncoder does: U+FFFD
    "\uffff",
    "\U0010ffff",
    "x" * 300,
    b"\xed\xa0\x80",
    b"\xed\xa0\xbd\xed\xb8\x80",
    b"\xc0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff",
    b"a\x80",
    b"\xe2\x82",
]
ODD_JSON: list[str | bytes] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-0",
    "1e-400",
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '{"a":1,"a":2}',
    ' { "a" : [ 1 , 2 ] } ',
    "9007199254740993",
    "9007199254740992",
    "-9007199254740991",
    "1.0",
    "1E5",
    '{"__proto__":{"x":1}}',
    '{"constructor":1}',
    '"\\u00e9\\u0000"',
    "\ufeff1",
    "1 2",
    "[1,]",
    "{'a':1}",
    "null",
    "true",
    '"text"',
    "[" * 64 + "]" * 64,
    "[" * 65 + "]" * 65,
    "0.1e1",
    "01",
    "1.",
    "",
    b'"\xff"',
]
ODD_ANY: list[Any] = [
    y.VarInt(2**31),
    y.VarInt(2**53 - 1),
    y.VarInt(2**53),
    y.VarInt(-(2**53 - 1)),
    y.VarInt(0, negative_zero=True),
    y.VarInt(2**70),
    y.Float32(math.nan),
    y.Float64(-0.0),
    y.Float64(math.inf),
    y.Float32(1e-45),
    y.BigInt64(2**63 - 1),
    y.BigInt64(-(2**63)),
    y.BigInt64(2**53 + 1),
    y.UNDEFINED,
    {"__proto__": 1},
    {"__proto__": {"x": 1}},
    {"constructor": 1, "toString": 2},
    {"": None},
    y.RawAny(b"\x76\x02\x77\x01a\x7d\x01\x77\x01a\x7d\x02"),  # {"a": 1, "a": 2}
    y.RawAny(b"\x73"),  # tag 115: no lib0 value
    y.RawAny(b"\x80"),
    y.RawAny(b"\x7d\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),  # varInt of 11 bytes
    y.RawAny(b"\x7d\xff\xff\xff\xff\xff\xff\xff\x0f"),
    [[[[[[[[[[1]]]]]]]]]],
    b"\x00\xff",
    "\ud800",
    b"\xed\xa0\x80",
]
CLOCKS = [2**32 - 1, 2**32 - 2, 2**32, 2**32 + 13, 2**53 - 1, 2**53, 2**64 + 1]
CLIENTS = [0, 2**32, 2**53 - 1, 2**53, 2**53 + 1, 2**64 - 1, 2**70]
ROOT_NAMES: list[str | bytes] = ["content", "m", "a", "x", "", "__proto__", "\ufeff", "other"]


def _nested(depth: int, obj: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value} if obj else [value]
    return value


def _content(rng: random.Random, ctx: Context) -> y.Content:
    """Any kind of content, mostly well-formed."""
    kind = rng.randrange(14)
    if kind == 0:
        return y.String(rng.choice(ODD_STRINGS) if rng.random() < 0.5 else "xyz")
    if kind == 1:
        return y.Deleted(rng.choice([1, 2, 5]))
    if kind == 2:
        return y.Binary(rng.randbytes(rng.randrange(4)))
    if kind == 3:
        return y.Embed(rng.choice(ODD_JSON) if rng.random() < 0.5 else {"image": "x.png"})
    if kind == 4:
        key = rng.choice(["bold", "", "__proto__", "ü", "constructor"])
        return y.Format(key, rng.choice(ODD_JSON) if rng.random() < 0.5 else "true")
    if kind == 5:
        ref = rng.choice([0, 1, 2, 3, 4, 6, y.XML_HOOK, 7, 8, 9, 15, 255, 2**31])
        name = rng.choice([None, "p", "", "ü"]) if ref in (3, 5) else None
        return y.Type(ref, name if name is not None or ref not in (3, 5) else "p")
    if kind == 6:
        return y.AnyContent([rng.choice(ODD_ANY) for _ in range(rng.randint(1, 3))])
    if kind == 7:
        return y.AnyContent([_nested(rng.choice([62, 63, 64, 65, 66]), rng.random() < 0.5)])
    if kind == 8:
        return y.JSONContent([rng.choice(['"a"', "1", "undefined", "{}"])])
    if kind == 9:
        return y.DocContent("guid", {})
    if kind == 10:
        return y.Type(y.XML_ELEMENT, rng.choice(["p", "div", "Ü", ""]))
    if kind == 11:
        return y.Raw(rng.choice([11, 12, 15, 16 + 4, 16 + 8, 31]), b"\x01\x61")
    if kind == 12:
        return y.AnyContent([])
    return y.AnyContent([rng.choice([1, "s", None, True, 1.5, {"a": [1]}])])


@dataclass
class Context:
    """What the base holds, for mutations that point into it."""

    ids: list[y.ID]  # every clock of every item
    types: list[y.ID]  # items holding a nested type
    clients: list[int]
    state: dict[int, int]


def context(base: list[bytes]) -> Context:
    ctx = Context([], [], [], {})
    for update in base:
        for group in y.decode(update).groups:
            for sid, struct in group.ids():
                if isinstance(struct, y.Item):
                    n = struct.clocks()
                    ctx.ids.extend(y.ID(sid.client, sid.clock + k) for k in range(min(n, 8)))
                    if isinstance(struct.content, y.Type):
                        ctx.types.append(sid)
            end = group.end()
            ctx.state[group.client] = max(ctx.state.get(group.client, 0), end)
    ctx.clients = sorted(ctx.state)
    return ctx


def _known_id(rng: random.Random, ctx: Context) -> y.ID:
    if ctx.ids and rng.random() < 0.8:
        return rng.choice(ctx.ids)
    client = rng.choice([*ctx.clients, 1, 2**53 - 1]) if ctx.clients else 1
    return y.ID(client, rng.choice([0, 1, 5, 1000, 2**31, 2**32 + 1]))


def _items(model: y.Update) -> list[tuple[y.Group, int, y.Item]]:
    return [
        (g, i, s) for g in model.groups for i, s in enumerate(g.structs) if isinstance(s, y.Item)
    ]


Mutation = Callable[[random.Random, y.Update, Context], None]


def m_clock(rng: random.Random, model: y.Update, ctx: Context) -> None:
    group = rng.choice(model.groups)
    group.clock = rng.choice([*CLOCKS, 2**32 - max(1, group.end() - group.clock)])


def m_client(rng: random.Random, model: y.Update, ctx: Context) -> None:
    rng.choice(model.groups).client = rng.choice([*CLIENTS, *ctx.clients])


def m_origin(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    target = rng.choice(["origin", "right_origin", "both", "none"])
    if target in ("origin", "both"):
        item.origin = _known_id(rng, ctx)
    if target in ("right_origin", "both"):
        item.right_origin = _known_id(rng, ctx)
    if target == "none":
        item.origin = item.right_origin = None
        if item.parent is None:
            item.parent = rng.choice(ROOT_NAMES[:4])


def m_self_origin(rng: random.Random, model: y.Update, ctx: Context) -> None:
    """Point at the item itself or at one after it in the same update."""
    group = rng.choice([g for g in model.groups if any(isinstance(s, y.Item) for s in g.structs)])
    ids = [(sid, s) for sid, s in group.ids() if isinstance(s, y.Item)]
    sid, item = rng.choice(ids)
    target = y.ID(sid.client, sid.clock + rng.choice([0, 0, 1, 2, group.end() - sid.clock]))
    which = rng.randrange(3)
    if which == 0:
        item.origin = target
    elif which == 1:
        item.right_origin = target
    else:
        item.origin = item.right_origin = None
        item.parent = target


def m_parent(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    item.origin = item.right_origin = None
    kind = rng.randrange(4)
    if kind == 0 and ctx.types:
        item.parent = rng.choice(ctx.types)  # a nested type: fine
    elif kind <= 1:
        item.parent = _known_id(rng, ctx)  # most likely no type
    elif kind == 2:
        item.parent = rng.choice(ROOT_NAMES)
    else:
        item.parent = rng.choice(ROOT_NAMES[:4])
        item.parent_info = rng.choice([2, 3, 2**32 + 1])


def m_map_entry(rng: random.Random, model: y.Update, ctx: Context) -> None:
    """A map entry (an item with a key) holding some content."""
    group, i, _item = rng.choice(_items(model))
    entry = y.Item(
        _content(rng, ctx),
        parent=rng.choice(["m", "content", "x", *ctx.types[:3]]),
        parent_sub=rng.choice(KEYS),
    )
    if rng.random() < 0.3 and ctx.ids:
        entry.origin = rng.choice(ctx.ids)  # the key then comes from what it points at
    if rng.random() < 0.5:
        group.structs[i] = entry
    else:
        group.structs.insert(i, entry)


def m_keyed_flag(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    item.keyed = not (item.keyed or item.parent_sub is not None)
    if item.keyed and item.origin is None and item.right_origin is None:
        item.parent_sub = rng.choice(KEYS)


def m_content(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    item.content = _content(rng, ctx)


def m_info(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    info = item.info_byte()
    choice = rng.randrange(3)
    if choice == 0:  # another content ref, same flags
        item.info = (info & 0xE0) | rng.choice([0, 2, 9, 10, 11, 15, 16, 20, 24, 31])
    elif choice == 1:  # the fifth ref bit set: yrs ignores it, Yjs does not
        item.info = info | 0x10
    else:  # a flag flipped: the item then holds what the flags announce
        item.info = info = info ^ rng.choice([0x80, 0x40, 0x20])
        if info & y.HAS_ORIGIN and item.origin is None:
            item.origin = _known_id(rng, ctx)
        if info & y.HAS_RIGHT_ORIGIN and item.right_origin is None:
            item.right_origin = _known_id(rng, ctx)
        if not info & (y.HAS_ORIGIN | y.HAS_RIGHT_ORIGIN):
            item.parent = item.parent or rng.choice(ROOT_NAMES[:4])
            if info & y.HAS_PARENT_SUB and item.parent_sub is None:
                item.parent_sub = rng.choice(KEYS)


def m_zero(rng: random.Random, model: y.Update, ctx: Context) -> None:
    group, i, item = rng.choice(_items(model))
    choice = rng.randrange(6)
    if choice == 0:
        item.content = y.String("")
    elif choice == 1:
        item.content = y.Deleted(0)
    elif choice == 2:
        item.content = y.AnyContent([])
    elif choice == 3:
        group.structs.insert(i, rng.choice([y.GC(0), y.Skip(0)]))
    elif choice == 4:
        model.deletes.append(y.DeleteEntry(group.client, [(0, 0)]))
    else:
        model.groups.append(y.Group(rng.choice(CLIENTS[:3]), 0, []))


def m_gc_skip(rng: random.Random, model: y.Update, ctx: Context) -> None:
    group = rng.choice(model.groups)
    struct = rng.choice([y.GC, y.Skip])(rng.choice([1, 2, 7]))
    if rng.random() < 0.4:
        struct.info = struct.info | rng.choice([0x20, 0x40, 0x80, 0x10])
    group.structs.insert(rng.randint(0, len(group.structs)), struct)


def m_duplicate_group(rng: random.Random, model: y.Update, ctx: Context) -> None:
    group = rng.choice(model.groups)
    if len(group.structs) > 1 and rng.random() < 0.6:
        k = rng.randrange(1, len(group.structs))
        head = y.Group(group.client, group.clock, group.structs[:k])
        tail = y.Group(group.client, head.end(), group.structs[k:])
        index = model.groups.index(group)
        model.groups[index : index + 1] = [head, tail] if rng.random() < 0.5 else [tail, head]
    else:
        model.groups.append(y.Group(group.client, group.clock, list(group.structs)))


def m_deletes(rng: random.Random, model: y.Update, ctx: Context) -> None:
    choice = rng.randrange(5)
    target = _known_id(rng, ctx)
    entry = y.DeleteEntry(target.client, [(target.clock, rng.choice([1, 1, 2, 3]))])
    if choice == 0:  # two entries for one client
        model.deletes += [entry, y.DeleteEntry(target.client, [(target.clock + 1, 1)])]
    elif choice == 1:  # overlapping, unsorted ranges
        entry.ranges += [(target.clock, 2), (max(0, target.clock - 1), 1)]
        model.deletes.append(entry)
    elif choice == 2:
        entry.ranges = [(rng.choice(CLOCKS), 1)]
        model.deletes.append(entry)
    elif choice == 3:
        model.deletes.append(y.DeleteEntry(rng.choice(CLIENTS), [(0, 1)]))
    else:
        model.deletes.append(entry)


def m_counts(rng: random.Random, model: y.Update, ctx: Context) -> None:
    huge = rng.choice([2**20, 2**31, 2**32 + 1, 2**53 - 1, 2**60])
    choice = rng.randrange(5)
    if choice == 0:
        model.group_count = huge
    elif choice == 1:
        rng.choice(model.groups).count = huge
    elif choice == 2:
        model.delete_count = huge
    elif choice == 3:
        _g, _i, item = rng.choice(_items(model))
        item.content = y.Raw(y.REF_ANY, y.var_uint(huge) + b"\x7e")
    else:
        _g, _i, item = rng.choice(_items(model))
        item.content = y.Raw(y.REF_STRING, y.var_uint(huge) + b"ab")


def m_string(rng: random.Random, model: y.Update, ctx: Context) -> None:
    strings = [(g, i, s) for g, i, s in _items(model) if isinstance(s.content, y.String)]
    _g, _i, item = rng.choice(strings or _items(model))
    item.content = y.String(rng.choice(ODD_STRINGS))
    if rng.random() < 0.3:
        item.parent_sub = rng.choice([b"\xed\xa0\x80", "\ufeff", "😀"])
        item.keyed = None


def m_any(rng: random.Random, model: y.Update, ctx: Context) -> None:
    _g, _i, item = rng.choice(_items(model))
    values = [rng.choice(ODD_ANY) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.3:
        values = [{"k": values}]
    item.content = y.AnyContent(values)


def m_reorder(rng: random.Random, model: y.Update, ctx: Context) -> None:
    rng.shuffle(model.groups)
    rng.shuffle(model.deletes)


def m_reuse_clock(rng: random.Random, model: y.Update, ctx: Context) -> None:
    """Claim clocks the base already has, with other content."""
    if not ctx.clients:
        return
    group = rng.choice(model.groups)
    group.client = rng.choice(ctx.clients)
    group.clock = rng.randrange(ctx.state[group.client] + 1)


MUTATIONS: dict[str, Mutation] = {
    "clock": m_clock,
    "client": m_client,
    "origin": m_origin,
    "self-origin": m_self_origin,
    "parent": m_parent,
    "map-entry": m_map_entry,
    "keyed-flag": m_keyed_flag,
    "content": m_content,
    "info": m_info,
    "zero": m_zero,
    "gc-skip": m_gc_skip,
    "duplicate-group": m_duplicate_group,
    "deletes": m_deletes,
    "counts": m_counts,
    "string": m_string,
    "any": m_any,
    "reorder": m_reorder,
    "reuse-clock": m_reuse_clock,
}


def byte_mutation(rng: random.Random, update: bytes) -> tuple[str, bytes]:
    data = bytearray(update)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return "bytes/flip", bytes(data)
    if kind == 1:
        pos = rng.randrange(len(data) + 1)
        return "bytes/insert", bytes(data[:pos] + rng.randbytes(rng.randint(1, 3)) + data[pos:])
    if kind == 2:
        return "bytes/truncate", bytes(data[: rng.randrange(len(data))])
    pos = rng.randrange(len(data))
    return "bytes/delete", bytes(data[:pos] + data[pos + 1 :])


def mutated_case(rng: random.Random, valid: list[Case]) -> Case:
    source = rng.choice(valid)
    if rng.random() < 0.25:
        kind, update = byte_mutation(rng, source.update)
        return Case(kind, source.base, update)
    model = y.decode(source.update)
    if not model.groups or not _items(model):
        model.groups.append(y.Group(7, 0, [y.Item(y.String("seed"), parent="content")]))
    name = rng.choice(list(MUTATIONS))
    names = [name]
    MUTATIONS[name](rng, model, context(source.base))
    if rng.random() < 0.2:  # two at once
        second = rng.choice(list(MUTATIONS))
        if _items(model):
            MUTATIONS[second](rng, model, context(source.base))
            names.append(second)
    _complete(rng, model)
    return Case("mutated/" + "+".join(names), source.base, model.encode())


def _complete(rng: random.Random, model: y.Update) -> None:
    """An item that lost its origins writes its parent (and key, if flagged) instead."""
    for _g, _i, item in _items(model):
        info = item.info_byte()
        if info & y.HAS_ORIGIN and item.origin is None:  # a forced info byte, origins since gone
            item.origin = y.ID(1, 0)
        if info & y.HAS_RIGHT_ORIGIN and item.right_origin is None:
            item.right_origin = y.ID(1, 0)
        if not info & (y.HAS_ORIGIN | y.HAS_RIGHT_ORIGIN):
            item.parent = item.parent or rng.choice(ROOT_NAMES[:4])
            if info & y.HAS_PARENT_SUB and item.parent_sub is None:
                item.parent_sub = rng.choice(KEYS)


# --- hand-crafted adversarial updates ----------------------------------------------------------

A, B = 11, 22  # two clients


def _base_doc() -> list[bytes]:
    """Client A: "héllo😀" in the text, a map entry, an array value, an XML element holding an
    XML text, and a nested map: items of every common kind to point at."""
    return [
        y.update(
            y.Group(
                A,
                0,
                [
                    y.Item(y.String("héllo😀"), parent="content"),  # 0..6
                    y.Item(y.AnyContent(["v"]), parent="m", parent_sub="k"),  # 7
                    y.Item(y.AnyContent([1, 2]), parent="a"),  # 8, 9
                    y.Item(y.Type(y.XML_ELEMENT, "p"), parent="x"),  # 10
                    y.Item(y.Type(y.XML_TEXT), parent=y.ID(A, 10)),  # 11
                    y.Item(y.Type(y.MAP), parent="m", parent_sub="n"),  # 12
                    y.Item(y.String("ab"), parent=y.ID(A, 11)),  # 13, 14
                ],
            )
        )
    ]


def adversarial_cases(rng: random.Random) -> Iterator[Case]:
    base = _base_doc()
    ids = [y.ID(A, c) for c in range(15)]
    for _ in range(40):
        # An item of B between any two of A's items (across parents, into the middle of the
        # astral character, next to GC'd ranges), holding any content.
        item = y.Item(
            _content(rng, Context(ids, [y.ID(A, 10), y.ID(A, 11), y.ID(A, 12)], [A], {A: 15})),
            origin=rng.choice([None, *ids]),
            right_origin=rng.choice([None, *ids]),
            parent=rng.choice(["content", "m", y.ID(A, 12), y.ID(A, 11), y.ID(A, 0)]),
            parent_sub=rng.choice([None, None, "k", "z"]),
        )
        yield Case("adversarial/between", base, y.update(y.Group(B, 0, [item])))
    for clock in (5, 6, 7):  # split the astral character (clocks 5, 6) by deleting half of it
        deletes = [y.DeleteEntry(A, [(clock, 1)])]
        yield Case("adversarial/split-surrogate-delete", base, y.update(deletes=deletes))
    for origin in (y.ID(A, 5), y.ID(A, 6)):
        item = y.Item(y.String("X"), origin=origin)
        yield Case("adversarial/split-surrogate-origin", base, y.update(y.Group(B, 0, [item])))
    # A's clocks again, other content: a forged re-send that overlaps what the doc has.
    for clock in (0, 5, 6, 13):
        group = y.Group(A, clock, [y.Item(y.String("😀😀zz"), parent="content")])
        yield Case("adversarial/overlap", base, y.update(group))
    # Nesting, at the limit and past it.
    for depth in (63, 64, 65):
        for obj in (False, True):
            item = y.Item(y.AnyContent([_nested(depth, obj)]), parent="a")
            yield Case("adversarial/nesting", base, y.update(y.Group(B, 0, [item])))
            embed = y.Item(y.Embed(y.json_text(_nested(depth, obj))), parent="content")
            yield Case("adversarial/nesting", base, y.update(y.Group(B, 0, [embed])))
    # Every root-level content kind at every root.
    for root in ROOTS:
        for content in (
            y.String("s😀"),
            y.Embed({"e": 1}),
            y.Format("bold", "true"),
            y.Binary(b"\x01"),
            y.AnyContent([1, "x"]),
            y.Type(y.MAP),
            y.Type(y.TEXT),
            y.Type(y.XML_TEXT),
            y.Type(y.XML_ELEMENT, "q"),
            y.Type(y.XML_FRAGMENT),
            y.Type(y.ARRAY),
            y.Deleted(2),
        ):
            for key in (None, "k"):
                item = y.Item(content, parent=root, parent_sub=key)
                yield Case(f"adversarial/root-{ROOTS[root]}", base, y.update(y.Group(B, 0, [item])))


# --- the run ----------------------------------------------------------------------------------


def build_cases(seed: int, total: int) -> tuple[list[Case], list[Case]]:
    rng = random.Random(seed)
    scale = max(1, total // 4000)
    sessions = yjs_sessions(seed, 60 * scale, 12) + pycrdt_sessions(rng, 40 * scale, 12)
    valid = list(valid_cases(sessions))
    others = list(adversarial_cases(rng))
    while len(valid) + len(others) < total:
        others.append(mutated_case(rng, valid))
    return valid, others


def _hex(data: bytes, limit: int = 400) -> str:
    text = data.hex()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(data)} bytes)"


def _describe(
    seed: int, case: Case, problem: str, details: dict[str, Any], full: bool = False
) -> str:
    limit = 10**9 if full else 400
    lines = [
        f"seed {seed} case {case.kind}: {problem}",
        f"  update {_hex(case.update, limit)}",
        f"  base   {' '.join(_hex(b, limit // 3) for b in case.base)}",
    ]
    if case.after:
        lines.append(f"  after  {' '.join(_hex(b, limit // 3) for b in case.after)}")
    for key, value in details.items():
        text = json.dumps(value, ensure_ascii=False)[: 1500 if not full else None]
        # a lone surrogate (Yjs strings may hold one) printed as its escape
        lines.append(f"  {key}: {text.encode('utf-8', 'backslashreplace').decode()}")
    return "\n".join(lines)


def run_differential(seed: int, total: int) -> Outcome:
    started = time.monotonic()
    valid, others = build_cases(seed, total)
    out = Outcome()
    requests: list[dict[str, Any]] = []
    pending: list[tuple[Case, Doc]] = []
    out.counts["valid"] = len(valid)
    for case in valid + others:
        out.counts["cases"] += 1
        try:
            check_update(case.update)
        except ProtocolError as exc:
            assert exc.close_code == 1007, exc
            out.counts["refused by check"] += 1
            out.refused_by_check[case.kind.split("/")[0]] += 1
            if case.valid:
                out.failures.append((case, f"a valid update was refused: {exc}", {}))
            continue
        doc = pycrdt_try([*case.base, case.update, *case.after])
        if isinstance(doc, str):
            out.counts["refused by pycrdt"] += 1
            if case.valid:
                out.failures.append((case, f"pycrdt refused a valid update: {doc}", {}))
            continue
        out.counts["accepted"] += 1
        requests.append(
            {
                "id": len(requests),
                "base": [_b64(b) for b in case.base],
                "update": _b64(case.update),
                "after": [_b64(b) for b in case.after],
                "roots": ROOTS,
                "state": _b64(doc.get_update()),
            }
        )
        pending.append((case, doc))
    answers = node(requests)
    for rid, (case, doc) in enumerate(pending):
        problem = compare(case, doc, answers[rid], out)
        if problem is not None:
            out.failures.append((case, *problem))
    out.counts["seconds"] = round(time.monotonic() - started)
    return out


def compare(
    case: Case, doc: Doc, answer: dict[str, Any], out: Outcome
) -> tuple[str, dict[str, Any]] | None:
    """The first way Yjs and pycrdt read the case differently, or None."""
    # Known, and not for check_update to see (they depend on the doc): compared no further.
    # Real operations cut no astral character here (the generators keep clear of it) and make
    # none of the others: a valid case is always compared.
    if splits_surrogate(case):
        out.counts["surrogate split"] += 1
        return None
    if not case.valid:
        for name, known in KNOWN_STATEFUL.items():
            if known(case):
                out.counts[name] += 1
                return None
    if not answer["ok"]:
        return f"Yjs failed: {answer['error']}", {}
    skip = frozenset(answer["ill_typed"]) | pycrdt_ill_typed(doc)
    if skip:
        out.counts["ill-typed roots"] += 1
        if case.valid:
            return f"real operations left ill-typed roots {sorted(skip)}", {}
    if answer["crooked"] and not case.valid:
        out.counts["crossing parents"] += 1
        return None
    for cleanup in map(_unb64, answer["cleanups"]):
        # What the browser sends back after its formatting cleanup: the server applies it too.
        out.counts["Yjs cleanups applied"] += 1
        try:
            check_update(cleanup)
        except ProtocolError as exc:
            return f"check_update refuses Yjs's formatting cleanup: {exc}", {"yjs": _hex(cleanup)}
        with doc.transaction():
            doc.apply_update(cleanup)
    view = pycrdt_view(doc, skip)
    if answer["pending"] and out_of_order(case):
        out.counts["out of order"] += 1  # held back by the room as by Yjs: compared in full
    if yjs_view(answer["json"], skip) != view:
        return "Yjs reads the update otherwise", {"pycrdt": view, "yjs": answer["json"]}
    # Yjs against Yjs, not normalized: the server's re-encoding must keep every value's type.
    yjs = {k: v for k, v in answer["json"].items() if k not in skip}
    if {k: v for k, v in answer["state_json"].items() if k not in skip} != yjs:
        details = {"yjs": answer["json"], "yjs from pycrdt": answer["state_json"]}
        return "Yjs reads pycrdt's encoding of the doc otherwise", details
    encoded = _unb64(answer["encoded"])
    try:
        check_update(encoded)
    except ProtocolError as exc:
        if skip:  # Yjs writes what it holds: a map entry holding a string, say
            out.counts["Yjs's encoding refused"] += 1
            out.counts["equal"] += 1
            return None
        return f"check_update refuses Yjs's encoding of the doc: {exc}", {"yjs": _hex(encoded)}
    again = pycrdt_try([encoded])
    if isinstance(again, str):
        return "pycrdt refuses Yjs's encoding of the doc", {"error": again}
    reread = pycrdt_view(again, skip | pycrdt_ill_typed(again))
    if reread != view:
        return "pycrdt reads Yjs's encoding otherwise", {"pycrdt": view, "again": reread}
    out.counts["equal"] += 1
    return None


def _report(out: Outcome, seed: int) -> None:
    dump = os.environ.get("TANDEM_DIFFERENTIAL_DUMP")
    if dump:  # every failure in full, for a closer look
        text = "\n\n".join(_describe(seed, *f, full=True) for f in out.failures)
        Path(dump).write_text(text, encoding="utf-8")
    c = out.counts
    print(
        f"\ndifferential seed {seed}: {c['cases']} cases ({c['valid']} valid), "
        f"{c['accepted']} accepted, {c['refused by check']} refused by check_update, "
        f"{c['refused by pycrdt']} refused by pycrdt, {c['equal']} equal, "
        f"{len(out.failures)} divergent ({c['seconds']} s)"
    )
    print(
        f"  refused by check_update: {dict(out.refused_by_check)}; compared without "
        f"ill-typed roots: {c['ill-typed roots']}; held back for what they build on (compared "
        f"in full): {c['out of order']}; known, not compared: {c['surrogate split']} cutting an "
        f"astral character, {c['crossing parents']} with origins in two lists or crossed, "
        f"{c['forged clocks']} forging clocks, {c['pointing at GC']} pointing at GC; Yjs "
        f"formatting cleanups applied to pycrdt: {c['Yjs cleanups applied']}"
    )
    if out.failures:
        shown = "\n\n".join(_describe(seed, *f) for f in out.failures[:8])
        pytest.fail(
            f"{len(out.failures)} divergences (first {min(8, len(out.failures))}):\n{shown}"
        )


def test_differential() -> None:
    out = run_differential(SEED, CASES)
    _report(out, SEED)
    assert out.counts["accepted"] > CASES // 10, "almost everything refused: the generator broke"


@pytest.mark.fuzz
def test_differential_long(request: pytest.FixtureRequest) -> None:
    if "fuzz" not in (request.config.option.markexpr or ""):
        pytest.skip("the long run: pytest -m fuzz")
    out = run_differential(SEED + 1, LONG_CASES)
    _report(out, SEED + 1)


def test_ycraft_writes_what_yjs_and_pycrdt_write() -> None:
    """ycraft's reading and writing round-trip every real update byte for byte."""
    rng = random.Random(SEED)
    sessions = yjs_sessions(SEED, 10, 12) + pycrdt_sessions(rng, 10, 12)
    updates = [case.update for case in valid_cases(sessions)]
    updates += trace_updates(limit=500)[0]  # pycrdt's own bytes, not made stable
    for update in updates:
        assert y.decode(update).encode() == update, update.hex()


# --- known divergences no stateless check can see -----------------------------------------------
# Each pins one: strict xfail, so the day yrs and Yjs agree on it, these fail and say so.


def both_views(
    base: list[bytes], update: bytes, after: list[bytes] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """pycrdt's and Yjs's views of base + update (+ after)."""
    check_update(update)  # each passes the check: that is the point
    after = after or []
    doc = pycrdt_apply([*base, update, *after])
    request = {
        "id": 0,
        "base": [_b64(b) for b in base],
        "update": _b64(update),
        "after": [_b64(b) for b in after],
        "roots": ROOTS,
    }
    answer = node([request])[0]
    assert answer["ok"], answer["error"]
    return pycrdt_view(doc), yjs_view(answer["json"], frozenset())


KNOWN = pytest.mark.xfail(strict=True, raises=AssertionError)


@KNOWN
def test_known_half_surrogate_delete() -> None:
    """A browser deleting half of an astral character (``Y.Text.delete(1, 1)`` on "a😀b")
    sends the deletion of clock 1 alone. Yjs splits the pair into two U+FFFD and deletes one:
    "a\\ufffdb". yrs deletes the whole character: "ab", and its own encoding of the doc then
    moves "b" to clock 2."""
    base = [y.insert_text(5, 0, "a😀b")]
    pycrdt, yjs = both_views(base, y.update(deletes=[y.DeleteEntry(5, [(1, 1)])]))
    assert pycrdt["content"]["string"] == yjs["content"]["string"]


@KNOWN
def test_known_insert_into_half_surrogate() -> None:
    """An item whose origin is the first half of an astral character: Yjs writes U+FFFD for
    both halves and puts the item after them, yrs keeps the character and puts it after."""
    base = [y.insert_text(5, 0, "a😀b")]
    update = y.update(y.Group(6, 0, [y.Item(y.String("X"), origin=y.ID(5, 1))]))
    pycrdt, yjs = both_views(base, update)
    assert pycrdt["content"]["string"] == yjs["content"]["string"]


def test_an_out_of_order_struct_is_held_back_as_in_yjs() -> None:
    """Client 5 has clocks 0-2; an update of its clock 10 (origin clock 2): Yjs keeps it pending
    until clocks 3-9 arrive; yrs alone would integrate it at once (filling 3-9 with a skip), and
    the server's text would read "abcX" while every browser reads "abc". The room holds it back
    (server.integrate), so both read "abc"."""
    base = [y.insert_text(5, 0, "abc")]
    update = y.update(y.Group(5, 10, [y.Item(y.String("X"), origin=y.ID(5, 2))]))
    pycrdt, yjs = both_views(base, update)
    assert pycrdt["content"] == yjs["content"]


def test_an_early_update_waits_for_the_one_it_follows_as_in_yjs() -> None:
    """Client 7 sets m.k = "a" (clock 1), pushes "v" to an array (clock 2), sets m.k = false
    (clock 3, origin clock 1) and deletes clock 1. Clocks 2-3 arrive before clock 1: yrs alone
    would integrate clock 2 at once and keep 3 pending, and once clock 1 arrives it has lost the
    key where Yjs reads m.k = false. The room takes clocks 2-3 only after clock 1: both agree."""
    base = [y.update(y.Group(7, 0, [y.Item(y.Type(y.XML_ELEMENT, "p"), parent="x")]))]
    first = y.update(y.Group(7, 1, [y.Item(y.AnyContent(["a"]), parent="m", parent_sub="k")]))
    early = y.update(
        y.Group(
            7,
            2,
            [
                y.Item(y.AnyContent(["v"]), parent="a"),
                y.Item(y.AnyContent([False]), origin=y.ID(7, 1), keyed=True),
            ],
        ),
        deletes=[y.DeleteEntry(7, [(1, 1)])],
    )
    pycrdt, yjs = both_views(base, early, [first])
    assert pycrdt["m"] == yjs["m"]


@KNOWN
def test_known_origins_in_two_lists() -> None:
    """An item whose origin is in an XML text ("ab", at "a") and whose right origin is a map
    entry: Yjs inserts it after "a", yrs links it to the map entry and "b" is lost."""
    update = y.update(
        y.Group(B, 0, [y.Item(y.Deleted(2), origin=y.ID(A, 13), right_origin=y.ID(A, 7))])
    )
    pycrdt, yjs = both_views(_base_doc(), update)
    assert pycrdt["x"] == yjs["x"]


@KNOWN
def test_known_right_origin_in_forged_gc() -> None:
    """A GC struct forged in a live text ("ab", then GC at clock 2) and an item between "b"
    and it: Yjs turns the item into GC as well, yrs inserts it: "abX"."""
    base = [y.update(y.Group(A, 0, [y.Item(y.String("ab"), parent="content"), y.GC(1)]))]
    update = y.update(
        y.Group(B, 0, [y.Item(y.String("X"), origin=y.ID(A, 1), right_origin=y.ID(A, 2))])
    )
    pycrdt, yjs = both_views(base, update)
    assert pycrdt["content"] == yjs["content"]


def test_a_held_item_whose_parent_is_no_type_is_dropped_as_in_yjs() -> None:
    """A forged item whose parent is an ID no client has written yet (A:0) waits. Given to yrs
    at once it would poison A's real first edit ("ab" at A:0): yrs integrates the edit, then
    fails on the waiting item and raises, so the server would refuse A's edit although its doc
    holds it, and the stored log would fail to load the same way. The room holds the item back,
    takes A's edit, then drops the item (its parent is no type), as Yjs does: both read "ab"."""
    poison = y.update(y.Group(B, 0, [y.Item(y.AnyContent([5]), parent=y.ID(A, 0), parent_sub="q")]))
    check_update(poison)
    legit = y.insert_text(A, 0, "ab")
    outcome = pycrdt_try([poison, legit])
    assert not isinstance(outcome, str), outcome
    assert str(outcome.get("content", type=Text)) == "ab"
