"""The installable package (issue 16): the wheel, installed into a fresh venv, serves the editor.

The wheel is built from this checkout (hatch_build.py puts the built client in it), installed
with its dependencies into a new venv, and ``tandem serve`` runs from an empty directory, so
nothing from the checkout can stand in for what the wheel lacks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
CONTRACT = json.loads((REPO_ROOT / "shared" / "protocol.json").read_text())
BUNDLE = ("index.html", "editor.html", "home.js", "editor.js", "style.css", "sw.js", "favicon.svg")
_LISTENING = re.compile(r"Tandem listening on (http://\S+)")


@dataclass
class Installed:
    wheel: Path
    venv: Path
    empty: Path  # a cwd with nothing of the checkout in it
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *cmd: str) -> str:
        done = subprocess.run(
            cmd, cwd=self.empty, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _check(cmd: list[str], what: str, timeout: float) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{what} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("package")
    started = time.monotonic()
    # pip builds in isolation (hatchling from the index) straight from the source tree.
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp / "wheels")]
    _check([*build, str(REPO_ROOT)], "building the wheel", 300)
    (wheel,) = (tmp / "wheels").glob("tandem-*.whl")
    # No pip in the venv (the faster half of creating one): this pip installs into it.
    venv.create(tmp / "venv", with_pip=False)
    target = str(tmp / "venv" / "bin" / "python")
    _check([*pip, "--python", target, "install", "--quiet", str(wheel)], "installing", 300)
    print(f"built and installed in {time.monotonic() - started:.1f} s")
    empty = tmp / "empty"
    empty.mkdir()
    # Nothing may point back at the checkout or at the test's own venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    return Installed(wheel, tmp / "venv", empty, env)


def test_wheel_holds_the_client_and_the_contract(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {f"server/_client/{file}" for file in BUNDLE} <= names
    assert "server/_shared/protocol.json" in names
    assert not any(name.startswith("client_web/") for name in names)


def test_version(installed: Installed) -> None:
    assert installed.run(installed.bin("tandem"), "--version").strip() == f"tandem {VERSION}"
    python = installed.bin("python")
    assert installed.run(python, "-m", "server", "--version").strip() == f"tandem {VERSION}"


def test_imports_from_the_venv(installed: Installed) -> None:
    code = "import server.app as a, server.contract as c\n"
    code += "print(a.DEFAULT_CLIENT_DIR, c._contract_path())"
    client, contract = installed.run(installed.bin("python"), "-c", code).split()
    site = installed.venv.resolve()
    assert Path(client).is_relative_to(site) and Path(client).name == "_client"
    assert Path(contract).is_relative_to(site)


class _Refs(HTMLParser):
    """The ``<script src>`` and stylesheet ``<link href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.scripts.append(found["src"] or "")
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.styles.append(found["href"] or "")


def _get(url: str, data: bytes | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read().decode("utf-8")
        return response.status, response.headers.get("Content-Type", ""), body


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[str]:
    db = installed.empty.parent / "t.db"
    proc = subprocess.Popen(
        [installed.bin("tandem"), "serve", "--port", "0", "--db", str(db)],
        cwd=installed.empty,
        env=installed.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    url: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if match := _LISTENING.search(line):
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not found.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("tandem serve did not start:\n" + "".join(log[-40:]))
    try:
        yield url[0]
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(5)


def test_serves_the_editor_from_an_empty_directory(served: str) -> None:
    status, kind, home = _get(served + "/")
    assert status == 200 and kind.startswith("text/html") and "<html" in home.lower()
    status, kind, page = _get(served + "/d/somename")
    assert status == 200 and kind.startswith("text/html")

    refs = _Refs()
    refs.feed(page)
    assert any("/static/editor.js" in src for src in refs.scripts), refs.scripts
    for src in refs.scripts:
        status, kind, script = _get(served + src)
        assert status == 200 and "javascript" in kind, (src, kind)
        if "/static/editor.js" in src:
            # The bundle carries the shared contract (esbuild inlines protocol.json).
            assert json.dumps(CONTRACT["documentName"]["pattern"]) in script
    for href in refs.styles:
        status, kind, _ = _get(served + href)
        assert status == 200 and kind.startswith("text/css"), (href, kind)
    status, kind, _ = _get(served + "/sw.js")
    assert status == 200 and "javascript" in kind


def test_stores_and_exports_a_document(served: str) -> None:
    status, _, _ = _get(served + "/api/docs/pkg/import", data=b"# Packaged\n")
    assert status == 201
    status, _, exported = _get(served + "/api/docs/pkg/export?format=md")
    assert status == 200 and "# Packaged" in exported
