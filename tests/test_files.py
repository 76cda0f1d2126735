"""Images beside documents over HTTP, against a real server: upload (types read from the bytes,
the size cap, roles), serving (the same bytes, cached for good, sandboxed), hostile files and
ids, deletion with the document, and the same on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from urllib.parse import urlsplit

import aiohttp

from server.auth import Role, mint
from testkit.services import Postgres

from . import imagefiles
from .conftest import ServerProcess, unique

SECRET = "files-secret-that-is-long-enough-for-hs256-keys"
CACHE = "private, max-age=31536000, immutable"
CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

TYPES = {
    "image/png": (imagefiles.png(), "png"),
    "image/jpeg": (imagefiles.jpeg(), "jpg"),
    "image/gif": (imagefiles.GIF, "gif"),
    "image/webp": (imagefiles.webp(), "webp"),
    "image/svg+xml": (imagefiles.SVG, "svg"),
}


async def request(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: object
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.read(), resp.headers


async def new_document(
    http: aiohttp.ClientSession, server: ServerProcess, prefix: str, token: str | None = None
) -> str:
    name = unique(prefix)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, body, _ = await request(
        http, "POST", f"{server.url}/api/docs/{name}/import", data=b"# Pictures\n", headers=headers
    )
    assert status == 201, body
    return name


async def upload(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    name: str,
    data: bytes,
    content_type: str | None = "image/png",
    token: str | None = None,
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, body, _ = await request(
        http, "POST", f"{server.url}/api/docs/{name}/files", data=data, headers=headers
    )
    return status, json.loads(body)


def error_of(answer: dict[str, object]) -> str:
    error = answer.get("error")
    assert isinstance(error, str) and error, answer
    return error


async def raw_status(server: ServerProcess, head: str) -> bytes:
    """Send ``head`` (a request line and headers, no body) as it is; the status line back."""
    parts = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 15)
    finally:
        writer.close()


# --- upload and serving --------------------------------------------------------------------------


async def test_each_allowed_type_is_stored_and_served_back_byte_for_byte(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/types")
    for content_type, (data, extension) in TYPES.items():
        status, answer = await upload(http, server, name, data, content_type)
        assert status == 201, answer
        file_id = answer["id"]
        assert isinstance(file_id, str) and len(file_id) == 22
        assert answer["url"] == f"/api/docs/{name}/files/{file_id}"
        assert answer["content_type"] == content_type and answer["size"] == len(data)
        assert answer["sha256"] == hashlib.sha256(data).hexdigest()

        status, body, headers = await request(http, "GET", f"{server.url}{answer['url']}")
        assert status == 200 and body == data
        assert headers["Content-Type"] == content_type
        assert headers["Cache-Control"] == CACHE
        assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == CSP
        assert headers["Content-Disposition"] == f'inline; filename="{file_id}.{extension}"'


async def test_the_type_comes_from_the_bytes_when_the_upload_names_none(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    for declared in (None, "application/octet-stream"):
        name = await new_document(http, server, "files/untyped")
        for content_type, (data, _) in TYPES.items():
            status, answer = await upload(http, server, name, data, declared)
            assert status == 201 and answer["content_type"] == content_type, answer


async def test_the_same_image_twice_is_stored_once(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/twice")
    first_status, first = await upload(http, server, name, imagefiles.png())
    again_status, again = await upload(http, server, name, imagefiles.png())
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"]
    # Another document gets a file of its own.
    other = await new_document(http, server, "files/twice-other")
    status, elsewhere = await upload(http, server, other, imagefiles.png())
    assert status == 201 and elsewhere["id"] != first["id"]


async def test_a_matching_if_none_match_gets_304_without_the_bytes(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/etag")
    _, answer = await upload(http, server, name, imagefiles.png())
    url = f"{server.url}{answer['url']}"
    _, _, headers = await request(http, "GET", url)
    etag = headers["ETag"]
    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        status, body, again = await request(http, "GET", url, headers={"If-None-Match": condition})
        assert status == 304 and body == b"", condition
        assert again["ETag"] == etag and again["Cache-Control"] == CACHE
    status, body, _ = await request(http, "GET", url, headers={"If-None-Match": '"stale"'})
    assert status == 200 and body == imagefiles.png()


# --- what is refused -----------------------------------------------------------------------------


async def test_a_file_over_the_size_cap_is_refused_with_413(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--max-file-bytes", "4096").start()
    name = await new_document(http, srv, "files/cap")
    big = imagefiles.noisy_png(40, 40)
    assert len(big) > 4096, len(big)
    status, answer = await upload(http, srv, name, big)
    assert (
        status == 413
        and "4096 bytes" in error_of(answer)
        and "--max-file-bytes" in error_of(answer)
    )

    async def trickle() -> object:  # no Content-Length: chunked, counted as it comes
        for at in range(0, len(big), 1000):
            yield big[at : at + 1000]

    status, body, _ = await request(
        http, "POST", f"{srv.url}/api/docs/{name}/files", data=trickle(), headers={}
    )
    assert status == 413, body
    # A huge declared size is answered at once, before any of the body is sent.
    line = await raw_status(
        srv,
        f"POST /api/docs/{name}/files HTTP/1.1\nHost: 127.0.0.1\n"
        f"Content-Type: image/png\nContent-Length: {10**12}\n",
    )
    assert line.startswith(b"HTTP/1.1 413"), line
    # Just under the cap is fine.
    status, answer = await upload(http, srv, name, imagefiles.noisy_png(30, 30))
    assert status == 201, answer


async def test_an_image_declaring_a_huge_size_in_pixels_is_refused(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/pixels")
    for width, height in ((100_000, 100_000), (20_001, 1), (20_000, 20_000)):
        status, answer = await upload(
            http, server, name, imagefiles.png_declaring(width, height), None
        )
        assert status == 413 and "pixels" in error_of(answer), (width, height, answer)
    status, answer = await upload(http, server, name, imagefiles.png_declaring(0, 10), None)
    assert status == 415 and "0×10 pixels" in error_of(answer)
    status, answer = await upload(http, server, name, imagefiles.png_declaring(20_000, 5), None)
    assert status == 201, answer


HOSTILE_BODIES = {
    "text": (b"just some text", "text/plain"),
    "html": (b"<!doctype html><script>alert(1)</script>", "text/html"),
    "html as png": (b"<html><script>alert(1)</script></html>", "image/png"),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    "bmp": (b"BM" + b"\x00" * 60, "image/bmp"),
    "png header then html": (
        b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
        "image/png",
    ),
    "png with a damaged ihdr": (imagefiles.png()[:20] + b"\xff" + imagefiles.png()[21:], None),
    "png cut inside its header": (imagefiles.png()[:20], "image/png"),
    "jpeg header then html": (b"\xff\xd8\xff<html><script>alert(1)</script>", "image/jpeg"),
    "gif cut inside its header": (b"GIF89a\x01\x00", "image/gif"),
    "webp with a wrong length": (imagefiles.webp() + b"<html>", "image/webp"),
    "xml that is not svg": (b'<?xml version="1.0"?><html><script>x</script></html>', None),
    "svg not well-formed": (b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', None),
    "svg in utf-16": ('<svg xmlns="http://www.w3.org/2000/svg"/>'.encode("utf-16"), None),
    "svg billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>',
        "image/svg+xml",
    ),
    "svg external entity": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        "image/svg+xml",
    ),
}


async def test_anything_but_the_five_image_types_is_refused_with_415(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/refused")
    for what, (data, declared) in HOSTILE_BODIES.items():
        status, answer = await upload(http, server, name, data, declared)
        assert status == 415, (what, status, answer)
        assert "PNG, JPEG, GIF, WebP or SVG" in error_of(answer), what
    status, answer = await upload(http, server, name, b"", "image/png")
    assert status == 400 and "bytes" in error_of(answer)


async def test_a_declared_type_the_bytes_contradict_is_refused(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/mismatch")
    for data, declared in (
        (imagefiles.png(), "image/jpeg"),
        (imagefiles.png(), "text/html"),
        (imagefiles.GIF, "image/png"),
        (imagefiles.SVG, "image/png"),
        (imagefiles.jpeg(), "image/svg+xml"),
    ):
        status, answer = await upload(http, server, name, data, declared)
        assert status == 415 and f"not the {declared}" in error_of(answer), (declared, answer)
    # Parameters and aliases of the right type are fine.
    status, _ = await upload(http, server, name, imagefiles.jpeg(), "image/jpg")
    assert status == 201
    status, _ = await upload(http, server, name, imagefiles.SVG, "image/svg+xml; charset=utf-8")
    assert status == 201


async def test_a_hostile_svg_is_kept_but_served_so_that_nothing_in_it_runs(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/svg")
    hostile = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        b"onload=\"fetch('/api/docs')\">"
        b"<script>document.title = 'pwned'</script>"
        b'<foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">'
        b'<iframe src="javascript:alert(1)"/></div></foreignObject>'
        b'<image href="https://evil.example/track.png" width="1" height="1"/>'
        b'<use xlink:href="https://evil.example/sprite.svg#x"/></svg>'
    )
    status, answer = await upload(http, server, name, hostile, "image/svg+xml")
    assert status == 201, answer
    status, body, headers = await request(http, "GET", f"{server.url}{answer['url']}")
    assert status == 200 and body == hostile
    assert headers["Content-Type"] == "image/svg+xml"
    # No script, no fetch, no frame, no external image; a unique origin when opened alone.
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith("inline;")


async def test_a_png_followed_by_html_is_only_ever_served_as_a_png(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/polyglot")
    polyglot = imagefiles.png() + b"<html><script>alert(document.domain)</script></html>"
    status, answer = await upload(http, server, name, polyglot, None)
    assert status == 201 and answer["content_type"] == "image/png", answer
    status, body, headers = await request(http, "GET", f"{server.url}{answer['url']}")
    assert status == 200 and body == polyglot
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CSP


# --- ids, documents, roles -----------------------------------------------------------------------


async def test_another_documents_file_is_not_found_under_this_document(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    owner = await new_document(http, server, "files/owner")
    other = await new_document(http, server, "files/other")
    _, answer = await upload(http, server, owner, imagefiles.png(3, 3))
    file_id = answer["id"]
    for name in (other, f"{owner}/x", owner.rsplit("-", 1)[0], "files"):
        status, body, _ = await request(
            http, "GET", f"{server.url}/api/docs/{name}/files/{file_id}"
        )
        assert status == 404 and json.loads(body)["error"], name
    status, _, _ = await request(http, "GET", f"{server.url}/api/docs/{owner}/files/{file_id}")
    assert status == 200


async def test_hostile_file_ids_find_nothing(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = await new_document(http, server, "files/ids")
    _, answer = await upload(http, server, name, imagefiles.png(5, 5))
    file_id = str(answer["id"])
    hostile = [
        "..",
        "%2e%2e",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2ftandem.db",
        f"{file_id}%2f..",
        f"{file_id}.png",
        file_id[:-1],
        file_id + "A",
        file_id.lower() if file_id.lower() != file_id else file_id.upper(),
        "%27%20OR%20%271%27%3D%271",
        "%00",
        "A" * 5000,
    ]
    for bad in hostile:
        line = await raw_status(
            server, f"GET /api/docs/{name}/files/{bad} HTTP/1.1\nHost: 127.0.0.1\n"
        )
        assert line.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400")), (bad, line)
    for path in (
        f"/api/docs/{name}/files/../../../../etc/passwd",
        f"/api/docs/../{name}/files/{file_id}",
        f"/api/docs/{name}/files/./{file_id}",
    ):
        line = await raw_status(server, f"GET {path} HTTP/1.1\nHost: 127.0.0.1\n")
        assert line.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400")), (path, line)


async def test_a_document_that_does_not_exist_takes_no_file(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    status, answer = await upload(http, server, unique("files/nobody"), imagefiles.png())
    assert status == 404 and "no document" in error_of(answer)
    status, answer = await upload(http, server, "bad..name", imagefiles.png())
    assert status == 400


async def test_uploading_needs_the_write_role_and_reading_the_read_role(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None, "--auth-secret", SECRET).start()
    admin = mint(SECRET, "*", Role.admin, 3600)
    name = await new_document(http, srv, "files/roles", token=admin)
    read = mint(SECRET, name, Role.read, 3600)
    write = mint(SECRET, name, Role.write, 3600)
    elsewhere = mint(SECRET, "files/elsewhere", Role.admin, 3600)

    status, answer = await upload(http, srv, name, imagefiles.png())
    assert status == 401, answer
    status, answer = await upload(http, srv, name, imagefiles.png(), token=read)
    assert status == 403 and "write" in error_of(answer)
    status, answer = await upload(http, srv, name, imagefiles.png(), token=elsewhere)
    assert status == 403
    status, answer = await upload(http, srv, name, imagefiles.png(), token=write)
    assert status == 201, answer
    url = f"{srv.url}{answer['url']}"

    status, _, _ = await request(http, "GET", url)
    assert status == 401
    status, _, _ = await request(http, "GET", url, headers={"Authorization": f"Bearer {elsewhere}"})
    assert status == 403
    # A reader's token works as a header or in the image's address (what an <img> can send).
    status, body, _ = await request(http, "GET", url, headers={"Authorization": f"Bearer {read}"})
    assert status == 200 and body == imagefiles.png()
    status, body, _ = await request(http, "GET", f"{url}?token={read}")
    assert status == 200 and body == imagefiles.png()


async def test_deleting_the_document_deletes_its_files(
    server_factory: type[ServerProcess], http: aiohttp.ClientSession
) -> None:
    srv = server_factory(None).start()
    name = await new_document(http, srv, "files/deleted")
    kept = await new_document(http, srv, "files/kept")
    _, gone = await upload(http, srv, name, imagefiles.png())
    _, also_gone = await upload(http, srv, name, imagefiles.GIF, "image/gif")
    _, stays = await upload(http, srv, kept, imagefiles.png())
    status, _, _ = await request(http, "DELETE", f"{srv.url}/api/docs/{name}")
    assert status == 200
    for answer in (gone, also_gone):
        status, _, _ = await request(http, "GET", f"{srv.url}{answer['url']}")
        assert status == 404
    status, _, _ = await request(http, "GET", f"{srv.url}{stays['url']}")
    assert status == 200
    with sqlite3.connect(srv.db) as db:
        rows = db.execute("SELECT doc FROM files ORDER BY doc").fetchall()
    assert rows == [(kept,)]
    # A new document of the old name does not see the old files.
    await request(http, "POST", f"{srv.url}/api/docs/{name}/import", data=b"again")
    status, _, _ = await request(http, "GET", f"{srv.url}{gone['url']}")
    assert status == 404


async def test_the_exports_keep_the_image_links(
    server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    name = unique("files/export")
    await request(http, "POST", f"{server.url}/api/docs/{name}/import", data=b"# Trip\n")
    _, answer = await upload(http, server, name, imagefiles.png())
    link = f"![beach.png]({answer['url']})"
    status, _, _ = await request(
        http, "POST", f"{server.url}/api/docs/{name}/append", data=f"\n{link}\n".encode()
    )
    assert status in (200, 201)
    for fmt in ("md", "txt"):
        _, body, _ = await request(http, "GET", f"{server.url}/api/docs/{name}/export?format={fmt}")
        assert link in body.decode(), fmt
    _, body, _ = await request(http, "GET", f"{server.url}/api/docs/{name}/export?format=html")
    images = re.findall(r'<img [^>]*src="([^"]*)"[^>]*alt="([^"]*)"', body.decode())
    assert images == [(answer["url"], "beach.png")]


async def test_files_on_postgresql(postgres: Postgres, http: aiohttp.ClientSession) -> None:
    srv = ServerProcess(postgres.new_database()).start()  # type: ignore[arg-type]
    try:
        name = await new_document(http, srv, "files/pg")
        status, answer = await upload(http, srv, name, imagefiles.webp(), "image/webp")
        assert status == 201, answer
        again_status, again = await upload(http, srv, name, imagefiles.webp(), None)
        assert again_status == 200 and again["id"] == answer["id"]
        url = f"{srv.url}{answer['url']}"
        status, body, headers = await request(http, "GET", url)
        assert status == 200 and body == imagefiles.webp()
        assert headers["Content-Type"] == "image/webp" and headers["Cache-Control"] == CACHE
        status, _, _ = await request(http, "GET", url, headers={"If-None-Match": headers["ETag"]})
        assert status == 304
        other = await new_document(http, srv, "files/pg-other")
        status, _, _ = await request(
            http, "GET", f"{srv.url}/api/docs/{other}/files/{answer['id']}"
        )
        assert status == 404
        status, answer = await upload(http, srv, name, b"<html></html>", "image/png")
        assert status == 415
        status, _, _ = await request(http, "DELETE", f"{srv.url}/api/docs/{name}")
        assert status == 200
        status, _, _ = await request(http, "GET", url)
        assert status == 404
    finally:
        srv.kill()
