"""What the app does not run: recipes and measurements kept with the source (not in the wheel)."""
