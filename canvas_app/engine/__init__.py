"""canvas_app.engine."""

from canvas_app.engine.compiling import set_cache_default
from canvas_app.engine.devices import set_openmp_defaults

# Before anything imports torch or diffusers (engine.devices and engine.compiling do not): the
# OpenMP runtime reads its variables when it loads, and importing diffusers' models sets inductor's
# cache folder to its own default.
set_openmp_defaults()
set_cache_default()
