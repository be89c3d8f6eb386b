"""canvas_app.engine."""

from canvas_app.engine.devices import set_openmp_defaults

# Before anything imports torch (engine.devices does not): the OpenMP runtime reads it when loaded.
set_openmp_defaults()
