"""A room's presence (y-protocols awareness), where every client id has an owner.

A client id is a claim, not a fact: any connection could name another's id, overwrite its
state, remove it, or push its clock so high that the real client's next message is ignored (or
fails a bound). So an id belongs to the connection that introduced it, and only that connection
may change or remove it. The owner loses it when it closes (its ids are removed for everyone) or
when it stops renewing it for ``outdated`` seconds — y-protocols clients renew their state every
15 s and drop a peer's after 30 s, so such an id is dead for every client already: this lets a
client that reconnects while its old socket is still half-open take its id back.

Within an owner's messages the y-protocols rule holds (pycrdt's ``Awareness`` has the same):
a state is taken only with a newer clock, a removal also with the same one. pycrdt's class itself
does not fit here: it is a participant's view (its own local state, every state parsed into a
dict and dumped again) with no notion of owners.

Bounds: a connection owns at most ``max_ids`` ids whose states together hold at most
``max_bytes_per_connection`` bytes, and the room's states together at most ``max_room_bytes``:
one connection's presence can neither grow memory nor make the greeting every joiner receives
too large. Only strict JSON is kept: every client ``JSON.parse``\\ s what is relayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from . import protocol as p
from .contract import CloseCode
from .limits import TokenBucket
from .updates import strict_json

log = logging.getLogger("tandem.presence")


@dataclass(frozen=True, slots=True)
class PresenceLimits:
    max_ids: int = 4
    max_bytes_per_connection: int = 64 * 1024
    max_room_bytes: int = 1024 * 1024
    # Seconds without a renewal after which an owner's id may be taken by another connection.
    outdated: float = 30.0


@dataclass(slots=True)
class _State:
    entry: p.AwarenessEntry
    owner: Hashable
    size: int
    renewed: float


@dataclass(slots=True)
class _Owner:
    ids: set[int] = field(default_factory=set)
    size: int = 0


class Presence:
    def __init__(self, limits: PresenceLimits | None = None) -> None:
        self.limits = limits or PresenceLimits()
        self._states: dict[int, _State] = {}
        self._owners: dict[Hashable, _Owner] = {}
        self._size = 0
        # Awareness bytes each connection may send per second: everything it sends is relayed
        # to every peer, so a flood would overflow the outboxes of slow readers.
        self._rates: dict[Hashable, TokenBucket] = {}

    def __bool__(self) -> bool:
        return bool(self._states)

    def entries(self) -> list[p.AwarenessEntry]:
        return [state.entry for state in self._states.values()]

    def owners(self) -> list[Hashable]:
        return list(self._owners)

    def by_owner(self) -> dict[Hashable, list[p.AwarenessEntry]]:
        return {
            owner: [self._states[client_id].entry for client_id in sorted(held.ids)]
            for owner, held in self._owners.items()
        }

    def ids_of(self, owner: Hashable) -> set[int]:
        found = self._owners.get(owner)
        return set(found.ids) if found else set()

    @property
    def size(self) -> int:
        return self._size

    def apply(
        self, owner: Hashable, entries: list[p.AwarenessEntry], now: float | None = None
    ) -> list[p.AwarenessEntry]:
        """Take what ``owner`` may change; return the entries to relay. Raises
        :class:`ProtocolError` (1007 not JSON, 1008 over a bound) before changing anything."""
        now = time.monotonic() if now is None else now
        limits = self.limits
        rate = self._rates.get(owner)
        if rate is None:
            per_second = limits.max_bytes_per_connection
            rate = self._rates[owner] = TokenBucket(per_second, 4 * per_second)
        if not rate.take(sum(len(entry.state_json) + 16 for entry in entries)):
            raise p.ProtocolError(
                f"awareness over {limits.max_bytes_per_connection} bytes per second",
                CloseCode.policyViolation,
            )
        for entry in entries:
            if len(entry.state_json) > limits.max_bytes_per_connection:
                raise p.ProtocolError(
                    f"awareness state over {limits.max_bytes_per_connection} bytes",
                    CloseCode.policyViolation,
                )
            try:
                strict_json(entry.state_json)
            except (ValueError, UnicodeEncodeError, RecursionError) as exc:
                raise p.ProtocolError(
                    f"awareness state is not strict JSON: {exc}", CloseCode.invalidPayload
                ) from exc
        accepted: list[p.AwarenessEntry] = []
        for entry in entries:
            if self._take(owner, entry, now):
                accepted.append(entry)
        return accepted

    def _take(self, owner: Hashable, entry: p.AwarenessEntry, now: float) -> bool:
        client_id = entry.client_id
        current = self._states.get(client_id)
        if current is None:
            # A removal of an id nobody holds is not relayed: its clock would only teach the
            # clients a number that makes them ignore that id's real owner later.
            if entry.removed:
                return False
        else:
            if current.owner != owner:
                if now - current.renewed < self.limits.outdated:
                    log.info(
                        "ignored %s for awareness id %d: it belongs to another connection",
                        owner,
                        client_id,
                    )
                    return False
                log.info("awareness id %d taken over by %s (not renewed)", client_id, owner)
            if entry.clock < current.entry.clock or (
                entry.clock == current.entry.clock and not entry.removed
            ):
                return False  # stale: y-protocols keeps the newer clock
            if entry.removed:
                self._drop(client_id)
                return True
        mine = self._owners.get(owner)
        size = len(entry.state_json.encode())
        previous = current.size if current is not None and current.owner == owner else 0
        held = (mine.size if mine else 0) - previous
        if current is None or current.owner != owner:
            if mine is not None and len(mine.ids) >= self.limits.max_ids:
                raise p.ProtocolError(
                    f"more than {self.limits.max_ids} awareness ids from one connection",
                    CloseCode.policyViolation,
                )
        if held + size > self.limits.max_bytes_per_connection:
            raise p.ProtocolError(
                f"awareness states over {self.limits.max_bytes_per_connection} bytes "
                "from one connection",
                CloseCode.policyViolation,
            )
        replaced = current.size if current is not None else 0
        if self._size - replaced + size > self.limits.max_room_bytes:
            raise p.ProtocolError(
                f"this document's awareness states are over {self.limits.max_room_bytes} bytes",
                CloseCode.policyViolation,
            )
        if current is not None:
            self._drop(client_id)
        mine = self._owners.setdefault(owner, _Owner())
        mine.ids.add(client_id)
        mine.size += size
        self._size += size
        self._states[client_id] = _State(entry, owner, size, now)
        return True

    def _drop(self, client_id: int) -> _State:
        state = self._states.pop(client_id)
        self._size -= state.size
        holder = self._owners.get(state.owner)
        if holder is not None:
            holder.ids.discard(client_id)
            holder.size -= state.size
            if not holder.ids:
                del self._owners[state.owner]
        return state

    def leave(self, owner: Hashable) -> list[p.AwarenessEntry]:
        """``owner`` is gone: remove its ids; return the removals to broadcast."""
        self._rates.pop(owner, None)
        holder = self._owners.get(owner)
        if holder is None:
            return []
        gone = []
        for client_id in sorted(holder.ids):
            state = self._drop(client_id)
            gone.append(p.AwarenessEntry(client_id, state.entry.clock + 1, "null"))
        return gone
