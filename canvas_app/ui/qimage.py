"""ndarray <-> QImage conversion without per-pixel Python loops.

Arrays are HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA, straight alpha) uint8. QImages produced here own
a copy of their pixels, so the array can change afterwards.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def array_to_qimage(array: np.ndarray) -> QImage:
    """Copy ``array`` into a new QImage (Grayscale8, RGB888 or RGBA8888)."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    data = np.ascontiguousarray(array)
    if data.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    elif data.ndim == 3 and data.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
    elif data.ndim == 3 and data.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
    else:
        raise ValueError(f"expected HxW, HxWx3 or HxWx4, got shape {array.shape}")
    h, w = data.shape[:2]
    image = QImage(data.data, w, h, data.strides[0], fmt)
    return image.copy()  # detach from the numpy buffer


def qimage_to_array(image: QImage, channels: int = 4) -> np.ndarray:
    """Copy a QImage of any format into an HxWxC uint8 array (C = 3 or 4, straight alpha)."""
    if channels not in (3, 4):
        raise ValueError("channels must be 3 or 4")
    fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    converted = image.convertToFormat(fmt)
    h, w = converted.height(), converted.width()
    stride = converted.bytesPerLine()
    buf = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * h)
    return buf.reshape(h, stride)[:, : w * channels].reshape(h, w, channels).copy()
