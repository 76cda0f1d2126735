"""Access tokens: HS256 JWTs naming a document (or a prefix), a role and an expiry.

Open mode (no secret) lets everyone do everything: the default for local use. With a secret,
every WebSocket and every /api request needs a token covering the document with a high enough
role.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import jwt

ALGORITHM = "HS256"
ALL_DOCUMENTS = "*"
# RFC 7518: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32


class Role(IntEnum):
    read = 1
    write = 2
    admin = 3


class Unauthorized(PermissionError):
    """No token, or one that is invalid or expired (WebSocket 4401, HTTP 401)."""


class Forbidden(PermissionError):
    """A valid token that does not cover this document or action (WebSocket 4403, HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Grant:
    scope: str
    role: Role
    # Unix time the token expires at (None: open mode, no token).
    expires_at: float | None = None
    # Who holds it: the token's ``sub`` (None: open mode, or a token minted without one).
    subject: str | None = None

    def covers(self, name: str) -> bool:
        if self.scope == ALL_DOCUMENTS:
            return True
        if self.scope.endswith("/"):
            return name.startswith(self.scope)
        return name == self.scope


OPEN = Grant(ALL_DOCUMENTS, Role.admin)


def check_secret(secret: str) -> str:
    """A secret that HS256 can rely on; raises ValueError for an empty or short one (an empty
    one must never mean open mode by accident)."""
    size = len(secret.encode("utf-8"))
    if size == 0:
        raise ValueError("the auth secret is empty; leave it out for open mode")
    if size < MIN_SECRET_BYTES:
        raise ValueError(
            f"the auth secret is {size} bytes; HS256 needs at least {MIN_SECRET_BYTES} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def check_scope(scope: str) -> str:
    if not scope:
        raise ValueError("a token names a document, a prefix ending in '/', or '*'")
    return scope


MAX_SUBJECT = 200


def check_subject(subject: str) -> str:
    """A subject a person can be shown by: 1–200 printable characters."""
    if not subject or len(subject) > MAX_SUBJECT or not subject.isprintable():
        raise ValueError(f"a subject is 1–{MAX_SUBJECT} printable characters")
    return subject


def mint(
    secret: str, scope: str, role: Role, ttl_seconds: float, subject: str | None = None
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "doc": check_scope(scope),
        "role": role.name,
        "iat": now,
        "exp": now + int(ttl_seconds),
    }
    if subject is not None:
        claims["sub"] = check_subject(subject)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def request_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer`` or ``?token=`` (what y-websocket's ``params`` sends)."""
    header = headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return query.get("token")


class Authorizer:
    def __init__(self, secret: str | None) -> None:
        self.secret = None if secret is None else check_secret(secret)

    def grant(self, token: str | None) -> Grant:
        """The grant a token carries; raises Unauthorized."""
        if self.secret is None:
            return OPEN
        if not token:
            raise Unauthorized("a token is required")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "doc", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        scope, role = claims.get("doc"), claims.get("role")
        if not isinstance(scope, str) or not scope or role not in Role.__members__:
            raise Unauthorized("token lacks a document or a valid role")
        subject = claims.get("sub")
        if subject is not None:
            try:
                check_subject(subject if isinstance(subject, str) else "")
            except ValueError as exc:
                raise Unauthorized(f"invalid token: {exc}") from exc
        return Grant(scope, Role[role], float(claims["exp"]), subject)

    def authorize(self, token: str | None, name: str, needed: Role) -> Grant:
        """Raise Unauthorized or Forbidden unless ``token`` allows ``needed`` on ``name``."""
        grant = self.grant(token)
        if not grant.covers(name):
            raise Forbidden(f"this token is not for document {name!r}")
        if grant.role < needed:
            raise Forbidden(f"this needs the {needed.name} role; the token has {grant.role.name}")
        return grant
