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

    def check_minting(self, scope: str, role: Role, expires_at: float) -> None:
        """Raise Forbidden unless this grant may mint a token for ``scope`` with ``role``,
        expiring at ``expires_at``: only an admin mints, and never wider, higher or
        longer-lived than itself (so a chain of minted tokens never outgrows its first)."""
        if self.role < Role.admin:
            raise Forbidden("only a token with the admin role can make new links")
        if not scope_within(scope, self.scope):
            raise Forbidden(f"scope {scope!r} is not within this token's scope {self.scope!r}")
        if role > self.role:
            raise Forbidden(f"the {role.name} role is above this token's {self.role.name}")
        if self.expires_at is not None and expires_at > self.expires_at:
            raise Forbidden("a new token cannot outlive the token that makes it")


OPEN = Grant(ALL_DOCUMENTS, Role.admin)


def scope_within(scope: str, outer: str) -> bool:
    """Whether every document ``scope`` covers is covered by ``outer`` too: the same scope, or
    within a prefix (``team/x`` and ``team/sub/`` are within ``team/``; ``team`` and ``teamx``
    are not), or anything within ``*``."""
    if outer == ALL_DOCUMENTS:
        return True
    if scope == ALL_DOCUMENTS:
        return False
    if outer.endswith("/"):
        return scope.startswith(outer)
    return scope == outer


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
    return mint_until(secret, scope, role, now + int(ttl_seconds), subject, issued_at=now)


def mint_until(
    secret: str,
    scope: str,
    role: Role,
    expires_at: int,
    subject: str | None = None,
    *,
    issued_at: int | None = None,
) -> str:
    """A token expiring at the Unix second ``expires_at`` exactly (what a token minted from
    another is clamped to: "now + ttl" could land a second past it)."""
    claims: dict[str, object] = {
        "doc": check_scope(scope),
        "role": role.name,
        "iat": int(time.time()) if issued_at is None else issued_at,
        "exp": expires_at,
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
