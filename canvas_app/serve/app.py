"""The engine server as a Ray Serve import path, for clusters run by ``serve deploy`` or KubeRay
(packaging/ray/rayservice.yaml): ``import_path: canvas_app.serve.app:app``.

It is configured by environment variables on the cluster's nodes, not by arguments:
CANVAS_APP_SERVE_TOKEN (required, at least 16 characters), CANVAS_APP_SERVE_MODELS (a models folder
on every GPU node), CANVAS_APP_SERVE_DEVICE. Replica counts and GPUs come from the Serve config.
"""

from __future__ import annotations

import os

from canvas_app.serve.deployment import build_app

TOKEN_ENV = "CANVAS_APP_SERVE_TOKEN"


def _token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if len(token) < 16:
        raise RuntimeError(f"set {TOKEN_ENV} to the server's token (at least 16 characters)")
    return token


app = build_app(
    _token(),
    models_dir=os.environ.get("CANVAS_APP_SERVE_MODELS") or None,
    device=os.environ.get("CANVAS_APP_SERVE_DEVICE") or None,
)
