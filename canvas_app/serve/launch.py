"""Start (or join) a Ray cluster and deploy the engine server: ``canvas-app serve``.

Ray is told to stay quiet and local: usage stats off, no dashboard, a temp dir of our own (not the
user's home), and the node bound to 127.0.0.1 unless the caller joins a cluster with ``address``.
The HTTP endpoint binds to 127.0.0.1 unless ``host`` says otherwise. Importing this module does not
import ray (the CLI checks for it and says how to install it).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP_NAME = "canvas-app"
TOKEN_FILE_NAME = "server-token"
INSTALL_HINT = 'the engine server needs Ray Serve: pip install "canvas-app[serve]"'


class ServeError(Exception):
    """Cannot start the server; the message is for a person."""


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        return False
    return True


def default_token_file() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / TOKEN_FILE_NAME


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token in ``path``, or a new one written there (owner-only). Returns (token, created)."""
    if path.is_file():
        token = path.read_text("utf-8").strip()
        if len(token) < 16:
            raise ServeError(f"the token in {path} is shorter than 16 characters")
        return token, False
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def ray_temp_dir() -> Path:
    """Our own short temp dir (Ray's socket paths must stay under ~100 characters)."""
    return Path(tempfile.gettempdir()) / f"canvas-ray-{os.getuid() if hasattr(os, 'getuid') else 0}"


def quiet_ray_environment(local_cluster: bool) -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if local_cluster and "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_TOKEN_PATH" not in os.environ:
        # Ray's own token auth, with a token that lives only in this process and its children:
        # left alone, Ray 2.5x writes one into ~/.ray/auth_token.
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        try:  # Ray reads both once; an earlier ``import ray`` needs them read again
            from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError):
            pass


@dataclass
class Server:
    url: str
    token: str
    started_ray: bool

    def stop(self) -> None:
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            if self.started_ray:
                ray.shutdown()


def start(
    token: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    models_dir: Path | None = None,
    replicas: int = 1,
    gpus_per_replica: float = 0.0,
    cpus_per_replica: float = 1.0,
    address: str | None = None,
    device: str | None = None,
    num_cpus: int | None = None,
) -> Server:
    """Deploy the engine and return once every replica is up (the model loads at the first run)."""
    if not ray_available():
        raise ServeError(INSTALL_HINT)
    if replicas < 1:
        raise ServeError("--replicas must be at least 1")
    if gpus_per_replica < 0:
        raise ServeError("--gpus-per-replica must not be negative")
    if models_dir is not None and not models_dir.is_dir():
        raise ServeError(f"the models folder {models_dir} does not exist")
    import ray

    quiet_ray_environment(local_cluster=not address and not ray.is_initialized())
    from ray import serve

    from canvas_app.serve.deployment import build_app

    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "namespace": APP_NAME,
            # The worker processes import canvas_app the way this process does.
            "runtime_env": {"env_vars": {"PYTHONPATH": _pythonpath(), "RAY_USAGE_STATS_ENABLED": "0"}},
        }
        if address:
            kwargs["address"] = address
        else:
            temp = ray_temp_dir()
            temp.mkdir(parents=True, exist_ok=True)
            kwargs.update(_temp_dir=str(temp), _node_ip_address="127.0.0.1", num_cpus=num_cpus)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ServeError(f"cannot start or join the Ray cluster: {error}") from None
        started = not address
    serve.start(http_options={"host": host, "port": port})
    app = build_app(
        token,
        str(models_dir) if models_dir else None,
        replicas,
        gpus_per_replica,
        cpus_per_replica,
        device,
    )
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return Server(f"http://{shown}:{port}", token, started)


def _pythonpath() -> str:
    """This checkout first, so replicas load the same canvas_app as the process that deployed it."""
    here = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH", "")
    return here + (os.pathsep + rest if rest else "")
