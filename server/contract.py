"""The wire contract shared with the web client: message numbers and close codes.

Both sides read ``shared/protocol.json``; nothing here restates a number by hand.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Any


def _contract_path() -> Path:
    here = Path(__file__).resolve().parent
    # A source checkout (editable install) reads the repo's file; a wheel carries a copy.
    for candidate in (here.parent / "shared" / "protocol.json", here / "_shared" / "protocol.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("shared/protocol.json not found next to the server package")


CONTRACT: dict[str, Any] = json.loads(_contract_path().read_text(encoding="utf-8"))

MessageType = IntEnum("MessageType", CONTRACT["messageTypes"])  # type: ignore[misc]
SyncStep = IntEnum("SyncStep", CONTRACT["syncSteps"])  # type: ignore[misc]
AuthMessage = IntEnum("AuthMessage", CONTRACT["authMessages"])  # type: ignore[misc]
CloseCode = IntEnum("CloseCode", CONTRACT["closeCodes"])  # type: ignore[misc]

CONTENT_TEXT: str = CONTRACT["contentText"]
KEEPALIVE_SECONDS: float = float(CONTRACT["keepaliveSeconds"])
ACK_QUERY_PARAM: str = CONTRACT["ackQueryParam"]
NAME_PATTERN: str = CONTRACT["documentName"]["pattern"]
