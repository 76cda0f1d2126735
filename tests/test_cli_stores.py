"""The ``tandem`` command on either store: the document commands and a server on PostgreSQL, and
the refusals at start (a bad --db or --redis) as one line and a non-zero exit, never a
traceback. The real CLI in a subprocess, on the session's real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from testkit.serverproc import REPO_ROOT, ServerProcess
from testkit.services import Postgres, free_port
from testkit.yclient import YClient

from .conftest import unique


def tandem(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints (asserting it is one, with a non-zero exit)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def password_role(postgres: Postgres) -> Iterator[tuple[str, str]]:
    """A role that must give its password (the test server trusts everyone else), and it."""
    hba = postgres.dir / "data" / "pg_hba.conf"
    original = hba.read_text()
    postgres.psql("CREATE ROLE tandem_pw LOGIN PASSWORD 'right-secret'")
    hba.write_text("host all tandem_pw 127.0.0.1/32 scram-sha-256\n" + original)
    postgres.psql("SELECT pg_reload_conf()")
    yield "tandem_pw", "right-secret"
    hba.write_text(original)
    postgres.psql("SELECT pg_reload_conf()")


def role_database(postgres: Postgres, role: str) -> str:
    """A fresh database owned by ``role`` (so it may create Tandem's tables); its name."""
    name = database_of(postgres.new_database())
    postgres.psql(f"ALTER DATABASE {name} OWNER TO {role}")
    return name


def test_the_document_commands_work_on_a_postgres_database(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.new_database()
    text = "# Notes\n\n- from a file\n- into PostgreSQL\n"
    source = tmp_path / "notes.md"
    source.write_text(text)

    imported = tandem("import", "team/notes", str(source), "--db", url)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(text)} characters" in imported.stdout
    listing = tandem("list", "--db", url)
    assert listing.returncode == 0 and "team/notes" in listing.stdout
    # TANDEM_DB takes a URL as well.
    assert "team/notes" in tandem("list", env={"TANDEM_DB": url}).stdout
    listed = tandem("versions", "team/notes", "--db", url)
    assert listed.returncode == 0 and listed.stdout.strip() == "no versions"
    for fmt in ("md", "txt"):
        exported = tandem("export", "team/notes", "--format", fmt, "--db", url)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout == text
    out = tmp_path / "notes.html"
    html = tandem("export", "team/notes", "--format", "html", "-o", str(out), "--db", url)
    assert html.returncode == 0 and '<h1 id="notes">Notes</h1>' in out.read_text()

    assert "already has content" in refused(
        tandem("import", "team/notes", str(source), "--db", url)
    )
    assert "no document named 'nope'" in refused(tandem("export", "nope", "--db", url))


def test_backup_of_a_postgres_database_says_to_use_pg_dump(
    postgres: Postgres, tmp_path: Path
) -> None:
    dest = tmp_path / "copy.db"
    line = refused(tandem("backup", str(dest), "--db", postgres.new_database()))
    assert "pg_dump" in line
    assert not dest.exists()


def test_backup_of_a_sqlite_file_still_copies_it(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    source = tmp_path / "a.txt"
    source.write_text("kept\n")
    assert tandem("import", "a", str(source), "--db", str(db)).returncode != 0  # must exist
    db.touch()
    assert tandem("import", "a", str(source), "--db", str(db)).returncode == 0
    copied = tandem("backup", str(tmp_path / "copy.db"), "--db", str(db))
    assert copied.returncode == 0, copied.stderr
    assert tandem("export", "a", "--db", str(tmp_path / "copy.db")).stdout == "kept\n"


def test_serve_refuses_redis_with_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "some.db"
    line = refused(tandem("serve", "--redis", "redis://x", "--db", str(db), "--port", "0"))
    assert "SQLite" in line and "postgresql://" in line
    line = refused(
        tandem("serve", "--db", str(db), "--port", "0", env={"TANDEM_REDIS": "redis://x"})
    )
    assert "SQLite" in line
    assert not db.exists()  # refused before anything was opened


@pytest.mark.parametrize("value", ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis//x"])
def test_serve_refuses_a_redis_value_that_is_not_a_redis_url(
    postgres: Postgres, value: str
) -> None:
    line = refused(tandem("serve", "--redis", value, "--db", postgres.url(), "--port", "0"))
    assert "redis://" in line


def test_serve_refuses_a_redis_it_cannot_reach(postgres: Postgres) -> None:
    url = postgres.new_database()
    assert tandem("list", "--db", url).returncode == 0  # migrated: no log line before the refusal
    redis = f"redis://:hidden@127.0.0.1:{free_port()}/0"
    line = refused(tandem("serve", "--db", url, "--redis", redis, "--port", "0"))
    assert "Redis" in line and "hidden" not in line


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unreachable", "Connect call failed"),
        ("unknown user", 'role "nobody" does not exist'),
        ("unknown database", 'database "no_such_db" does not exist'),
        ("malformed", "postgresql://[bad"),
        ("bad port", "cannot connect"),
        ("wrong password", "password authentication failed"),
        ("no right to create tables", "permission denied"),
    ],
)
def test_serve_refuses_a_postgres_it_cannot_use(
    postgres: Postgres, password_role: tuple[str, str], case: str, expected: str
) -> None:
    role, password = password_role
    here = f"127.0.0.1:{postgres.port}"
    url = {
        "unreachable": f"postgresql://nobody@127.0.0.1:{free_port()}/x",
        "unknown user": f"postgresql://nobody@{here}/postgres",
        "unknown database": f"postgresql://{postgres.user}@{here}/no_such_db",
        "malformed": "postgresql://[bad",
        "bad port": f"postgresql://{postgres.user}:pw@127.0.0.1:notaport/x",
        "wrong password": f"postgresql://{role}:not-{password}@{here}/postgres",
        # A database it may connect to but not create tables in (PostgreSQL 15's default).
        "no right to create tables": f"postgresql://{role}:{password}@{here}/"
        + database_of(postgres.new_database()),
    }[case]
    line = refused(tandem("serve", "--db", url, "--port", "0"))
    assert expected in line
    assert password not in line
    # The document commands say the same, just as briefly.
    assert expected in refused(tandem("list", "--db", url))


def test_serve_refuses_a_database_from_a_newer_tandem(postgres: Postgres) -> None:
    url = postgres.new_database()
    assert tandem("list", "--db", url).returncode == 0  # migrates it
    postgres.psql("UPDATE tandem_schema SET version = 99", database_of(url))
    assert "newer" in refused(tandem("serve", "--db", url, "--port", "0"))
    assert "newer" in refused(tandem("list", "--db", url))


async def test_a_server_on_postgres_serves_a_document_end_to_end(
    postgres: Postgres, password_role: tuple[str, str], http: aiohttp.ClientSession
) -> None:
    role, password = password_role
    url = f"postgresql://{role}:{password}@127.0.0.1:{postgres.port}/"
    url += role_database(postgres, role)
    name = unique("pg/plan")
    server = ServerProcess(url, "--keepalive", "2").start()  # type: ignore[arg-type]
    try:
        listening = [line for line in server.log if "Tandem listening" in line]
        assert listening and f"{role}:***@" in listening[0]
        writer = await YClient(http, server.ws_url, name).connect()
        await writer.append("# Plan\n\n- ship it on PostgreSQL\n")
        await writer.wait_acked()
        async with http.post(
            f"{server.url}/api/docs/{name}/versions", json={"label": "v1"}
        ) as resp:
            assert resp.status in (200, 201), await resp.text()
        # The CLI reads the database the server writes, while it runs.
        assert name in tandem("list", "--db", url).stdout
        listed = tandem("versions", name, "--db", url)
        assert "v1" in listed.stdout and "named" in listed.stdout
        exported = tandem("export", name, "--format", "txt", "--db", url)
        assert exported.stdout == "# Plan\n\n- ship it on PostgreSQL\n", exported.stderr
        # A second client of the same server reads what the first wrote.
        reader = await YClient(http, server.ws_url, name, ack=False).connect()
        assert reader.content() == "# Plan\n\n- ship it on PostgreSQL\n"
        await reader.close()
        await writer.close()
        assert server.stop() == 0
        assert password not in server.log_text()
    finally:
        server.kill()
    # After a clean stop (the log compacted on the way out), the text is all there.
    assert tandem("export", name, "--db", url).stdout == "# Plan\n\n- ship it on PostgreSQL\n"
    again = ServerProcess(url).start()  # type: ignore[arg-type]
    try:
        reader = await YClient(http, again.ws_url, name, ack=False).connect()
        assert reader.content() == "# Plan\n\n- ship it on PostgreSQL\n"
        await reader.close()
    finally:
        again.kill()
