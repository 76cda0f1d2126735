"""The ``tandem`` command line. Every option also reads a TANDEM_* environment variable.

``--db`` is a SQLite file or a ``postgresql://`` URL. The document commands (list, export,
versions, import, backup) open the same store the server uses and work while it runs (WAL lets
readers and one writer share a SQLite file; PostgreSQL takes any number of clients).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from aiohttp import web

from . import __version__
from .app import create_app
from .auth import Role, check_secret, check_subject, mint
from .cluster import ClusterError
from .config import Settings
from .contract import KEEPALIVE_SECONDS
from .documents import Conflict, Documents, NotFound
from .exports import FORMATS, UnknownFormat
from .names import BadDocumentName, check_document_name
from .rooms import DetachedRooms
from .storage import Store, StoreError, is_postgres, open_store

log = logging.getLogger("tandem")
T = TypeVar("T")
_defaults = Settings()


def _env(name: str) -> str:
    return "TANDEM_" + name.upper().replace("-", "_")


def option(
    name: str, *dest: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option that also reads TANDEM_<NAME>."""
    return click.option(f"--{name}", *dest, envvar=_env(name), show_envvar=True, **kwargs)


class Database(click.ParamType):
    """``--db``: a ``postgresql://`` URL as it is (the store says what is wrong with it when it
    connects), anything else a SQLite file."""

    name = "PATH|URL"

    def __init__(self, exists: bool) -> None:
        self._file = click.Path(exists=exists, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and is_postgres(value):
            return value
        return self._file.convert(value, param, ctx)


def _shown(location: Path | str) -> str:
    """A --db or --redis value for messages and logs: never with its password."""
    from .storage.postgres import redacted  # asyncpg is imported only for URLs

    return redacted(str(location)) if "://" in str(location) else str(location)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@click.group(context_settings={"show_default": True, "max_content_width": 100})
@click.version_option(__version__, message="tandem %(version)s")
@option("log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def main(log_level: str) -> None:
    """Tandem: a collaborative editing server for Yjs clients, persisted to SQLite or
    PostgreSQL."""
    logging.basicConfig(
        level=getattr(logging, log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One access-log line per request is noise at this level; errors are logged anyway.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# --- serve ---------------------------------------------------------------------------------


@main.command()
@option("host", default=_defaults.host, help="Interface to listen on.")
@option("port", default=_defaults.port, type=click.IntRange(0, 65535), help="0 picks a free port.")
@option(
    "db",
    default="tandem.db",
    type=Database(exists=False),
    help="SQLite database file (created if missing), or a postgresql:// URL (migrated if needed).",
)
@option(
    "redis",
    default=None,
    help="redis:// URL joining the instances that share a PostgreSQL --db.",
)
@option(
    "synchronous",
    default=_defaults.synchronous,
    type=click.Choice(["FULL", "NORMAL"]),
    help="SQLite synchronous: FULL survives power loss, NORMAL only a process crash.",
)
@option(
    "max-message-size",
    default=_defaults.max_message_size,
    type=click.IntRange(1024),
    help="Largest incoming WebSocket message in bytes (1009 above it).",
)
@option(
    "outbox-limit",
    default=_defaults.outbox_limit,
    type=click.IntRange(1024),
    help="Bytes queued for a client that does not read before it is cut off (1008).",
)
@option(
    "grace-period",
    default=_defaults.grace_period,
    type=click.FloatRange(0),
    help="Seconds an empty room stays loaded before it is unloaded.",
)
@option(
    "compact-updates",
    default=_defaults.compact_updates,
    type=click.IntRange(2),
    help="Compact a document's log after this many updates...",
)
@option(
    "compact-bytes",
    default=_defaults.compact_bytes,
    type=click.IntRange(1),
    help="...or after this many bytes of updates.",
)
@option(
    "keepalive",
    default=KEEPALIVE_SECONDS,
    type=click.FloatRange(0.1),
    help="Seconds of silence after which a client gets a no-op frame.",
)
@option(
    "client-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Built web client to serve (default: the one packaged, or client_web/dist).",
)
@option(
    "version-quiet",
    default=_defaults.version_quiet,
    type=click.FloatRange(0.1),
    help="Save an automatic version after this many seconds without edits...",
)
@option(
    "version-interval",
    default=_defaults.version_interval,
    type=click.FloatRange(0.1),
    help="...and at least this often while editing goes on.",
)
@option(
    "index-quiet",
    default=_defaults.index_quiet,
    type=click.FloatRange(0.1),
    help="Index a document for search once editing has paused this many seconds.",
)
@option(
    "auth-secret",
    default=None,
    help="HS256 secret: every WebSocket and API request then needs a token.",
)
@option(
    "webhook",
    "webhooks",
    multiple=True,
    help="An http(s) URL that gets document events, signed (repeatable; needs --webhook-secret).",
)
@option(
    "webhook-secret",
    default=None,
    help="The HMAC-SHA256 key of X-Tandem-Signature-256 (at least 32 bytes).",
)
@option(
    "webhook-timeout",
    default=_defaults.webhook_timeout,
    type=click.FloatRange(0.5, 300),
    help="Seconds one delivery attempt may take.",
)
@option(
    "webhook-max-age",
    default=_defaults.webhook_max_age,
    type=click.FloatRange(1),
    help="Seconds an undelivered event is retried before it is given up.",
)
@option(
    "allowed-origin",
    "allowed_origins",
    multiple=True,
    help="A browser origin allowed besides the server's own (repeatable).",
)
@option(
    "allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A Host name to answer to besides the defaults (repeatable); '*' for any.",
)
@option(
    "public-url",
    default=None,
    help="The address people use (e.g. https://tandem.example.com): its host is served.",
)
@option(
    "max-connections-per-ip",
    default=_defaults.max_connections_per_ip,
    type=click.IntRange(1),
    help="Open WebSockets per client address (1008 above it).",
)
@option(
    "message-rate",
    default=_defaults.message_rate,
    type=click.FloatRange(0.1),
    help="Messages per second a connection may send, sustained (1008 above it).",
)
@option(
    "message-burst",
    default=_defaults.message_burst,
    type=click.IntRange(1),
    help="Messages a connection may send at once.",
)
@option(
    "max-awareness-bytes",
    default=_defaults.max_awareness_bytes,
    type=click.IntRange(16),
    help="Awareness states of one connection, together, in bytes (1008 above it).",
)
@option(
    "max-awareness-ids",
    default=_defaults.max_awareness_ids,
    type=click.IntRange(1),
    help="Awareness client ids one connection may introduce (1008 above it).",
)
@option(
    "max-room-awareness-bytes",
    default=_defaults.max_room_awareness_bytes,
    type=click.IntRange(1024),
    help="Awareness states of one document, together, in bytes (1008 to whoever passes it).",
)
@option(
    "max-rooms",
    default=_defaults.max_rooms,
    type=click.IntRange(1),
    help="Documents loaded at once (1013, try again later, above it).",
)
@option(
    "max-pending-updates",
    default=_defaults.max_pending_updates,
    type=click.IntRange(1),
    help="Updates waiting for missing dependencies per document (1008 above it).",
)
@option(
    "first-message-timeout",
    default=_defaults.first_message_timeout,
    type=click.FloatRange(0.1),
    help="Seconds a new connection may stay silent (1008 after it).",
)
@option(
    "request-timeout",
    default=_defaults.request_timeout,
    type=click.FloatRange(1),
    help="Seconds an HTTP request or WebSocket handshake may take to arrive (closed after).",
)
@option(
    "new-room-rate",
    default=_defaults.new_room_rate,
    type=click.FloatRange(0.01),
    help="Documents one address may load into memory per second (1013 above it)...",
)
@option(
    "new-room-burst",
    default=_defaults.new_room_burst,
    type=click.IntRange(1),
    help="...and at once.",
)
@option(
    "max-versions",
    default=_defaults.max_versions,
    type=click.IntRange(1),
    help="Named versions per document (409 above it).",
)
@option(
    "max-file-bytes",
    default=_defaults.max_file_bytes,
    type=click.IntRange(1),
    help="Largest file (image) one upload may hold, in bytes (413 above it).",
)
@option(
    "workers",
    default=_defaults.workers,
    type=click.IntRange(1),
    help="Processes for CPU-heavy requests (diffs, exports, restores).",
)
@option(
    "work-timeout",
    default=_defaults.work_timeout,
    type=click.FloatRange(0.1),
    help="Seconds a diff, export or restore may compute (503 after).",
)
@option(
    "max-work-bytes",
    default=_defaults.max_work_bytes,
    type=click.IntRange(1024),
    help="Largest state or text a diff, export or restore takes (413 above it).",
)
def serve(**options: Any) -> None:
    """Run the server until SIGTERM or SIGINT, then flush and exit 0."""
    options["allowed_origins"] = tuple(o.rstrip("/") for o in options["allowed_origins"])
    options["allowed_hosts"] = tuple(options["allowed_hosts"])
    if options["auth_secret"] is None and os.environ.get(_env("auth-secret")) == "":
        options["auth_secret"] = ""  # click reads an empty variable as unset: refuse it too
    if options["auth_secret"] is not None:
        options["auth_secret"] = _secret(options["auth_secret"])
    _check_cluster(options["db"], options["redis"])
    options["webhooks"] = _webhooks(options["webhooks"], options["webhook_secret"])
    settings = Settings(**options)
    asyncio.run(_serve(settings))


def _check_cluster(db: Path | str, redis: str | None) -> None:
    if redis is None:
        return
    if not is_postgres(db):
        raise click.ClickException(
            "--redis joins instances that share one PostgreSQL store, and instances on several "
            "machines cannot share one SQLite file: give --db a postgresql:// URL"
        )
    if not redis.startswith(("redis://", "rediss://", "unix://")):
        raise click.ClickException(
            f"--redis must be a redis://, rediss:// or unix:// URL, not {_shown(redis)!r}"
        )


def _webhooks(urls: tuple[str, ...], secret: str | None) -> tuple[str, ...]:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--webhook")
    if urls and secret is None:
        raise click.BadParameter(
            "--webhook needs --webhook-secret: receivers check each event's signature",
            param_hint="--webhook-secret",
        )
    if secret is not None:
        try:
            check_secret(secret)
        except ValueError as exc:
            message = str(exc).replace("auth secret", "webhook secret")
            raise click.BadParameter(message, param_hint="--webhook-secret") from exc
    return tuple(dict.fromkeys(urls))  # each once


def _secret(value: str) -> str:
    try:
        return check_secret(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--auth-secret") from exc


async def _serve(settings: Settings) -> None:
    runner = web.AppRunner(
        create_app(settings),
        handle_signals=False,
        shutdown_timeout=10,
        access_log=None,
        # A connection that has not sent a whole request by then (a half-open handshake,
        # an idle keep-alive) is closed: otherwise idle sockets pile up until no file
        # descriptor is left.
        keepalive_timeout=settings.request_timeout,
    )
    try:
        await runner.setup()  # opens the store (and joins the cluster): bad --db, --redis
    except (StoreError, ClusterError) as exc:
        await runner.cleanup()  # whatever did start, before saying why it cannot
        raise click.ClickException(_one_line(exc)) from exc
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    for address in runner.addresses:
        host, port = address[0], address[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("Tandem listening on http://%s:%d (db %s)", shown, port, _shown(settings.db))
    if settings.auth_secret is None:
        log.warning("open mode: no --auth-secret, everyone may read and write every document")
    if (
        not settings.allowed_hosts
        and not settings.public_url
        and settings.host
        not in (
            "127.0.0.1",
            "localhost",
            "::1",
        )
    ):
        log.warning(
            "listening beyond loopback: only IP addresses and this machine's names are served "
            "as Host; add --public-url or --allowed-host for the name people use"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: closing connections and flushing the store")
    await runner.cleanup()
    log.info("stopped")


# --- document commands ------------------------------------------------------------------------


def _db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return option(
        "db",
        default="tandem.db",
        type=Database(exists=True),
        help="The server's SQLite database file, or its postgresql:// URL.",
    )(fn)


def _name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_document_name(value)
    except BadDocumentName as exc:
        raise click.BadParameter(str(exc)) from exc


def _with_store(db: Path | str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        try:
            store = await open_store(db)
        except StoreError as exc:
            raise click.ClickException(_one_line(exc)) from exc
        try:
            return await work(store)
        except (NotFound, StoreError) as exc:
            raise click.ClickException(_one_line(exc)) from exc
        finally:
            await store.close()

    return asyncio.run(run())


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


@main.command("list")
@_db_option
def list_documents(db: Path | str) -> None:
    """List the stored documents."""
    docs = _with_store(db, lambda store: store.list_documents())
    if not docs:
        click.echo("no documents")
        return
    width = max(len(d.name) for d in docs)
    click.echo(f"{'NAME':<{width}}  {'BYTES':>10}  LAST CHANGE")
    for d in docs:
        click.echo(f"{d.name:<{width}}  {d.size_bytes:>10}  {_when(d.updated_at)}")


@main.command()
@click.argument("name", callback=_name)
@_db_option
@click.option("--format", "fmt", default="md", type=click.Choice(FORMATS), help="Export format.")
@click.option("--version", "version", type=click.IntRange(1), help="A saved version's id.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
def export(name: str, db: Path | str, fmt: str, version: int | None, output: Path | None) -> None:
    """Export a document (or one of its versions); to stdout without -o."""

    async def work(store: Store) -> bytes:
        try:
            rendered = await Documents(store, DetachedRooms(store)).export(name, fmt, version)
        except UnknownFormat as exc:
            raise click.ClickException(str(exc)) from exc
        return rendered.body

    body = _with_store(db, work)
    if output is None:
        sys.stdout.buffer.write(body)
    else:
        output.write_bytes(body)
        click.echo(f"wrote {len(body)} bytes to {output}", err=True)


@main.command()
@click.argument("name", callback=_name)
@_db_option
def versions(name: str, db: Path | str) -> None:
    """List a document's saved versions, newest first."""
    found = _with_store(db, lambda store: Documents(store, DetachedRooms(store)).versions(name))
    if not found:
        click.echo("no versions")
        return
    click.echo(f"{'NUMBER':>6}  {'ID':>6}  {'SAVED':<19}  {'BYTES':>9}  KIND   LABEL")
    for v in found:
        kind = "auto" if v.auto else "named"
        click.echo(
            f"{v.number:>6}  {v.id:>6}  {_when(v.created_at):<19}  {v.size_bytes:>9}  {kind:<5}  "
            f"{v.label or ''}"
        )


@main.command("import")
@click.argument("name", callback=_name)
@click.argument("file", type=click.File("rb"))
@_db_option
def import_document(name: str, file: Any, db: Path | str) -> None:
    """Fill a new or empty document with a text or Markdown FILE ('-' for stdin).

    A document that already has text is refused: importing over CRDT state would duplicate
    the text in every editor that holds it. Import into a document open in a running server
    through the HTTP API, so its editors receive it at once.
    """
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException("the file is not UTF-8 text") from exc

    async def work(store: Store) -> None:
        try:
            await Documents(store, DetachedRooms(store)).import_text(name, text)
        except Conflict as exc:
            raise click.ClickException(str(exc)) from exc
        await store.flush()

    _with_store(db, work)
    click.echo(f"imported {len(text)} characters into {name}")


@main.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@_db_option
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
def backup(dest: Path, db: Path | str, overwrite: bool) -> None:
    """Copy the SQLite database to DEST consistently, even while the server runs (PostgreSQL:
    use pg_dump)."""
    if dest.exists() and not overwrite:
        raise click.ClickException(f"{dest} exists (use --overwrite to replace it)")
    if is_postgres(db):  # said without connecting (nor migrating a database to say it)
        from .storage.postgres import backup_hint

        raise click.ClickException(backup_hint(str(db), dest))
    if isinstance(db, Path) and dest.resolve() == db.resolve():
        raise click.ClickException("DEST is the database itself")
    _with_store(db, lambda store: store.backup(dest))
    click.echo(f"backed up {db} to {dest}")


_TTL = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _ttl(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    match = _TTL.match(value.strip())
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter("use a duration like 90s, 30m, 1h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@main.command()
@click.argument("scope")
@click.option("--role", type=click.Choice([r.name for r in Role]), default="write")
@click.option("--ttl", default="1h", callback=_ttl, help="Lifetime: 90s, 30m, 1h, 7d.")
@click.option("--subject", help="Who holds it (the token's `sub`): shown as the author of edits.")
@option("auth-secret", required=True, help="The server's --auth-secret.")
def token(scope: str, role: str, ttl: float, subject: str | None, auth_secret: str) -> None:
    """Mint an access token for SCOPE: a document name, a prefix ending in '/', or '*'."""
    auth_secret = _secret(auth_secret)
    if subject is not None:
        try:
            check_subject(subject)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--subject") from exc
    if scope != "*":
        try:
            check_document_name(scope.rstrip("/") or "x")
        except BadDocumentName as exc:
            raise click.BadParameter(str(exc), param_hint="SCOPE") from exc
    click.echo(mint(auth_secret, scope, Role[role], ttl, subject))
