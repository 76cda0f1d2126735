"""What a receiver gets: the JSON body of an event and its headers, signed (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from ..storage.events import OutboxEvent

SIGNATURE_HEADER = "X-Tandem-Signature-256"


def body(event: OutboxEvent) -> bytes:
    """The same bytes on every attempt (made from what the outbox holds)."""
    fields: dict[str, object] = {
        "id": event.event_id,
        "event": event.kind,
        "document": event.doc,
        "time": datetime.fromtimestamp(event.created_at, UTC).isoformat(timespec="milliseconds"),
        "state_vector": base64.b64encode(event.state_vector).decode(),
    }
    if event.text_length is not None:
        fields["text_length"] = event.text_length
    if event.version_id is not None:
        fields["version"] = event.version_id
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, data: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of the body under the secret (as GitHub signs)."""
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def headers(secret: str, event: OutboxEvent, data: bytes, user_agent: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "X-Tandem-Event": event.kind,
        "X-Tandem-Event-Id": event.event_id,
        "X-Tandem-Delivery-Attempt": str(event.attempts + 1),
        SIGNATURE_HEADER: signature(secret, data),
    }
