"""What kind of image a file is, decided from its bytes alone (never from what the uploader
says): PNG, JPEG, GIF, WebP or SVG, with its size in pixels bounded. Pure: bytes in, a content
type or an exception out.

The bytes are checked only as far as a browser needs them to be the type they are served as;
what follows may be anything (a polyglot's HTML tail), which the serving headers make harmless
(the exact type, ``nosniff``, a sandbox CSP). SVG is parsed as XML, with no entity declarations,
and its root must be ``<svg>``; what is inside (scripts, handlers, external references) is kept
and never runs: an ``<img>`` runs no script and loads nothing, and the file served alone is
sandboxed with ``default-src 'none'``.
"""

from __future__ import annotations

import struct
import zlib
from xml.etree import ElementTree

PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
SVG = "image/svg+xml"
EXTENSIONS = {PNG: "png", JPEG: "jpg", GIF: "gif", WEBP: "webp", SVG: "svg"}
# What a browser may call these types in a request's Content-Type.
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG}
# Declared types that say nothing: the bytes decide alone.
_UNDECLARED = ("", "application/octet-stream")
# A decoded image is width × height × 4 bytes in every reader's browser.
MAX_SIDE = 20_000
MAX_PIXELS = 100_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_ROOTS = ("svg", "{http://www.w3.org/2000/svg}svg")
# JPEG start-of-frame markers (the ones that carry the image's size).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class Unsupported(ValueError):
    """Not an image of an allowed type, or not the type it was declared as (HTTP 415)."""


class TooManyPixels(ValueError):
    """An image too large to decode safely in the readers' browsers (HTTP 413)."""


def image_type(data: bytes, declared: str | None = None) -> str:
    """The content type of ``data``; raises Unsupported or TooManyPixels. ``declared`` (a
    Content-Type) must agree with the bytes when it names a type at all."""
    found, size = _detect(data)
    if found is None:
        raise Unsupported("the file is not a PNG, JPEG, GIF, WebP or SVG image")
    claimed = _media_type(declared)
    if claimed not in _UNDECLARED and claimed != found:
        raise Unsupported(
            f"the file is {EXTENSIONS[found].upper()} ({found}), not the {claimed} it was sent as"
        )
    if size is not None:
        width, height = size
        if width == 0 or height == 0:
            raise Unsupported(f"the file is not a valid image: it is {width}×{height} pixels")
        if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
            raise TooManyPixels(
                f"the image is {width}×{height} pixels: at most {MAX_SIDE} on a side and "
                f"{MAX_PIXELS // 1_000_000} million in all"
            )
    return found


def _media_type(header: str | None) -> str:
    kind = (header or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(kind, kind)


def _detect(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """(type, (width, height)) — the size is None for SVG; (None, None) for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        return PNG, _png_size(data)
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG, _jpeg_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        if len(data) < 13:
            raise Unsupported("the file is not a valid GIF: it ends inside its header")
        return GIF, struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP, _webp_size(data)
    if _looks_like_svg(data):
        _check_svg(data)
        return SVG, None
    return None, None


def _png_size(data: bytes) -> tuple[int, int]:
    # The first chunk must be a whole IHDR (13 bytes) with a right checksum.
    header = data[8:33]
    if len(header) < 25 or header[:8] != b"\x00\x00\x00\x0dIHDR":
        raise Unsupported("the file is not a valid PNG: it does not start with its IHDR chunk")
    if zlib.crc32(header[4:21]) != struct.unpack(">I", header[21:25])[0]:
        raise Unsupported("the file is not a valid PNG: its IHDR chunk is damaged")
    width, height = struct.unpack(">II", header[8:16])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the segments from SOI to the frame header that holds the size."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # the end, or the scan, before any frame header
            break
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            break
        if marker in _JPEG_FRAMES:
            if at + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise Unsupported("the file is not a valid JPEG: no frame header before its image data")


def _webp_size(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 != len(data) or len(data) < 30:
        raise Unsupported("the file is not a valid WebP: its length is not the one it declares")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise Unsupported("the file is not a valid WebP: no VP8, VP8L or VP8X image in it")


def _svg_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].decode("utf-8", errors="ignore").removeprefix("\ufeff").lstrip()
    return head.startswith(("<svg", "<?xml"))


def _check_svg(data: bytes) -> None:
    text = _svg_text(data)
    if text is None:
        raise Unsupported("the file is not a valid SVG: it is not UTF-8 text")
    # Entities are how XML bombs and external-entity reads work; no real SVG needs them.
    if "<!ENTITY" in text:
        raise Unsupported("SVG files declaring XML entities are not accepted")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise Unsupported(
            f"the file is not a valid SVG: the XML is not well-formed ({exc})"
        ) from exc
    if root.tag not in _SVG_ROOTS:
        raise Unsupported("the file is XML but not SVG: its root element is not <svg>")
