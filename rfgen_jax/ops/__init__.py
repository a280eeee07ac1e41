"""Array operations shared by the model and the losses."""
from rfgen_jax.ops.gaussian_resample import gaussian_resample
from rfgen_jax.ops.warp import bilinear_warp, resize_flow

__all__ = ["bilinear_warp", "gaussian_resample", "resize_flow"]
