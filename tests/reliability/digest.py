"""A content digest of a document, shared by the crash driver and the tests that check it."""

from __future__ import annotations

import hashlib

from canvas_app.core.document import Document


def digest(doc: Document) -> str:
    """Hash of image and mask pixels, frames and patches (not the view or the history)."""
    h = hashlib.sha256()
    for raster in (doc.image, doc.mask):
        for key in sorted(raster.tile_keys()):
            tile = raster.get_tile(*key)
            if tile is not None and tile.any():
                h.update(repr(key).encode())
                h.update(tile.tobytes())
        h.update(b"|")
    for frame in doc.frames.values():
        h.update(repr(sorted(frame.to_dict().items())).encode())
    for patch in doc.patches:
        h.update(repr(sorted(patch.to_dict().items())).encode())
    return h.hexdigest()[:16]
