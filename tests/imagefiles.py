"""Tiny real image files, made byte by byte (no imaging library): what the image tests upload."""

from __future__ import annotations

import random
import struct
import zlib


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (220, 40, 40)) -> bytes:
    """An RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(row * height))
        + _png_chunk(b"IEND", b"")
    )


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """An RGB PNG of pseudo-random pixels: about 3 bytes a pixel (noise does not compress)."""
    rows = random.Random(seed).randbytes(height * width * 3)
    raw = b"".join(b"\x00" + rows[y * width * 3 : (y + 1) * width * 3] for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` (its pixel data does not follow)."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IEND", b"")
    )


# A 1×1 GIF89a: a two-colour palette, one image descriptor, LZW data, the trailer.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def jpeg() -> bytes:
    """An 8×8 grey baseline JPEG: one component, DC-only, one-code Huffman tables."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    quant = segment(0xDB, b"\x00" + b"\x01" * 64)
    frame = segment(0xC0, b"\x08" + struct.pack(">HH", 8, 8) + b"\x01" + b"\x01\x11\x00")
    # Each table has one code of length 1 ("0"): DC category 0, AC end-of-block.
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"
    tables = segment(0xC4, b"\x00" + one_code) + segment(0xC4, b"\x10" + one_code)
    scan = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    # Bits "0" (DC diff 0) and "0" (EOB), padded with ones.
    return b"\xff\xd8" + quant + frame + tables + scan + b"\x3f" + b"\xff\xd9"


def webp() -> bytes:
    """A 1×1 lossless WebP (VP8L) with one opaque colour: each prefix code has one symbol."""
    bits: list[int] = []

    def put(value: int, count: int) -> None:
        bits.extend((value >> i) & 1 for i in range(count))

    put(0, 14)  # width - 1
    put(0, 14)  # height - 1
    put(0, 1)  # alpha is not used
    put(0, 3)  # version 0
    put(0, 1)  # no transform
    put(0, 1)  # no colour cache
    put(0, 1)  # no meta prefix codes
    for symbol in (200, 30, 30, 255, 0):  # green, red, blue, alpha, distance
        put(1, 1)  # a simple code
        put(0, 1)  # of one symbol
        put(1, 1)  # of 8 bits
        put(symbol, 8)
    while len(bits) % 8:
        bits.append(0)
    stream = bytes(
        sum(bit << i for i, bit in enumerate(bits[at : at + 8])) for at in range(0, len(bits), 8)
    )
    chunk = b"\x2f" + stream
    if len(chunk) % 2:
        chunk += b"\x00"  # RIFF chunks are padded to an even size
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(b"\x2f" + stream)) + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4" viewBox="0 0 4 4">'
    b'<rect width="4" height="4" fill="#36c"/></svg>\n'
)
