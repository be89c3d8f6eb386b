"""Hostile PNG bytes shared by the core and reliability tests."""

from __future__ import annotations

import struct
import zlib


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w x h RGBA pixels but carries almost no data: a pixel bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
