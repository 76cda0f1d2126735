"""Document names: which are allowed (the same rule the web client checks)."""

from __future__ import annotations

import re

from .contract import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)


class BadDocumentName(ValueError):
    """A document name outside the allowed alphabet or shape."""


def check_document_name(name: str) -> str:
    """Return ``name`` if it is a valid document name, else raise :class:`BadDocumentName`."""
    if not _NAME.fullmatch(name):
        raise BadDocumentName(
            "document names are 1-200 characters of letters, digits, '-', '_', '.', '~' and '/'"
        )
    if name.startswith("/") or name.endswith("/"):
        raise BadDocumentName("a document name cannot start or end with '/'")
    if ".." in name:
        raise BadDocumentName("a document name cannot contain '..'")
    return name
