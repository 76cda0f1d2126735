"""Just enough y-protocols and WebSocket framing for a lean load generator.

Pure functions over bytes; only the lib0 varUint codec is the server's own (a few lines any
client writes alike), the rest is written here so the benchmark measures the server rather than
sharing its code. Client frames are masked with an all-zero key, so a frame can be encoded
once and written many times: the payload bytes stay as they are (RFC 6455 lets a client pick
any key; servers only XOR with it).
"""

from __future__ import annotations

import struct

from server.protocol import read_var_uint, write_var_uint

SYNC = 0
AWARENESS = 1
SAVED = 101  # Tandem's "saved" extension: varUint count
STEP1 = 0
STEP2 = 1
UPDATE = 2

EMPTY_STATE_VECTOR = b"\x00"
EMPTY_UPDATE = b"\x00\x00"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


# The server's own bounds-checked codec: the bench speaks exactly what the server reads.
var_uint = write_var_uint


def sync_message(step: int, payload: bytes) -> bytes:
    return bytes((SYNC, step)) + var_uint(len(payload)) + payload


def step1(state_vector: bytes = EMPTY_STATE_VECTOR) -> bytes:
    return sync_message(STEP1, state_vector)


def step2(update: bytes = EMPTY_UPDATE) -> bytes:
    return sync_message(STEP2, update)


def update_message(update: bytes) -> bytes:
    return sync_message(UPDATE, update)


def sync_payload(message: bytes) -> bytes:
    """The update (or state vector) inside a sync message."""
    length, pos = read_var_uint(message, 2)
    return message[pos : pos + length]


def is_update_bearing(message: bytes) -> bool:
    """A sync step 2 or update: something that carries document content."""
    return len(message) > 1 and message[0] == SYNC and message[1] in (STEP2, UPDATE)


def saved_count(message: bytes) -> int:
    return read_var_uint(message, 1)[0]


def first_clock(update: bytes) -> int | None:
    """The clock of the first struct of a V1 update's first client (None: deletions only).

    A server that re-encodes an update it integrated starts it at the same clock, so this
    follows one author's progress through relays and CRDT servers alike.
    """
    clients, pos = read_var_uint(update, 0)
    if clients == 0:
        return None
    _structs, pos = read_var_uint(update, pos)
    _client, pos = read_var_uint(update, pos)
    return read_var_uint(update, pos)[0]


def decode_state_vector(sv: bytes) -> dict[int, int]:
    count, pos = read_var_uint(sv, 0)
    out: dict[int, int] = {}
    for _ in range(count):
        client, pos = read_var_uint(sv, pos)
        clock, pos = read_var_uint(sv, pos)
        out[client] = clock
    return out


# --- WebSocket frames ----------------------------------------------------------------------

_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """One final, masked (zero key) client frame."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + _ZERO_MASK + payload


def close_frame(code: int = 1000) -> bytes:
    return client_frame(struct.pack("!H", code), OP_CLOSE)
