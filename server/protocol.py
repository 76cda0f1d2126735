"""y-protocols framing as pure functions: bytes in, bytes out, every read bounds-checked.

No I/O here and no CRDT work: the room decides what a message means for the document.
Wire format (lib0 encoding): a frame is ``varUint(type)`` followed by the message body;
sync bodies are ``varUint(step) varUint8Array(payload)``; awareness bodies are
``varUint8Array(update)``; our "saved" body is ``varUint(count)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import AuthMessage, CloseCode, MessageType, SyncStep

# lib0 varUints carry JavaScript numbers: 53 bits fit in 8 bytes of 7 bits. The largest a
# JavaScript client produces is 2^53 (an awareness clock at 2^53 - 1 plus one; beyond it,
# adding one leaves a double unchanged).
_MAX_VARUINT_BYTES = 8
_MAX_VAR_UINT = 2**53


class ProtocolError(ValueError):
    """A frame that does not follow y-protocols; ``close_code`` says how to close the socket."""

    def __init__(self, message: str, close_code: int = CloseCode.protocolError) -> None:
        super().__init__(message)
        self.close_code = close_code


# --- primitive readers / writers ---------------------------------------------------------


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a lib0 varUint at ``pos``; return (value, next position)."""
    value = 0
    shift = 0
    end = len(buf)
    for _ in range(_MAX_VARUINT_BYTES):
        if pos >= end:
            raise ProtocolError("truncated varUint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > _MAX_VAR_UINT:
                raise ProtocolError("varUint larger than 2^53")
            return value, pos
        shift += 7
    raise ProtocolError("varUint longer than 8 bytes")


def read_var_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Read a lib0 varUint8Array (length-prefixed bytes)."""
    length, pos = read_var_uint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ProtocolError(f"length {length} runs past the end of the frame")
    return bytes(buf[pos:end]), end


def read_var_string(buf: bytes, pos: int) -> tuple[str, int]:
    raw, pos = read_var_bytes(buf, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise ProtocolError("string is not UTF-8", CloseCode.invalidPayload) from exc


def write_var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varUint cannot be negative")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    return write_var_bytes(text.encode("utf-8"))


# --- decoded messages --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    update: bytes


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


@dataclass(frozen=True, slots=True)
class AuthMessageIn:
    kind: int
    reason: str


@dataclass(frozen=True, slots=True)
class Saved:
    count: int


Message = (
    SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness | AuthMessageIn | Saved
)


def _expect_end(buf: bytes, pos: int) -> None:
    if pos != len(buf):
        raise ProtocolError(f"{len(buf) - pos} trailing bytes after the message")


def decode_message(frame: bytes) -> Message:
    """Decode one frame into a message; raise :class:`ProtocolError` on anything malformed."""
    if frame[:2] == _SYNC_UPDATE_PREFIX and len(frame) > 2 and frame[2] < 0x80:
        # An edit of fewer than 128 bytes, most of the traffic: read at a glance.
        length = frame[2]
        if length > len(frame) - 3:
            raise ProtocolError(f"length {length} runs past the end of the frame")
        if length < len(frame) - 3:
            raise ProtocolError(f"{len(frame) - 3 - length} trailing bytes after the message")
        return SyncUpdate(frame[3:])
    kind, pos = read_var_uint(frame, 0)
    if kind == MessageType.sync:
        step, pos = read_var_uint(frame, pos)
        payload, pos = read_var_bytes(frame, pos)
        _expect_end(frame, pos)
        if step == SyncStep.step1:
            return SyncStep1(payload)
        if step == SyncStep.step2:
            return SyncStep2(payload)
        if step == SyncStep.update:
            return SyncUpdate(payload)
        raise ProtocolError(f"unknown sync step {step}")
    if kind == MessageType.awareness:
        payload, pos = read_var_bytes(frame, pos)
        _expect_end(frame, pos)
        return AwarenessMessage(payload)
    if kind == MessageType.queryAwareness:
        _expect_end(frame, pos)
        return QueryAwareness()
    if kind == MessageType.auth:
        auth_kind, pos = read_var_uint(frame, pos)
        reason, pos = read_var_string(frame, pos)
        _expect_end(frame, pos)
        return AuthMessageIn(auth_kind, reason)
    if kind == MessageType.saved:
        count, pos = read_var_uint(frame, pos)
        _expect_end(frame, pos)
        return Saved(count)
    raise ProtocolError(f"unknown message type {kind}")


# --- encoders ----------------------------------------------------------------------------

_SYNC_STEP1_PREFIX = write_var_uint(MessageType.sync) + write_var_uint(SyncStep.step1)
_SYNC_STEP2_PREFIX = write_var_uint(MessageType.sync) + write_var_uint(SyncStep.step2)
_SYNC_UPDATE_PREFIX = write_var_uint(MessageType.sync) + write_var_uint(SyncStep.update)
_AWARENESS_PREFIX = write_var_uint(MessageType.awareness)


def encode_sync_step1(state_vector: bytes) -> bytes:
    return _SYNC_STEP1_PREFIX + write_var_bytes(state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return _SYNC_STEP2_PREFIX + write_var_bytes(update)


def encode_sync_update(update: bytes) -> bytes:
    return _SYNC_UPDATE_PREFIX + write_var_bytes(update)


def encode_awareness(update: bytes) -> bytes:
    return _AWARENESS_PREFIX + write_var_bytes(update)


def encode_query_awareness() -> bytes:
    return write_var_uint(MessageType.queryAwareness)


def encode_saved(count: int) -> bytes:
    return write_var_uint(MessageType.saved) + write_var_uint(count)


def encode_permission_denied(reason: str) -> bytes:
    return (
        write_var_uint(MessageType.auth)
        + write_var_uint(AuthMessage.permissionDenied)
        + write_var_string(reason)
    )


# --- state vectors -----------------------------------------------------------------------


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """``varUint(n)`` then n × (client id, clock): how far each client's edits reach."""
    count, pos = read_var_uint(state_vector, 0)
    if count > len(state_vector):
        raise ProtocolError("state vector entry count exceeds its size")
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, pos = read_var_uint(state_vector, pos)
        clock, pos = read_var_uint(state_vector, pos)
        clocks[client] = clock
    _expect_end(state_vector, pos)
    return clocks


# --- awareness updates -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state_json: str

    @property
    def removed(self) -> bool:
        """y-protocols marks a client's departure with the JSON state ``null``."""
        return self.state_json.strip() == "null"


def decode_awareness_update(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update: ``varUint(n)`` then n × (clientID, clock, JSON state)."""
    count, pos = read_var_uint(update, 0)
    # Each entry needs at least 3 bytes: a count above that is a lie that would loop long.
    if count > len(update):
        raise ProtocolError("awareness entry count exceeds the update size")
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client_id, pos = read_var_uint(update, pos)
        clock, pos = read_var_uint(update, pos)
        state, pos = read_var_string(update, pos)
        entries.append(AwarenessEntry(client_id, clock, state))
    _expect_end(update, pos)
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(write_var_string(entry.state_json))
    return b"".join(parts)


# An awareness update naming no client: y-websocket clients apply it as a no-op, but it is
# traffic their 30 s silence timer sees (WebSocket ping frames are invisible to JavaScript).
KEEPALIVE_FRAME = encode_awareness(encode_awareness_update([]))
