"""Building blocks shared by the generator's parts (GFLA-style, NHWC).

Every block takes `(B, H, W, C)` features and a compute `dtype`; parameters are always float32
(`param_dtype`). Normalisation is instance normalisation (per sample and channel over H x W, with a
learned scale and bias), activation LeakyReLU(0.1), as in GFLA's PoseFlowNet.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

LEAKY_SLOPE = 0.1
# Small init for the flow heads: initial flows are O(1e-2) pixels, so training starts near identity.
FLOW_HEAD_INIT = nn.initializers.normal(stddev=1e-3)


def leaky_relu(x: jax.Array) -> jax.Array:
  """LeakyReLU with slope 0.1 (GFLA's `LeakyReLU` nonlinearity)."""
  return nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def scale_channels(channels: int, width: float) -> int:
  """Channel count `channels * width`, rounded, at least 1."""
  return max(1, int(round(channels * width)))


def conv(features: int, kernel: int, dtype: Dtype, stride: int = 1, padding: Any = "SAME",
         name: str | None = None, kernel_init=None) -> nn.Conv:
  """A square 2D convolution with float32 params and the given compute dtype."""
  kwargs = {}
  if kernel_init is not None:
    kwargs["kernel_init"] = kernel_init
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding, dtype=dtype,
                 param_dtype=jnp.float32, name=name, **kwargs)


def instance_norm(dtype: Dtype, name: str | None = None) -> nn.Module:
  """Instance normalisation with affine scale/bias (statistics reduced in float32)."""
  return nn.InstanceNorm(epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32, name=name)


class EncoderBlock(nn.Module):
  """GFLA's EncoderBlock: norm, act, conv4x4/2, norm, act, conv3x3.

  (B, H, W, C_in) -> (B, H/2, W/2, features). H and W must be even.
  """
  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = leaky_relu(instance_norm(self.dtype, "norm_0")(x))
    x = conv(self.features, 4, self.dtype, stride=2, padding=((1, 1), (1, 1)), name="conv_down")(x)
    x = leaky_relu(instance_norm(self.dtype, "norm_1")(x))
    return conv(self.features, 3, self.dtype, name="conv")(x)


class ResBlockUp(nn.Module):
  """GFLA's ResBlockDecoder: a residual up-block (x2).

  main: norm, act, conv3x3 (hidden), norm, act, transposed conv3x3/2 (features);
  shortcut: transposed conv3x3/2 (features). (B, H, W, C) -> (B, 2H, 2W, features).
  """
  features: int
  hidden: int | None = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    hidden = self.hidden or self.features
    up = lambda name: nn.ConvTranspose(self.features, (3, 3), strides=(2, 2), padding="SAME",
                                       dtype=self.dtype, param_dtype=jnp.float32, name=name)
    y = leaky_relu(instance_norm(self.dtype, "norm_0")(x))
    y = conv(hidden, 3, self.dtype, name="conv")(y)
    y = leaky_relu(instance_norm(self.dtype, "norm_1")(y))
    y = up("conv_up")(y)
    return y + up("shortcut")(x)


class Jump(nn.Module):
  """GFLA's Jump (skip-connection conv): norm, act, conv3x3. (B, H, W, C) -> (B, H, W, features)."""
  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = leaky_relu(instance_norm(self.dtype, "norm")(x))
    return conv(self.features, 3, self.dtype, padding="REFLECT", name="conv")(x)


class OutputConv(nn.Module):
  """GFLA's Output: norm, act, reflect-padded conv3x3 to `features`, tanh. Result in [-1, 1]."""
  features: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = leaky_relu(instance_norm(self.dtype, "norm")(x))
    return jnp.tanh(conv(self.features, 3, self.dtype, padding="REFLECT", name="conv")(x))
