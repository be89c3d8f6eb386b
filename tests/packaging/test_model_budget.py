"""The built-in model's files stay within their budget: one copy of each shared component."""

from __future__ import annotations

from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
BUDGET_BYTES = 30_000_000  # issue 16: "all shipped model files <= 30 MB", both pipelines together
pytestmark = pytest.mark.skipif(not (MODELS / "builtin").is_dir(), reason="built-in model not installed")


def test_all_shipped_model_files_fit_the_budget() -> None:
    size = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert size <= BUDGET_BYTES, f"{size / 1e6:.2f} MB of model files, the budget is 30 MB"


def test_the_inpainting_folder_carries_no_second_copy_of_shared_components() -> None:
    from canvas_app.engine.models import SHARED_COMPONENTS

    inpaint = MODELS / "builtin-inpaint"
    if not inpaint.is_dir():
        pytest.skip("no inpainting model")
    assert [name for name in SHARED_COMPONENTS if (inpaint / name).exists()] == []
    assert (inpaint / "unet").is_dir() and (MODELS / "builtin" / "vae").is_dir()
