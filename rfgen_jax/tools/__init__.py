"""Command-line tools: weight conversion (`python -m rfgen_jax.tools.convert_*`) and generation."""
