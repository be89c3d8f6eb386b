"""Test-wide settings: no network, no screen, no user settings or recovery files touched."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Recovery files of an earlier crash in the user's data folder must not open a dialog in a test.
os.environ.setdefault("CANVAS_APP_RECOVERY_DIR", tempfile.mkdtemp(prefix="canvas-app-recovery-"))
