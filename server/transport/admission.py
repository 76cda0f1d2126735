"""Who may open a socket for a document: a valid name, a token that covers it, room for one
more connection from that address. Decided before the upgrade; a refusal is sent as a close code
after it (y-websocket clients treat 44xx as final and stop retrying, while an HTTP error would
make them retry forever)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..appkeys import AUTH, CONNECTIONS
from ..auth import Forbidden, Grant, Role, Unauthorized, request_token
from ..contract import CloseCode
from ..names import BadDocumentName, check_document_name


@dataclass(frozen=True, slots=True)
class Admission:
    """Either a grant (and a slot taken from the address's count: give it back with
    :func:`leave`) or a refusal as ``(close code, reason)``."""

    address: str
    grant: Grant | None = None
    refusal: tuple[int, str] | None = None


def admit(request: web.Request, name: str) -> Admission:
    address = request.remote or "?"
    try:
        check_document_name(name)
        token = request_token(request.headers, request.query)
        grant = request.app[AUTH].authorize(token, name, Role.read)
    except BadDocumentName:
        return Admission(address, refusal=(CloseCode.badDocumentName, "bad document name"))
    except Unauthorized as exc:
        return Admission(address, refusal=(CloseCode.unauthorized, str(exc)))
    except Forbidden as exc:
        return Admission(address, refusal=(CloseCode.forbidden, str(exc)))
    if not request.app[CONNECTIONS].try_open(address):
        reason = "too many connections from this address"
        return Admission(address, refusal=(CloseCode.policyViolation, reason))
    return Admission(address, grant=grant)


def leave(request: web.Request, admission: Admission) -> None:
    """Give back the address's slot of an admitted connection."""
    if admission.grant is not None:
        request.app[CONNECTIONS].close(admission.address)
