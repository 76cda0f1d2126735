"""``POST /api/tokens``: an admin makes a link for others (what the editor's Share dialog calls).

The body is JSON ``{"scope", "role", "ttl" (or "expires_in"), "subject"?, "document"?}``; the
answer 201 ``{"token", "url", "scope", "role", "expires_at"}``. A minted token is never wider,
higher or longer-lived than the caller's (:meth:`server.auth.Grant.check_minting`): a wider
scope or a higher role is refused (403); an expiry past the caller's own is *clamped* to it
(``expires_at`` says when the new token really expires), so "7 days" from a link that has 2 left
makes a 2-day link rather than an error. In open mode there is nothing to mint (409).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from .appkeys import AUTH, SETTINGS
from .auth import (
    ALL_DOCUMENTS,
    Forbidden,
    Grant,
    Role,
    Unauthorized,
    check_subject,
    mint_until,
    request_token,
)
from .handlers import json_error
from .names import BadDocumentName, check_document_name

log = logging.getLogger("tandem.tokens")

MAX_BODY = 4096
MAX_TTL = 365 * 86_400
FIELDS = frozenset({"scope", "role", "ttl", "expires_in", "subject", "document"})
OPEN_MODE = (
    "this server runs in open mode (no --auth-secret): anyone with the address can read and "
    "edit every document, so there are no tokens to make"
)
_CHUNK = 4096


class BadRequest(ValueError):
    """A body that is not a valid token request (400, or ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenRequest:
    scope: str
    role: Role
    ttl: float
    subject: str | None
    # The document the link opens (None: the home page, for a prefix or '*').
    document: str | None


def check_token_scope(scope: object) -> str:
    """``*``, a document name, or a document name followed by '/' (a prefix)."""
    if not isinstance(scope, str):
        raise BadRequest("scope must be a string: a document name, a prefix ending in '/', or '*'")
    if scope == ALL_DOCUMENTS:
        return scope
    try:
        check_document_name(scope.removesuffix("/"))
    except BadDocumentName as exc:
        raise BadRequest(f"scope {scope!r}: {exc}") from exc
    return scope


def _ttl(body: dict[str, object]) -> float:
    if "ttl" in body and "expires_in" in body:
        raise BadRequest("give ttl or expires_in, not both")
    key = "ttl" if "ttl" in body else "expires_in"
    if key not in body:
        raise BadRequest("ttl is required: the token's lifetime in seconds")
    value = body[key]
    # bool is an int to Python; JSON's true is no number of seconds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number of seconds")
    # compared, never converted: 1e400 is inf and 10**400 has no float (NaN is not parsed)
    if not 1 <= value <= MAX_TTL:
        raise BadRequest(f"{key} must be between 1 and {MAX_TTL} seconds (365 days)")
    return float(value)


def parse_token_request(body: object) -> TokenRequest:
    """Check a decoded JSON body; raises :class:`BadRequest` saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like {"scope", "role", "ttl"}')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; known: {sorted(FIELDS)}")
    if "scope" not in body:
        raise BadRequest("scope is required: a document name, a prefix ending in '/', or '*'")
    scope = check_token_scope(body["scope"])
    role = body.get("role")
    if not isinstance(role, str) or role not in Role.__members__:
        raise BadRequest(f"role must be one of {list(Role.__members__)}")
    subject = body.get("subject")
    if subject is not None:
        if not isinstance(subject, str):
            raise BadRequest("subject must be a string")
        try:
            check_subject(subject)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
    document = body.get("document")
    if document is not None:
        if not isinstance(document, str):
            raise BadRequest("document must be a string")
        try:
            check_document_name(document)
        except BadDocumentName as exc:
            raise BadRequest(f"document {document!r}: {exc}") from exc
        if not Grant(scope, Role.read).covers(document):
            raise BadRequest(f"document {document!r} is not within scope {scope!r}")
    elif scope != ALL_DOCUMENTS and not scope.endswith("/"):
        document = scope
    return TokenRequest(scope, Role[role], _ttl(body), subject, document)


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        # {"role": "read", "role": "admin"}: parsers disagree on which one counts
        raise BadRequest("the body repeats a field")
    return dict(pairs)


def _no_constants(name: str) -> object:
    raise BadRequest(f"{name} is not JSON")


def decode_body(raw: bytes) -> object:
    """Strict JSON: UTF-8, no NaN or Infinity, no repeated field."""
    if not raw.strip():
        raise BadRequest('the body must be JSON like {"scope": "notes", "role": "read", "ttl": 60}')
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_no_constants,
        )
    except UnicodeDecodeError as exc:
        raise BadRequest("the body must be UTF-8 JSON") from exc
    except RecursionError as exc:
        raise BadRequest("the body is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    except BadRequest:
        raise
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise BadRequest(f"the body is not usable JSON: {exc}") from exc


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes", 413)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(f"the body is larger than {MAX_BODY} bytes", 413)
        parts.append(chunk)
    return b"".join(parts)


def base_url(request: web.Request) -> str:
    """Where people reach this server: ``--public-url`` when set (behind a proxy the request's
    own scheme and host are the proxy's view), else the request's own origin."""
    public = request.app[SETTINGS].public_url
    if public:
        return public.rstrip("/")
    return f"{request.scheme}://{request.host}"


def link(base: str, document: str | None, token: str) -> str:
    # document names are all URL-safe characters; a JWT is base64url and dots
    path = f"/d/{document}" if document is not None else "/"
    return f"{base}{path}?token={quote(token, safe='')}"


async def create_token(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    secret = auth.secret
    if secret is None:
        return json_error(409, OPEN_MODE)
    try:
        grant = auth.grant(request_token(request.headers, request.query))
    except Unauthorized as exc:
        return json_error(401, str(exc))
    if grant.role < Role.admin:
        return json_error(403, "only a token with the admin role can make new links")
    declared = request.headers.get("Content-Type")
    if declared is not None and request.content_type != "application/json":
        return json_error(415, "the body must be application/json")
    try:
        wanted = parse_token_request(decode_body(await _read_body(request)))
    except BadRequest as exc:
        response = json_error(exc.status, str(exc))
        if exc.status == 413:
            response.force_close()  # the rest of the body is not read
        return response
    now = int(time.time())
    expires_at = now + int(wanted.ttl)
    if grant.expires_at is not None:
        expires_at = min(expires_at, math.floor(grant.expires_at))
    if expires_at <= now:
        return json_error(401, "this token expires now: it has no time left to share")
    try:
        grant.check_minting(wanted.scope, wanted.role, expires_at)
    except Forbidden as exc:
        return json_error(403, str(exc))
    token = mint_until(secret, wanted.scope, wanted.role, expires_at, wanted.subject)
    log.info(
        "token minted: scope %r, role %s, until %d, by %r (scope %r)",
        wanted.scope,
        wanted.role.name,
        expires_at,
        grant.subject,
        grant.scope,
    )
    body = {
        "token": token,
        "url": link(base_url(request), wanted.document, token),
        "scope": wanted.scope,
        "role": wanted.role.name,
        "expires_at": expires_at,
    }
    # a bearer secret: no cache may keep it
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


def add_token_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/tokens", create_token)
