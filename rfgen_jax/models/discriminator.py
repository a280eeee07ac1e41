"""Residual patch discriminator with spectral normalisation (GFLA's ResDiscriminator).

No normalisation layers, LeakyReLU(0.1), every conv spectrally normalised (`flax.linen.SpectralNorm`,
one power iteration per call; its `u` vectors and `sigma` live in the `batch_stats` collection).
Convolutions are `layers.Conv` (the fast forms of docs/performance.md, "Convolutions"), initialised as
config `model.init` says (GFLA: orthogonal, gain 0.02, for the discriminator too).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from rfgen_jax.models import layers
from rfgen_jax.models.layers import leaky_relu, scale_channels

Dtype = Any



def _sn_conv(x, features, kernel, kind, dtype, options, update_stats, name):
  layer = layers.conv(features, kernel, dtype, options, name, kind=kind)
  return nn.SpectralNorm(layer, name=f"{name}_sn")(x, update_stats=update_stats)


class ResBlockDown(nn.Module):
  """GFLA's ResBlockEncoder without norm: (B, H, W, C) -> (B, H/2, W/2, features).

  main: act, SN conv3x3 (hidden), act, SN conv4x4/2; shortcut: 2x2 average pool, SN conv1x1.
  """
  features: int
  hidden: int
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
    o, d = self.options, self.dtype
    y = _sn_conv(leaky_relu(x), self.hidden, 3, "conv", d, o, update_stats, "conv_0")
    y = _sn_conv(leaky_relu(y), self.features, 4, "down", d, o, update_stats, "conv_1")
    s = nn.avg_pool(x, (2, 2), strides=(2, 2))
    s = _sn_conv(s, self.features, 1, "conv", d, o, update_stats, "shortcut")
    return y + s


class ResDiscriminator(nn.Module):
  """Patch discriminator: `num_down` residual down-blocks, act, SN conv1x1 to one logit per patch.

  Channels: block i outputs min(channels * 2^i, max_channels); block 0 has hidden width `channels`.

  Attributes:
    channels: ndf (scaled).
    num_down: number of down-blocks (3 for 128-high images, 4 for 256-high).
    max_channels: channel cap (GFLA's img_f).
    dtype: compute dtype (params float32, logits float32).
    options: layer options (init, conv implementation).
  """
  channels: int = 32
  num_down: int = 3
  max_channels: int = 128
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, images: jax.Array, update_stats: bool = False) -> jax.Array:
    """(B, H, W, 3) images in [-1, 1] -> (B, H/2^num_down, W/2^num_down, 1) float32 patch logits.

    With `update_stats=True` (training; apply with `mutable=["batch_stats"]`) the power-iteration
    vectors are updated.
    """
    shape = jnp.shape(images)
    m = 2 ** self.num_down
    if len(shape) != 4 or shape[-1] != 3 or shape[1] % m or shape[2] % m:
      raise ValueError(f"images must be (B, H, W, 3) with H and W divisible by 2^{self.num_down} "
                       f"= {m}, got shape {shape}.")
    x = images.astype(self.dtype)
    prev = self.channels
    for i in range(self.num_down):
      out = min(self.channels * 2 ** i, self.max_channels)
      x = ResBlockDown(out, prev, self.dtype, self.options, name=f"block_{i}")(x, update_stats)
      prev = out
    logits = _sn_conv(leaky_relu(x), 1, 1, "conv", self.dtype, self.options, update_stats, "logits")
    return logits.astype(jnp.float32)


def build_discriminator(config: ml_collections.ConfigDict) -> ResDiscriminator:
  """The discriminator for a config (`model.disc_channels`, `model.disc_downsampling`,
  `model.disc_max_channels`, `model.width`, `model.dtype`, `model.init`, `model.conv_impl`)."""
  m = config.model
  return ResDiscriminator(
      channels=scale_channels(m.disc_channels, m.width),
      num_down=int(m.disc_downsampling),
      max_channels=scale_channels(m.disc_max_channels, m.width),
      dtype=layers.DTYPES[m.dtype],
      options=layers.Options(init=str(m.init), conv_impl=str(m.conv_impl)))
