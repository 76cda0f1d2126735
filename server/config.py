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
    # A SQLite file, or a postgresql:// URL (the store several instances share).
    db: Path | str = Path("tandem.db")
    # redis:// URL joining the instances that share a PostgreSQL store (None: one instance).
    redis: str | None = None
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
    # Automatic versions: after this many quiet seconds, and at most this often while editing.
    version_quiet: float = 120.0
    version_interval: float = 600.0
    # Search: a room's text is indexed once editing has paused this many seconds.
    index_quiet: float = 3.0
    # Access control: None is open mode. Origins allowed besides the server's own.
    auth_secret: str | None = None
    allowed_origins: tuple[str, ...] = ()
    # Host names served besides the defaults (see security.HostPolicy); "*" turns it off.
    allowed_hosts: tuple[str, ...] = ()
    public_url: str | None = None
    # Limits against hostile or broken clients.
    max_connections_per_ip: int = 64
    message_rate: float = 500.0  # messages per second, sustained, per connection
    message_burst: int = 10_000  # messages a connection may send at once
    max_awareness_bytes: int = 64 * 1024  # the awareness states of one connection, together
    max_awareness_ids: int = 4  # awareness client ids one connection may introduce
    max_room_awareness_bytes: int = 1024 * 1024  # the awareness states of one document
    max_rooms: int = 10_000  # documents loaded at once
    max_pending_updates: int = 1000  # updates waiting for missing dependencies, per room
    first_message_timeout: float = 30.0  # seconds a new connection may stay silent
    request_timeout: float = 20.0  # seconds for an HTTP request (headers and body) to complete
    new_room_rate: float = 10.0  # documents an address may load per second, sustained
    new_room_burst: int = 100  # ... and at once
    max_versions: int = 100  # named versions per document
    max_file_bytes: int = 10 * 1024 * 1024  # one uploaded file (an image); 413 above it
    # CPU-heavy requests (diff, export, restore): worker processes, time and size caps.
    workers: int = 1
    work_timeout: float = 10.0
    max_work_bytes: int = 16 * 1024 * 1024
    # Webhooks: where events go, the HMAC secret that signs them, each attempt's timeout, and
    # how long an event is retried before it is given up.
    webhooks: tuple[str, ...] = ()
    webhook_secret: str | None = None
    webhook_timeout: float = 10.0
    webhook_max_age: float = 86_400.0
