"""The built-in model's recipe: procedural scenes, word-level tokenizer, architecture, training, export
and evaluation. Run from the repository root, e.g. ``python -m tools.builtin_model.train all``."""
