"""Reading image files people drop, paste or pass on the command line, trusting nothing.

One reader for the GUI import and the CLI: it checks the declared size before decoding (Pillow's
decompression-bomb limit and our own pixel cap), turns truncated or mislabelled files into a
clear ``ImageReadError``, shows EXIF-rotated photos upright, and converts 16-bit, palette, CMYK and
grey-with-alpha images to 8-bit RGB(A) or L instead of refusing them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The largest image we decode: 16384 x 16384 (1 GiB as RGBA).
MAX_IMAGE_PIXELS = 16384 * 16384

ImageMode = Literal["RGBA", "RGB", "L", "auto"]


class ImageReadError(ValueError):
    """An image file cannot be read; the message names the file and says why."""


def read_image(
    path: str | os.PathLike[str], mode: ImageMode = "RGBA", max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, dict[str, str]]:
    """The pixels (uint8, HxWx4 / HxWx3 / HxW) upright, and the text metadata (PNG tEXt/iTXt).

    ``mode`` "auto" gives RGBA for images with transparency and RGB for the rest.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Between Pillow's warning and error limits: our own cap below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w <= 0 or h <= 0:
                    raise ImageReadError(f"{path.name} declares an empty image ({w}x{h})")
                if w * h > max_pixels:
                    raise ImageReadError(
                        f"{path.name} is too large: {w}x{h} pixels, more than the {max_pixels} allowed"
                    )
                meta = {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
                img.load()  # decodes now: truncated data fails here, inside the try
                upright = ImageOps.exif_transpose(img) or img
                return _convert(upright, mode), meta
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path.name} is too large to open safely ({exc})") from None
    except FileNotFoundError:
        raise ImageReadError(f"{path.name}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path.name} is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path.name} is not an image this app can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path.name} is damaged or not an image this app can read ({exc})") from None


def _convert(img: Image.Image, mode: ImageMode) -> np.ndarray:
    img = _to_8bit(img)
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    if has_alpha and img.mode != "RGBA":
        img = img.convert("RGBA")  # palette/LA transparency first, so it is not lost or warned about
    target = ("RGBA" if has_alpha else "RGB") if mode == "auto" else mode
    return np.asarray(img.convert(target)).copy()


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey images scaled to 8 bits (Pillow's own convert would clip them)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img).astype(np.int64)
        if img.mode == "I" and values.max(initial=0) <= 255:
            return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
        return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8), "L")
    if img.mode == "F":
        values = np.nan_to_num(np.asarray(img, np.float64), nan=0.0)
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(values * scale, 0, 255).round().astype(np.uint8), "L")
    return img
