"""canvas_app.ui."""
