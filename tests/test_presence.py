"""The presence rules, on the pure Presence object: owners, clocks, bounds."""

from __future__ import annotations

import pytest

from server import protocol as p
from server.contract import CloseCode
from server.presence import Presence, PresenceLimits

ALICE = "alice"  # owners are whatever identifies a connection
MALLORY = "mallory"


def entry(client_id: int, clock: int, state: str = '{"user":{"name":"A"}}') -> p.AwarenessEntry:
    return p.AwarenessEntry(client_id, clock, state)


def test_an_id_belongs_to_the_connection_that_introduced_it() -> None:
    presence = Presence()
    assert presence.apply(ALICE, [entry(1, 1)], now=0) == [entry(1, 1)]
    # Another connection can neither change nor remove it, whatever the clock.
    assert presence.apply(MALLORY, [entry(1, 2**53, '{"user":{"name":"M"}}')], now=1) == []
    assert presence.apply(MALLORY, [entry(1, 2**53, "null")], now=1) == []
    assert presence.entries() == [entry(1, 1)]
    assert presence.ids_of(MALLORY) == set()
    # Its owner goes on as before.
    assert presence.apply(ALICE, [entry(1, 2, '{"user":{"name":"B"}}')], now=2) != []


def test_stale_clocks_never_overwrite_newer_ones() -> None:
    presence = Presence()
    presence.apply(ALICE, [entry(1, 5)], now=0)
    assert presence.apply(ALICE, [entry(1, 4, '{"old":1}')], now=1) == []
    assert presence.apply(ALICE, [entry(1, 5, '{"same clock":1}')], now=1) == []
    assert presence.entries() == [entry(1, 5)]
    # y-protocols: a removal with the same clock is taken.
    assert presence.apply(ALICE, [entry(1, 5, "null")], now=1) == [entry(1, 5, "null")]
    assert not presence


def test_removals_of_ids_nobody_holds_are_not_relayed() -> None:
    presence = Presence()
    assert presence.apply(MALLORY, [entry(99, 2**53, "null")], now=0) == []


def test_an_owner_that_stopped_renewing_loses_its_id_to_whoever_claims_it() -> None:
    presence = Presence(PresenceLimits(outdated=30))
    presence.apply(ALICE, [entry(1, 3)], now=0)
    assert presence.apply("alice-again", [entry(1, 4)], now=29) == []
    assert presence.apply("alice-again", [entry(1, 4)], now=31) == [entry(1, 4)]
    assert presence.ids_of("alice-again") == {1}
    assert presence.ids_of(ALICE) == set()


def test_leaving_removes_every_id_with_a_newer_clock() -> None:
    presence = Presence()
    presence.apply(ALICE, [entry(1, 3), entry(2, 7)], now=0)
    assert presence.leave(ALICE) == [entry(1, 4, "null"), entry(2, 8, "null")]
    assert not presence and presence.size == 0


def test_a_connection_owns_a_few_ids_and_a_bounded_number_of_bytes() -> None:
    presence = Presence(PresenceLimits(max_ids=2, max_bytes_per_connection=1000))
    presence.apply(ALICE, [entry(1, 1), entry(2, 1)], now=0)
    with pytest.raises(p.ProtocolError) as refused:
        presence.apply(ALICE, [entry(3, 1)], now=0)
    assert refused.value.close_code == CloseCode.policyViolation
    with pytest.raises(p.ProtocolError) as too_big:
        presence.apply(
            MALLORY, [entry(10, 1, '"' + "x" * 600 + '"'), entry(11, 1, '"' + "y" * 600 + '"')]
        )
    assert too_big.value.close_code == CloseCode.policyViolation


def test_a_document_holds_a_bounded_number_of_awareness_bytes() -> None:
    presence = Presence(PresenceLimits(max_bytes_per_connection=600, max_room_bytes=1000))
    big = '"' + "x" * 400 + '"'
    presence.apply("a", [entry(1, 1, big)], now=0)
    presence.apply("b", [entry(2, 1, big)], now=0)
    with pytest.raises(p.ProtocolError) as full:
        presence.apply("c", [entry(3, 1, big)], now=0)
    assert full.value.close_code == CloseCode.policyViolation
    assert presence.size <= 1000
    presence.leave("a")
    assert presence.apply("c", [entry(3, 1, big)], now=0) != []


@pytest.mark.parametrize(
    "state", ["NaN", '{"a": Infinity}', "[-Infinity]", "{", "1e400", "9007199254740993"]
)
def test_only_strict_json_is_taken(state: str) -> None:
    with pytest.raises(p.ProtocolError) as refused:
        Presence().apply(ALICE, [entry(1, 1, state)], now=0)
    assert refused.value.close_code == CloseCode.invalidPayload


def test_a_flood_of_awareness_bytes_is_cut() -> None:
    presence = Presence(PresenceLimits(max_bytes_per_connection=1000))
    state = '"' + "z" * 900 + '"'
    with pytest.raises(p.ProtocolError, match="per second") as flood:
        for clock in range(1, 100):
            presence.apply(ALICE, [entry(1, clock, state)], now=0)
    assert flood.value.close_code == CloseCode.policyViolation
