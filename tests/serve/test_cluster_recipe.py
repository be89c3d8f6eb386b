"""The cluster recipe in packaging/ray: its Serve config passes Ray's own schema (the check `serve
deploy` makes), names our deployment and import path, and that import path builds the app."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from serve_support import RAY_MISSING

if RAY_MISSING:
    pytest.skip(RAY_MISSING, allow_module_level=True)

RECIPE = Path(__file__).resolve().parents[2] / "packaging" / "ray" / "rayservice.yaml"


def serve_config() -> dict:
    manifest = yaml.safe_load(RECIPE.read_text("utf-8"))
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    return yaml.safe_load(manifest["spec"]["serveConfigV2"])


def test_the_serve_config_passes_rays_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(serve_config())
    (application,) = config.applications
    assert application.import_path == "canvas_app.serve.app:app"
    assert [d.name for d in application.deployments] == ["canvas-engine"]
    assert application.deployments[0].ray_actor_options.num_gpus == 1


def test_the_import_path_builds_the_app_from_the_environment(monkeypatch) -> None:
    import importlib
    import sys

    monkeypatch.delenv("CANVAS_APP_SERVE_TOKEN", raising=False)
    sys.modules.pop("canvas_app.serve.app", None)
    with pytest.raises(RuntimeError, match="CANVAS_APP_SERVE_TOKEN"):
        importlib.import_module("canvas_app.serve.app")
    monkeypatch.setenv("CANVAS_APP_SERVE_TOKEN", "a-token-of-enough-length")
    sys.modules.pop("canvas_app.serve.app", None)
    module = importlib.import_module("canvas_app.serve.app")
    from ray.serve import Application

    assert isinstance(module.app, Application)
