"""canvas_app: an infinite canvas for diffusion image generation."""

__version__ = "0.1.0"
