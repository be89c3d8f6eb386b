import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    # Every UI test paints and writes settings: guard against the bindings' None refcount bug.
    from canvas_app.ui import refcount_guard

    refcount_guard.install()


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window, active (keys go to it), closed at the end with its unsaved changes discarded.
    A test file may define its own ``window`` fixture instead."""
    from helpers import active_window

    yield from active_window(qtbot, tmp_path)
