"""The command line's engine-server parts: ``canvas-app serve`` and ``generate --engine URL``.

Kept apart from cli.py so that the argument parsing there stays small; nothing here imports ray
until ``serve`` runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from canvas_app.cli_run import EXIT_FAILED, PROG, UsageError

TOKEN_ENV = "CANVAS_APP_TOKEN"


def add_remote_arguments(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--engine", metavar="URL", help="run on an engine server (canvas-app serve), e.g. http://gpu-box:8000"
    )
    gen.add_argument("--token", help=f"the server's token (or ${TOKEN_ENV}, or --token-file)")
    gen.add_argument("--token-file", help="a file holding the server's token")


def add_serve_parser(sub: Any) -> None:
    srv = sub.add_parser("serve", help="serve the engine to other computers over HTTP (Ray Serve)")
    srv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)"
    )
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--models", metavar="DIR", help="a folder of models to offer besides the built-in one")
    srv.add_argument("--replicas", type=int, default=1, help="engine copies (one per GPU, say)")
    srv.add_argument(
        "--gpus-per-replica", type=float, default=0.0, help="GPUs each replica reserves (0: CPU)"
    )
    srv.add_argument("--cpus-per-replica", type=float, default=1.0)
    srv.add_argument("--device", help="the replicas' device (cuda, cpu, ...; default: the best available)")
    srv.add_argument("--address", metavar="RAY_ADDRESS", help="join this Ray cluster instead of starting one")
    srv.add_argument(
        "--token-file", help="read the token from this file (created with a new token if missing)"
    )


def read_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token).strip()
    if args.token_file:
        try:
            return Path(args.token_file).read_text("utf-8").strip()
        except OSError as error:
            raise UsageError(f"cannot read the token file: {error}") from None
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    raise UsageError(f"--engine needs --token, --token-file or ${TOKEN_ENV}")


def make_remote_engine(args: argparse.Namespace) -> Any:
    from canvas_app.engine.remote import RemoteEngine

    if args.device:
        raise UsageError("--device is the server's choice with --engine; drop --device")
    try:
        return RemoteEngine(args.engine, read_token(args))
    except ValueError as error:
        raise UsageError(str(error)) from None


def serve_main(args: argparse.Namespace) -> int:
    from canvas_app.serve import launch

    if not launch.ray_available():
        print(f"{PROG}: error: {launch.INSTALL_HINT}", file=sys.stderr)
        return EXIT_FAILED
    path = Path(args.token_file) if args.token_file else launch.default_token_file()
    try:
        token, created = launch.load_or_create_token(path)
    except (OSError, launch.ServeError) as error:
        raise UsageError(f"token file {path}: {error}") from None
    models = Path(args.models).expanduser() if args.models else None
    try:
        server = launch.start(
            token,
            host=args.host,
            port=args.port,
            models_dir=models,
            replicas=args.replicas,
            gpus_per_replica=args.gpus_per_replica,
            cpus_per_replica=args.cpus_per_replica,
            address=args.address,
            device=args.device,
        )
    except launch.ServeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Engine server at {server.url} ({args.replicas} replica(s)); Ctrl+C stops it.")
    if created:
        print(f"New token (saved in {path}): {token}")
    else:
        print(f"Token: in {path}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("Listening beyond this computer: put TLS in front (see packaging/ray/README.md).")
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0
