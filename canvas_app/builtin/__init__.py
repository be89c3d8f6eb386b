"""canvas_app.builtin."""
