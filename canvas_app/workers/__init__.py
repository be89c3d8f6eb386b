"""canvas_app.workers."""
