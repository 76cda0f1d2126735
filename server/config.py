"""Server settings: one frozen dataclass, filled by the CLI (flags or TANDEM_* variables)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .contract import KEEPALIVE_SECONDS

Synchronous = Literal["FULL", "NORMAL"]


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    db: Path = Path("tandem.db")
    # FULL: a commit survives power loss; NORMAL (WAL): survives a process crash only.
    synchronous: Synchronous = "FULL"
    max_message_size: int = 32 * 1024 * 1024
    # Bytes queued for one slow reader before it is cut off (1008); one frame may exceed it.
    outbox_limit: int = 16 * 1024 * 1024
    # Seconds a room with no peers stays loaded before it is flushed and unloaded.
    grace_period: float = 30.0
    # A document's update log is merged into one snapshot once its tail passes either bound.
    compact_updates: int = 500
    compact_bytes: int = 1024 * 1024
    keepalive: float = KEEPALIVE_SECONDS
    client_dir: Path | None = None
