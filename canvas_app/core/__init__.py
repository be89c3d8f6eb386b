"""canvas_app.core."""
