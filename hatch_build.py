"""Hatch build hook: puts the built web client into the wheel (as ``server/_client``) and the sdist.

The wheel alone must serve the editor, so the bundle esbuild writes to ``client_web/dist`` rides
along; it is rebuilt first when missing or older than its sources (node and npm are then needed,
as for ``make setup``). An editable install serves ``client_web/dist`` from the checkout instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# What build.mjs writes on every build; their mtimes tell whether dist is older than its sources.
OUTPUTS = ("index.html", "editor.html", "home.js", "editor.js", "style.css", "sw.js", "favicon.svg")


def _sources(root: Path) -> list[Path]:
    client = root / "client_web"
    found = [p for p in (client / "src").rglob("*") if p.is_file()]
    extra = ("build.mjs", "package.json", "package-lock.json")
    found += [client / name for name in extra]
    found.append(root / "shared" / "protocol.json")
    return [p for p in found if p.is_file()]


def _stale(root: Path) -> bool:
    dist = root / "client_web" / "dist"
    outputs = [dist / name for name in OUTPUTS]
    if not all(p.is_file() for p in outputs):
        return True
    sources = _sources(root)
    if not sources:  # no sources to build from (an unusual sdist): ship what is there
        return False
    # Strictly newer: an sdist unpacks every file with one mtime, and that is not stale.
    return max(p.stat().st_mtime for p in sources) > min(p.stat().st_mtime for p in outputs)


def _build_client(root: Path) -> None:
    client = root / "client_web"
    npm = shutil.which("npm")
    if npm is None or not (client / "src").is_dir():
        raise RuntimeError(
            "client_web/dist is missing or stale and cannot be rebuilt here (needs npm and "
            "client_web/src): run `make setup` or `cd client_web && npm ci && npm run build`"
        )
    if not (client / "node_modules").is_dir():
        quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run([npm, "ci", *quiet], cwd=client, check=True)
    subprocess.run([npm, "run", "--silent", "build"], cwd=client, check=True)


class ClientBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        if _stale(root):
            self.app.display_info("building the web client (client_web/dist)")
            _build_client(root)
        dist = root / "client_web" / "dist"
        # The wheel's copy sits in the package; the sdist keeps the checkout's layout, so a wheel
        # built from it needs no node.
        target = "server/_client" if self.target_name == "wheel" else "client_web/dist"
        for path in sorted(dist.rglob("*")):
            relative = path.relative_to(dist)
            if path.is_file() and not relative.name.startswith("."):  # not make's .built stamp
                build_data["force_include"][str(path)] = f"{target}/{relative.as_posix()}"
