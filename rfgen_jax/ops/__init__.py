"""Array operations shared by the model and the losses."""
from rfgen_jax.ops.warp import bilinear_warp, resize_flow

__all__ = ["bilinear_warp", "resize_flow"]
