"""PyInstaller entry point: the bundle's ``canvas-app`` executable is the ``canvas-app`` console script."""

import multiprocessing

from canvas_app.cli import main

if __name__ == "__main__":
    # Lets any worker process that torch or the app spawns start as a worker, not as a second app.
    multiprocessing.freeze_support()
    raise SystemExit(main())
