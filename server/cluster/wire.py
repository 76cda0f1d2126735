"""What instances say to each other over Redis: pure, bounds-checked bytes in and out.

Every message starts with its kind (one byte), the sending instance's id (16 bytes) and the
wall-clock time it was sent (float64, for the cross-instance lag), then:

- ``U`` an update committed to the store: its sequence number (u64), then the update;
- ``A`` awareness from a connection of the sender: the connection's id (u64), then a
  y-protocols awareness update;
- ``L`` a connection of the sender left: its id (u64);
- ``Q`` the sender subscribed: everyone tells it the presence they hold of their clients;
- ``D`` the document was deleted (the time is when).

Nothing here trusts Redis: a message that does not parse is refused with ValueError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

INSTANCE_ID_BYTES = 16
_HEAD = struct.Struct(">c16sd")
_U64 = struct.Struct(">Q")

UPDATE, AWARENESS, LEFT, QUERY, DELETED = b"U", b"A", b"L", b"Q", b"D"
_KINDS = {UPDATE, AWARENESS, LEFT, QUERY, DELETED}
# Redis keys and channels all start with this.
PREFIX = "tandem:"


def channel(doc: str) -> bytes:
    """The pub/sub channel of one document."""
    return f"{PREFIX}doc:{doc}".encode()


def doc_of(channel_name: bytes) -> str:
    head = f"{PREFIX}doc:".encode()
    if not channel_name.startswith(head):
        raise ValueError(f"not a document channel: {channel_name[:64]!r}")
    return channel_name[len(head) :].decode()


def heartbeat_key(instance: bytes) -> str:
    """The key an instance keeps alive (with a TTL) while it runs."""
    return f"{PREFIX}instance:{instance.hex()}"


@dataclass(frozen=True, slots=True)
class Message:
    kind: bytes
    instance: bytes
    sent_at: float
    # U: the sequence number; A and L: the connection's id; Q and D: 0.
    number: int = 0
    # U: the update; A: the awareness update; otherwise empty.
    payload: bytes = b""


def encode(message: Message) -> bytes:
    head = _HEAD.pack(message.kind, message.instance, message.sent_at)
    if message.kind in (UPDATE, AWARENESS, LEFT):
        return head + _U64.pack(message.number) + message.payload
    return head


def sender(data: bytes) -> bytes:
    """The sending instance's id, read without decoding the rest."""
    return data[1 : 1 + INSTANCE_ID_BYTES]


def decode(data: bytes) -> Message:
    if len(data) < _HEAD.size:
        raise ValueError(f"message of {len(data)} bytes is shorter than its header")
    kind, instance, sent_at = _HEAD.unpack_from(data)
    if kind not in _KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    rest = data[_HEAD.size :]
    if kind in (QUERY, DELETED):
        if rest:
            raise ValueError(f"{kind.decode()} message with {len(rest)} trailing bytes")
        return Message(kind, instance, sent_at)
    if len(rest) < _U64.size:
        raise ValueError(f"{kind.decode()} message without its number")
    (number,) = _U64.unpack_from(rest)
    payload = rest[_U64.size :]
    if kind == LEFT and payload:
        raise ValueError(f"L message with {len(payload)} trailing bytes")
    if kind in (UPDATE, AWARENESS) and not payload:
        raise ValueError(f"{kind.decode()} message without its payload")
    return Message(kind, instance, sent_at, number, payload)
