"""The ``tandem`` command line. Every option also reads a TANDEM_* environment variable."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import click
from aiohttp import web

from .app import create_app
from .config import Settings
from .contract import KEEPALIVE_SECONDS
from .store import Store, StoreError

log = logging.getLogger("tandem")


@click.group(context_settings={"show_default": True})
@click.option(
    "--log-level",
    envvar="TANDEM_LOG_LEVEL",
    default="INFO",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def main(log_level: str) -> None:
    """Tandem: a collaborative editing server for Yjs clients, persisted to SQLite."""
    logging.basicConfig(
        level=getattr(logging, log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option("--host", envvar="TANDEM_HOST", default="127.0.0.1", help="Interface to listen on.")
@click.option(
    "--port",
    envvar="TANDEM_PORT",
    default=8000,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--db",
    envvar="TANDEM_DB",
    default="tandem.db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite database file (created if missing).",
)
@click.option(
    "--synchronous",
    envvar="TANDEM_SYNCHRONOUS",
    default="FULL",
    type=click.Choice(["FULL", "NORMAL"]),
    help="SQLite synchronous: FULL survives power loss, NORMAL only a process crash.",
)
@click.option(
    "--max-message-size",
    envvar="TANDEM_MAX_MESSAGE_SIZE",
    default=32 * 1024 * 1024,
    type=click.IntRange(1024),
    help="Largest incoming WebSocket message in bytes (1009 above it).",
)
@click.option(
    "--outbox-limit",
    envvar="TANDEM_OUTBOX_LIMIT",
    default=16 * 1024 * 1024,
    type=click.IntRange(1024),
    help="Bytes queued for a client that does not read before it is cut off (1008).",
)
@click.option(
    "--grace-period",
    envvar="TANDEM_GRACE_PERIOD",
    default=30.0,
    type=click.FloatRange(0),
    help="Seconds an empty room stays loaded before it is unloaded.",
)
@click.option(
    "--compact-updates",
    envvar="TANDEM_COMPACT_UPDATES",
    default=500,
    type=click.IntRange(2),
    help="Compact a document's log after this many updates...",
)
@click.option(
    "--compact-bytes",
    envvar="TANDEM_COMPACT_BYTES",
    default=1024 * 1024,
    type=click.IntRange(1),
    help="...or after this many bytes of updates.",
)
@click.option(
    "--keepalive",
    envvar="TANDEM_KEEPALIVE",
    default=KEEPALIVE_SECONDS,
    type=click.FloatRange(0.1),
    help="Seconds of silence after which a client gets a no-op frame.",
)
@click.option(
    "--client-dir",
    envvar="TANDEM_CLIENT_DIR",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Built web client to serve (default: client_web/dist).",
)
def serve(**options: object) -> None:
    """Run the server until SIGTERM or SIGINT, then flush and exit 0."""
    settings = Settings(**options)  # type: ignore[arg-type]
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    runner = web.AppRunner(create_app(settings), handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    for address in runner.addresses:
        host, port = address[0], address[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("Tandem listening on http://%s:%d (db %s)", shown, port, settings.db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: closing connections and flushing the store")
    await runner.cleanup()
    log.info("stopped")


def _db_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--db",
        envvar="TANDEM_DB",
        default="tandem.db",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="SQLite database file (the server's).",
    )(fn)


async def _open_existing(db: Path) -> Store:
    try:
        return await Store.open(db)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@_db_option
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
def backup(dest: Path, db: Path, overwrite: bool) -> None:
    """Copy the database to DEST consistently, even while the server runs."""
    if dest.exists() and not overwrite:
        raise click.ClickException(f"{dest} exists (use --overwrite to replace it)")
    if dest.resolve() == db.resolve():
        raise click.ClickException("DEST is the database itself")

    async def run() -> None:
        store = await _open_existing(db)
        try:
            await store.backup(dest)
        finally:
            await store.close()

    asyncio.run(run())
    click.echo(f"backed up {db} to {dest}")
