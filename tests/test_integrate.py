"""The order a room takes updates in (server.integrate): what builds on what the document
lacks waits, as in Yjs, and an update is split where Yjs would split it."""

from __future__ import annotations

from pycrdt import Doc, Text

from server.integrate import InOrder, apply_in_order
from server.updates import check_update, split_ready

from . import ycraft as y


def text(doc: Doc) -> str:
    return str(doc.get("content", type=Text))


def test_an_update_that_follows_a_gap_waits_until_the_gap_is_filled() -> None:
    doc = Doc()
    first = y.insert_text(5, 0, "abc")
    late = y.update(y.Group(5, 10, [y.Item(y.String("X"), origin=y.ID(5, 9))]))
    fill = y.update(y.Group(5, 3, [y.Item(y.String("defghij"), origin=y.ID(5, 2))]))
    order = apply_in_order(doc, [first, late])
    assert text(doc) == "abc" and len(order.waiting) == 1
    apply_in_order(doc, [first, late, fill])
    doc = Doc()
    order = apply_in_order(doc, [first, late, fill])
    assert text(doc) == "abcdefghijX" and not order.waiting
    assert order.clocks == {5: 11}


def test_one_client_waiting_does_not_hold_back_another_in_the_same_update() -> None:
    """Yjs integrates each client's structs up to the first that waits: so does the room."""
    both = y.update(
        y.Group(6, 0, [y.Item(y.String("ready"), parent="content")]),
        y.Group(5, 7, [y.Item(y.String("waits"), origin=y.ID(5, 6))]),
    )
    now, later = split_ready(both, {})
    assert now is not None and later is not None
    assert [c for c, _s, _e in check_update(now).structs] == [6]
    assert check_update(later).structs == [(5, 7, 12)]
    doc = Doc()
    order = apply_in_order(doc, [both])
    assert text(doc) == "ready" and len(order.waiting) == 1


def test_a_clients_structs_go_in_up_to_the_first_that_waits() -> None:
    group = y.Group(
        5,
        0,
        [
            y.Item(y.String("ab"), parent="content"),
            y.Item(y.String("c"), origin=y.ID(9, 0)),  # points at what nobody has
            y.Item(y.String("d"), origin=y.ID(5, 2)),
        ],
    )
    now, later = split_ready(y.update(group), {})
    assert now is not None and later is not None
    assert check_update(now).structs == [(5, 0, 2)]
    assert check_update(later).structs == [(5, 2, 4)]
    order = InOrder()
    part = order.offer(y.update(group), check_update(y.update(group)))
    assert part is not None and not part.last and order.clocks == {5: 2}
    # Client 9's clock 0 arrives: the rest of client 5 can go in now.
    order.taken(check_update(y.insert_text(9, 0, "z")))
    [rest] = order.take_ready()
    assert rest.last and rest.summary.structs == [(5, 2, 4)] and not order.waiting


def test_deletions_go_with_the_part_taken_now() -> None:
    update = y.update(
        y.Group(5, 4, [y.Item(y.String("x"), origin=y.ID(5, 3))]),
        deletes=[y.DeleteEntry(6, [(0, 1)])],
    )
    now, later = split_ready(update, {})
    assert now is not None and check_update(now).deletes == [(6, 0, 1)]
    assert check_update(now).structs == []
    assert later is not None and check_update(later).deletes == []


def test_an_update_ready_as_a_whole_is_not_split() -> None:
    order = InOrder()
    update = y.insert_text(5, 0, "abc")
    part = order.offer(update, check_update(update))
    assert part is not None and part.update == update and part.last
