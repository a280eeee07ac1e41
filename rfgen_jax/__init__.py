"""rfgen_jax: multi-source pose-guided image generation with residual-flow correction (Lu et al., AAAI 2022)."""
__version__ = "0.1.0"
