"""Tandem's server package; ``tandem`` (and ``python -m server``) is :func:`server.cli.main`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    try:
        return version("tandem")
    except PackageNotFoundError:
        pass
    # A checkout run without installing (PYTHONPATH=.): the project file still says it.
    import tomllib

    try:
        with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"


# Before the import below: cli reads it while this module is still being imported.
__version__ = _version()

from .cli import main  # noqa: E402

__all__ = ["__version__", "main"]
