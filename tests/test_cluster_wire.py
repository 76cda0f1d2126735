"""What instances tell each other over Redis, read strictly; which sequence numbers are held."""

from __future__ import annotations

import pytest

from server.cluster import wire
from server.cluster.feed import SeqTracker

ME = bytes(range(16))


def test_every_kind_goes_through_and_comes_back_the_same() -> None:
    for message in (
        wire.Message(wire.UPDATE, ME, 1.5, 42, b"\x00\x00"),
        wire.Message(wire.AWARENESS, ME, 2.0, 7, b"\x01"),
        wire.Message(wire.LEFT, ME, 3.0, 7),
        wire.Message(wire.QUERY, ME, 4.0),
        wire.Message(wire.DELETED, ME, 5.0),
    ):
        data = wire.encode(message)
        assert wire.decode(data) == message
        assert wire.sender(data) == ME


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"U" + ME,  # no time
        b"X" + ME + bytes(8),  # unknown kind
        b"U" + ME + bytes(8),  # no number
        b"U" + ME + bytes(16),  # an update without its bytes
        b"L" + ME + bytes(16) + b"x",  # trailing bytes
        b"Q" + ME + bytes(8) + b"x",
    ],
)
def test_a_malformed_message_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        wire.decode(data)


def test_a_channel_names_its_document_and_nothing_else_passes_for_one() -> None:
    assert wire.doc_of(wire.channel("team/notes")) == "team/notes"
    with pytest.raises(ValueError):
        wire.doc_of(b"other:doc:x")


def test_duplicates_and_gaps_are_told_apart() -> None:
    seen = SeqTracker(applied=3)
    assert not seen.see(2) and not seen.see(3)  # held already
    assert seen.see(5) and seen.gap  # 4 is missing
    assert not seen.see(5)
    assert seen.see(4) and not seen.gap and seen.applied == 5
    seen.see(9)
    seen.caught_up(8)  # a read of the store up to 8 (a snapshot stands for 6-8)
    assert seen.applied == 9 and not seen.gap
