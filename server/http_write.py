"""Reading and writing a document over HTTP: its Yjs state (whole, or what a state vector
lacks), a Yjs update, the text replaced, text appended.

Every write takes the path a client's update takes (:meth:`server.room.Room.apply_update`,
:meth:`server.room.Room.edit_text`): relayed live to the editors, appended to the store, and
answered only once it is committed. The handlers are plain: :mod:`server.http_api` adds the
name check and the role each needs (``document_route``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web

from .appkeys import DOCUMENTS, SETTINGS
from .documents import NotCommitted, PreconditionFailed, TextWritten
from .exports import NOT_TEXT
from .handlers import Handler, json_error
from .protocol import ProtocolError
from .room import DocumentDeleted, MissingDependencies
from .updates import check_state_vector

# The commit is awaited until this long before the request's deadline (``--request-timeout``),
# at most: the answer is then a clear 503, not the middleware's 408.
COMMIT_MARGIN = 1.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode_b64(raw: str) -> bytes:
    """Standard or URL-safe base64, padding optional; raises ValueError."""
    # An unencoded '+' in a query string arrives as a space.
    raw = raw.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def _commit_timeout(request: web.Request, started: float) -> float:
    """How long the commit may be awaited: what is left of the request's time, less a margin."""
    seconds = request.app[SETTINGS].request_timeout
    margin = min(COMMIT_MARGIN, seconds / 10)
    return max(0.0, started + seconds - margin - asyncio.get_running_loop().time())


class _BadRequest(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def refusals(handler: Handler) -> Handler:
    """The errors of reading and writing, as JSON with their status."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return json_error(exc.status, str(exc))
        except DocumentDeleted as exc:  # before ProtocolError, which it is
            return json_error(410, str(exc))
        except ProtocolError as exc:
            return json_error(400, f"the body is not a Yjs V1 update the server accepts: {exc}")
        except MissingDependencies as exc:
            body = {"error": str(exc), "state_vector": _b64(exc.state_vector)}
            return web.json_response(body, status=409)
        except PreconditionFailed as exc:
            return web.json_response({"error": str(exc), "etag": exc.etag}, status=412)
        except NotCommitted as exc:
            return json_error(503, str(exc))

    return wrapped


async def _body(request: web.Request) -> bytes:
    """The body; 413 past the server's message size (aiohttp's ``client_max_size`` is set to
    it, and answers plain text: this makes it JSON like every other error)."""
    limit = request.app[SETTINGS].max_message_size
    message = f"the body is larger than the server's --max-message-size ({limit} bytes)"
    if request.content_length is not None and request.content_length > limit:
        raise _BadRequest(413, message)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _BadRequest(413, message) from None


async def _text_body(request: web.Request) -> str:
    try:
        text = (await _body(request)).decode("utf-8")
    except UnicodeDecodeError:
        raise _BadRequest(400, "the body must be UTF-8 text") from None
    if NOT_TEXT in text:
        # The server stands NUL in for embeds when it lines texts up: it cannot be text too.
        raise _BadRequest(400, "the text may not contain NUL characters")
    return text


def _if_match(request: web.Request) -> frozenset[str] | None:
    """The entity tags of ``If-Match`` (None without one). Weak tags never match: If-Match
    compares strongly (RFC 9110, 13.1.1)."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = (tag.strip() for tag in header.split(","))
    return frozenset(t for t in tags if t == "*" or (len(t) >= 2 and t[0] == t[-1] == '"'))


def _written(written: TextWritten) -> web.Response:
    body = {
        "state_vector": _b64(written.state_vector),
        "length": written.length,
        "etag": written.etag,
    }
    return web.json_response(body, headers={"ETag": written.etag})


@refusals
async def get_state(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("sv")
    state_vector: bytes | None = None
    if raw is not None:
        try:
            state_vector = _decode_b64(raw)
            check_state_vector(state_vector)
        except (ValueError, ProtocolError) as exc:
            raise _BadRequest(400, f"sv is not a base64 Yjs state vector: {exc}") from exc
    update = await request.app[DOCUMENTS].missing(request.match_info["name"], state_vector)
    return web.Response(body=update, content_type="application/octet-stream")


@refusals
async def post_update(request: web.Request) -> web.StreamResponse:
    started = asyncio.get_running_loop().time()
    update = await _body(request)
    if not update:
        raise _BadRequest(400, "the body must be a binary Yjs V1 update")
    state = await request.app[DOCUMENTS].apply_update(
        request.match_info["name"], update, _commit_timeout(request, started)
    )
    return web.json_response({"state_vector": _b64(state)})


@refusals
async def put_text(request: web.Request) -> web.StreamResponse:
    started = asyncio.get_running_loop().time()
    text = await _text_body(request)
    written = await request.app[DOCUMENTS].replace_text(
        request.match_info["name"], text, _if_match(request), _commit_timeout(request, started)
    )
    return _written(written)


@refusals
async def post_append(request: web.Request) -> web.StreamResponse:
    started = asyncio.get_running_loop().time()
    text = await _text_body(request)
    written = await request.app[DOCUMENTS].append_text(
        request.match_info["name"], text, _commit_timeout(request, started)
    )
    return _written(written)
