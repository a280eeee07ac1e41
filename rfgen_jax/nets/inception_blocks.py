"""The building blocks of Inception-v3 (`rfgen_jax/nets/inception.py`), in Flax linen, layout NHWC.

Every convolution is `BasicConv`: `conv (no bias) -> BatchNorm (inference, eps 1e-3) -> ReLU`, the
batch-norm statistics frozen weights in the `params` collection beside the kernel:
`{"conv": {"kernel": (kh, kw, in, out)}, "bn": {"scale", "bias", "mean", "var": (out,)}}`. The blocks
`InceptionA..E` are torchvision's, with the two FID changes as switches: `include_pad` (the 3x3/1
average pool of the pool branch divides by 9 everywhere, torchvision; or by the in-image taps only,
pytorch-fid's FID blocks) and `InceptionE(pool="max")` (Mixed_7c of the FID network). Submodule names
follow the PyTorch state dict (`branch7x7dbl_3/conv/kernel`). Inputs and outputs are (B, H, W, C)
float32 feature maps; every spatial size below is in pixels of the block's input.
"""
from __future__ import annotations

from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

BN_EPSILON = 1e-3
_Padding = Tuple[Tuple[int, int], Tuple[int, int]]


def _pad(padding) -> _Padding:
  """(ph, pw) or int -> explicit ((ph, ph), (pw, pw))."""
  if isinstance(padding, int):
    padding = (padding, padding)
  return ((padding[0], padding[0]), (padding[1], padding[1]))


class BasicConv(nn.Module):
  """Conv (no bias) -> frozen BatchNorm (eps 1e-3) -> ReLU, as torchvision's `BasicConv2d`.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: (ph, pw) zero padding on each side.
  """
  features: int
  kernel_size: Tuple[int, int] = (1, 1)
  strides: Tuple[int, int] = (1, 1)
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H', W', features)."""
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides, padding=_pad(self.padding),
                use_bias=False, name="conv")(x)
    bn = _FrozenBatchNorm(self.features, name="bn")
    return jax.nn.relu(bn(x))


class _FrozenBatchNorm(nn.Module):
  """Inference-mode batch norm whose statistics are parameters (never updated)."""
  features: int
  epsilon: float = BN_EPSILON

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.ones, (self.features,))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    return x * mul + (bias - mean * mul)


def avg_pool_include_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average pool with zero padding 1 that divides by 9 everywhere.

  Equals `F.avg_pool2d(x, 3, 1, 1)` (PyTorch's default `count_include_pad=True`, torchvision's blocks).
  Args:
    x: (B, H, W, C).
  Returns:
    (B, H, W, C).
  """
  window, strides, pads = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads) / 9.0


def _avg_pool(x: jax.Array, include_pad: bool) -> jax.Array:
  return avg_pool_include_pad(x) if include_pad else avg_pool_exclude_pad(x)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average pool with padding 1 that averages only the in-image taps.

  Equals `F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)` (TensorFlow's SAME average pool).
  Args:
    x: (B, H, W, C).
  Returns:
    (B, H, W, C).
  """
  window, strides, pads = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
  ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
  return total / count


def max_pool(x: jax.Array, size: int = 3, stride: int = 2, padding: int = 0) -> jax.Array:
  """Max pool (B, H, W, C) with -inf padding, as `F.max_pool2d` (floor mode)."""
  return nn.max_pool(x, (size, size), strides=(stride, stride),
                     padding=((padding, padding), (padding, padding)))


class InceptionA(nn.Module):
  """InceptionA (Mixed_5b/5c/5d): 64 + 64 + 96 + pool_features channels (FIDInceptionA: exclude pad)."""
  pool_features: int
  include_pad: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name="branch1x1")(x)
    b5 = BasicConv(48, name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, name="branch_pool")(_avg_pool(x, self.include_pad))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """InceptionB (Mixed_6a): stride-2 reduction, 384 + 96 + in channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
    bd = BasicConv(64, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  """InceptionC (Mixed_6b..6e): factorised 7x7 branches, 4 x 192 channels (FIDInceptionC: exclude pad)."""
  channels_7x7: int
  include_pad: bool = False

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, name="branch1x1")(x)
    b7 = BasicConv(c7, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, name="branch_pool")(_avg_pool(x, self.include_pad))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """InceptionD (Mixed_7a): stride-2 reduction, 320 + 192 + in channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
    b7 = BasicConv(192, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """InceptionE (Mixed_7b/7c), 2048 channels; pool branch: `pool="avg"` (torchvision with `include_pad`,
  FIDInceptionE_1 without) or `pool="max"` (FIDInceptionE_2, Mixed_7c of the FID network)."""
  pool: str = "avg"
  include_pad: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name="branch1x1")(x)
    b3 = BasicConv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv(448, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.pool == "avg":
      pooled = _avg_pool(x, self.include_pad)
    elif self.pool == "max":
      pooled = max_pool(x, 3, 1, 1)
    else:
      raise ValueError(f"InceptionE: pool must be 'avg' or 'max', got {self.pool!r}.")
    bp = BasicConv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)
