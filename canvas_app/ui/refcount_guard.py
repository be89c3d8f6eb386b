"""A guard against a reference-counting bug in the installed PySide6 bindings.

With PySide6 6.12 on CPython 3.11, many methods that return ``void`` (``QPainter.drawPixmap``,
``QSettings.setValue``, ...) and ``Signal(bool).emit`` hand Python a ``None`` / ``True`` / ``False``
without taking a reference. Each call then drops one reference the singleton never had; after
enough calls (painting 50 tiles per frame gets there in minutes) CPython aborts with
"none_dealloc: deallocating None". The singletons are static objects that are never freed, so
adding a large number of references to them up front is harmless and makes the bug unreachable.

:func:`install` measures whether the bug is present and pads only then; on fixed bindings (or on
CPython 3.12+, where the singletons are immortal) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

PAD = 1 << 40  # at a million lost references per second this lasts twelve days
_installed = False


def leaks_none(calls: int = 64) -> bool:
    """True when a void PySide6 call loses a reference to None."""
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(calls):
        point.setX(1.0)
    return sys.getrefcount(None) - before < -calls // 2


def _pad(obj: object) -> None:
    # ob_refcnt is the first field of every object in release builds of CPython.
    ctypes.c_ssize_t.from_address(id(obj)).value += PAD


def install() -> bool:
    """Pad None, True and False if the bindings need it. Returns True when padding was applied."""
    global _installed
    if _installed:
        return True
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount") or not leaks_none():
        return False
    for singleton in (None, True, False):
        _pad(singleton)
    _installed = True
    return True
