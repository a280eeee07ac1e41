"""rfgen_jax: multi-source pose-guided image generation with residual-flow correction (Lu et al., AAAI 2022)."""
from rfgen_jax import xla_cpu_defaults as _xla_cpu_defaults

__version__ = "0.1.0"
_xla_cpu_defaults.apply()
