"""Source image encoder, target pose encoder and decoder (docs/design.md, "## 2. Generator")."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rfgen_jax.models import layers

Dtype = Any


class SourceEncoder(nn.Module):
  """Encodes one source image into features at every fusion level.

  Stride-2 EncoderBlocks from H down to H / max(levels); block s (1-based) outputs
  `channels[s - 1]` channels at H/2^s.

  Attributes:
    channels: channels at H/2, H/4, ..., H/max(levels), fine to coarse (already scaled).
    levels: fusion levels (downsampling factors), coarse to fine.
    dtype: compute dtype.
  """
  channels: Sequence[int]
  levels: Sequence[int]
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, image: jax.Array) -> list[jax.Array]:
    """(B, H, W, 3) image in [-1, 1] -> list over levels (coarse to fine) of (B, H/l, W/l, C_l)."""
    x = image.astype(self.dtype)
    feats = {}
    for i, c in enumerate(self.channels):
      x = layers.EncoderBlock(c, self.dtype, self.options, name=f"encoder_{i}")(x)
      feats[2 ** (i + 1)] = x
    return [feats[level] for level in self.levels]


class TargetPoseEncoder(nn.Module):
  """Encodes the target pose map down to the coarsest fusion level (f_t at level 1).

  Attributes:
    channels: channels at H/2, H/4, ..., H/max(levels), fine to coarse (already scaled).
    dtype: compute dtype.
    options: layer options.
  """
  channels: Sequence[int]
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, pose: jax.Array) -> jax.Array:
    """(B, H, W, P) pose map -> (B, H/L, W/L, channels[-1]) with L = 2^len(channels)."""
    x = pose.astype(self.dtype)
    for i, c in enumerate(self.channels):
      x = layers.EncoderBlock(c, self.dtype, self.options, name=f"encoder_{i}")(x)
    return x


class Decoder(nn.Module):
  """The target image predictor's up path: residual up-blocks D_i (x2 each) and the output conv.

  The generator interleaves `up` with the RF blocks; `output` maps full-resolution features to the image.

  Attributes:
    channels: output channels of each up-block, in call order (from H/L to H).
    output_norm: instance norm before the output conv (GFLA: none; config `model.output_norm`).
    dtype: compute dtype.
    options: layer options.
  """
  channels: Sequence[int]
  output_norm: bool = False
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  def setup(self):
    self.ups = [layers.ResBlockUp(c, dtype=self.dtype, options=self.options) for c in self.channels]
    self.out = layers.OutputConv(3, self.output_norm, self.dtype, self.options)

  def up(self, x: jax.Array, step: int) -> jax.Array:
    """Up-block number `step` (0 = coarsest): (B, h, w, C) -> (B, 2h, 2w, channels[step])."""
    return self.ups[step](x)

  def output(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, 3) float32 image in [-1, 1]."""
    return self.out(x).astype(jnp.float32)

  def __call__(self, x: jax.Array) -> jax.Array:
    """All up-blocks then the output conv (no fusion); used only for stand-alone checks."""
    for step in range(len(self.channels)):
      x = self.up(x, step)
    return self.output(x)
