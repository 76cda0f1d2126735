"""The pure y-protocols codec: round trips, and malformed input raising only ProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import protocol as p
from server.contract import CloseCode


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32 - 1, 2**53 - 1])
def test_var_uint_round_trips(value: int) -> None:
    encoded = p.write_var_uint(value)
    assert p.read_var_uint(encoded, 0) == (value, len(encoded))


def test_sync_messages_round_trip() -> None:
    assert p.decode_message(p.encode_sync_step1(b"\x01\x02")) == p.SyncStep1(b"\x01\x02")
    assert p.decode_message(p.encode_sync_step2(b"\x00\x00")) == p.SyncStep2(b"\x00\x00")
    assert p.decode_message(p.encode_sync_update(b"x" * 300)) == p.SyncUpdate(b"x" * 300)
    assert p.decode_message(p.encode_query_awareness()) == p.QueryAwareness()
    assert p.decode_message(p.encode_saved(1000)) == p.Saved(1000)


def test_saved_message_is_type_101_then_the_count() -> None:
    assert p.encode_saved(5) == bytes([101, 5])


def test_awareness_update_round_trips_and_marks_removals() -> None:
    entries = [p.AwarenessEntry(7, 3, '{"user":{"name":"Ann"}}'), p.AwarenessEntry(9, 4, "null")]
    decoded = p.decode_awareness_update(p.encode_awareness_update(entries))
    assert decoded == entries
    assert [e.removed for e in decoded] == [False, True]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "truncated varUint"),
        (b"\x00", "truncated varUint"),
        (b"\x00\x02\x05ab", "runs past the end"),
        (b"\x00\x07\x00", "unknown sync step"),
        (b"\x09", "unknown message type"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff", "longer than 8 bytes"),
        (b"\x00\x00\x01a\x00", "trailing bytes"),
        (b"\x03\x00", "trailing bytes"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason) as err:
        p.decode_message(frame)
    assert err.value.close_code == CloseCode.protocolError


def test_awareness_count_beyond_the_data_is_refused_without_looping() -> None:
    with pytest.raises(p.ProtocolError, match="count exceeds"):
        p.decode_awareness_update(p.write_var_uint(10**9) + b"\x01")


def test_awareness_state_that_is_not_utf8_is_invalid_payload() -> None:
    bad = b"\x01\x07\x01" + p.write_var_bytes(b"\xff\xfe")
    with pytest.raises(p.ProtocolError) as err:
        p.decode_awareness_update(bad)
    assert err.value.close_code == CloseCode.invalidPayload


@given(st.binary(max_size=64))
def test_decoder_raises_nothing_but_protocol_error(frame: bytes) -> None:
    try:
        message = p.decode_message(frame)
    except p.ProtocolError:
        return
    if isinstance(message, p.AwarenessMessage):
        try:
            p.decode_awareness_update(message.update)
        except p.ProtocolError:
            pass
