"""Duplicating a document: ``POST /api/docs/{name}/duplicate`` with ``{"to": "<new name>"}``.

The copy is a new document whose first update is the source's current state (the live room's
when it is loaded, else the store's) under new Yjs client ids (see :mod:`server.copies` for
why), with its images copied beside it and its links to them pointed at the copies. It has a
history of its own: no version of the source comes along, its versions are numbered from 1, and
it shares no client id with the source, so deleting either never touches the other (no 4410 for
the other's clients, and a copy can be made again under a deleted copy's name).

The caller needs the read role on the source (:mod:`server.http_api` checks it) and the write
role on the target (checked here, with the same token). The target must not exist: 409.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import web

from . import copies
from .appkeys import AUTH, DOCUMENTS, SETTINGS
from .auth import Forbidden, Role, Unauthorized, request_token
from .documents import Conflict, Documents, NotCommitted, NotFound
from .files_api import file_path
from .handlers import json_error
from .http_write import COMMIT_MARGIN
from .names import BadDocumentName, check_document_name
from .protocol import ProtocolError
from .room import DocumentDeleted, MissingDependencies
from .storage import Store
from .updates import EMPTY_UPDATE, check_state_vector

log = logging.getLogger("tandem.duplicate")

# The body: {"to": "<new name>"}, nothing near this size.
MAX_BODY = 4096


class CannotCopy(RuntimeError):
    """The source holds something the copy cannot be made of (HTTP 500)."""


@dataclass(frozen=True, slots=True)
class Duplicated:
    name: str
    # Files (images) copied beside it.
    files: int
    # Which Yjs client id of the source became which in the copy (the authors map follows it).
    clients: dict[int, int]


async def _copy_files(store: Store, source: str, target: str, ids: list[str]) -> dict[str, str]:
    """Each linked file of the source stored beside the target; returns old link → new link.
    A link to a file the source does not have stays as it is."""
    links: dict[str, str] = {}
    for file_id in ids:
        found = await store.file(source, file_id)
        if found is None or found.data is None:
            continue
        saved, _new = await store.save_file(target, found.content_type, found.data)
        links[file_path(source, file_id)] = file_path(target, saved.id)
    return links


async def duplicate(
    documents: Documents, source: str, target: str, commit_timeout: float | None
) -> Duplicated:
    """Make ``target`` a copy of ``source`` and wait for its commit. Raises NotFound (no
    source), Conflict (the target exists, or the source is empty), CannotCopy, and what
    :meth:`Documents.create` raises."""
    if target == source:
        raise Conflict(f"document {target!r} exists already")
    store = documents.store
    state = await documents.live_state(source)
    if state is None:
        raise NotFound(f"no document named {source!r}")
    if state == EMPTY_UPDATE:
        raise Conflict(f"document {source!r} is empty: there is nothing to copy")
    room = documents.rooms.get(target)
    if await store.document(target) is not None or (room is not None and room.peers):
        raise Conflict(f"document {target!r} exists already")
    documents.workers.check_size(len(state))
    # The copy's client ids must be none a deleted document of the target's name held.
    tombstone = await store.tombstone(target)
    avoid = sorted(check_state_vector(tombstone)) if tombstone else []
    # Before the copy is made (its links name them): should the name be taken meanwhile, the
    # files stay beside it unlinked, as an upload whose link was never typed.
    ids = await documents.workers.run(copies.linked_files, state, file_path(source, ""))
    links = await _copy_files(store, source, target, ids)
    try:
        copied = await documents.workers.run(copies.copy_state, state, avoid, links)
    except ValueError as exc:
        log.error("cannot copy %r to %r: %s", source, target, exc)
        raise CannotCopy(f"document {source!r} cannot be copied: {exc}") from exc
    if copied.update == EMPTY_UPDATE:  # all it held waits for what it builds on
        raise Conflict(f"document {source!r} is empty: there is nothing to copy")
    try:
        await documents.create(target, copied.update, commit_timeout)
    except (ProtocolError, MissingDependencies) as exc:
        # DocumentDeleted is a ProtocolError too: new ids were chosen to avoid the tombstone,
        # so only a deletion under the target's name since then could cause it.
        if isinstance(exc, DocumentDeleted):
            raise Conflict(f"document {target!r} was just deleted; try again") from exc
        log.error("the copy of %r to %r was refused: %s", source, target, exc)
        raise CannotCopy(f"the copy of {source!r} could not be made: {exc}") from exc
    # Who wrote what follows the text: the source's authors, under the copy's client ids.
    try:
        await store.copy_authors(source, target, copied.clients)
    except Exception as exc:  # the copy is made and committed: a map row is no reason to fail it
        log.error("the copy %r of %r is made, but not its authors map: %s", target, source, exc)
    return Duplicated(target, len(links), copied.clients)


# --- HTTP -------------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _target(request: web.Request) -> str:
    """The body's ``to``: a valid document name the token may write to."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1024):
        size += len(chunk)
        if size > MAX_BODY:  # read no further
            raise _Refused(413, f"the body is larger than {MAX_BODY} bytes")
        parts.append(chunk)
    raw = b"".join(parts)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise _Refused(400, 'the body must be JSON like {"to": "new-name"}') from exc
    target = body.get("to") if isinstance(body, dict) else None
    if not isinstance(target, str):
        raise _Refused(
            400, 'the body must be a JSON object like {"to": "new-name"}: "to" names the copy'
        )
    try:
        check_document_name(target)
    except BadDocumentName as exc:
        raise _Refused(400, f'"to": {exc}') from exc
    try:
        request.app[AUTH].authorize(
            request_token(request.headers, request.query), target, Role.write
        )
    except Unauthorized as exc:
        raise _Refused(401, str(exc)) from exc
    except Forbidden as exc:
        raise _Refused(403, f"the copy: {exc}") from exc
    return target


async def post_duplicate(request: web.Request) -> web.Response:
    """``POST /api/docs/{name}/duplicate``; :mod:`server.http_api` has checked the name and
    the read role on it. 201 ``{"name", "url"}``."""
    started = asyncio.get_running_loop().time()
    try:
        target = await _target(request)
    except _Refused as exc:
        response = json_error(exc.status, str(exc))
        if exc.status == 413:
            response.force_close()  # the rest of the body is not read: this connection is done
        return response
    seconds = request.app[SETTINGS].request_timeout
    deadline = started + seconds - min(COMMIT_MARGIN, seconds / 10)
    try:
        made = await duplicate(
            request.app[DOCUMENTS],
            request.match_info["name"],
            target,
            max(0.0, deadline - asyncio.get_running_loop().time()),
        )
    except NotCommitted as exc:
        return json_error(503, str(exc))
    except CannotCopy as exc:
        return json_error(500, str(exc))
    url = "/d/" + made.name  # document names need no escaping in a path
    return web.json_response({"name": made.name, "url": url}, status=201, headers={"Location": url})
