"""canvas_app.engine."""
