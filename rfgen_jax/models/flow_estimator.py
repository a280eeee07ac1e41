"""The flow estimator F(I_s[k], P_s[k], P_t) (docs/design.md, "## 2. Generator"; GFLA's PoseFlowNet).

One source at a time: the generator vmaps this module over the K sources with shared parameters.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rfgen_jax.models import layers

Dtype = Any


def _log2(n: int) -> int:
  return int(n).bit_length() - 1


class FlowEstimator(nn.Module):
  """A fully convolutional pyramid with flow, occlusion and attention heads at the fusion levels.

  Encoder: `len(encoder_channels)` stride-2 EncoderBlocks (defaults 32-64-128-256-256, down to
  H/32); decoder: residual up-blocks back to the finest fusion level, each plus a Jump conv of the
  encoder feature at that resolution (GFLA's skip connections). Channels at resolution H/2^s are
  `encoder_channels[s - 1]` in both the encoder and the decoder.

  Input sizes need only be divisible by every level: inputs are zero-padded at the bottom/right to a
  multiple of 2^len(encoder_channels) and the heads' outputs cropped back, which leaves flows (in
  pixels, relative to each pixel) unchanged. This is what lets 256x176 (176 = 16 * 11) run.

  Attributes:
    encoder_channels: channels of the stride-2 encoder blocks, fine to coarse (already scaled).
    levels: fusion levels as downsampling factors, coarse to fine, powers of two in
      [2, 2^(len(encoder_channels) - 1)].
    occlusion: whether the occlusion head exists.
    attention: whether the attention-logit head exists.
    jump_norm: instance norm in the skip convs (GFLA: none; config `model.jump_norm`).
    dtype: compute dtype of the backbone; heads compute in float32.
    options: layer options (init, conv implementation).
  """
  encoder_channels: Sequence[int]
  levels: Sequence[int]
  occlusion: bool = True
  attention: bool = True
  jump_norm: bool = False
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, image: jax.Array, source_pose: jax.Array, target_pose: jax.Array):
    """Estimates flows from the target to one source.

    Args:
      image: (B, H, W, 3) source image in [-1, 1].
      source_pose: (B, H, W, P) source pose map.
      target_pose: (B, H, W, P) target pose map.
    Returns:
      dict of lists, one entry per level coarse to fine, float32:
        `flows` (B, H/l, W/l, 2) in pixels of that level's map (x, y);
        `occlusion` (B, H/l, W/l, 1) in (0, 1), or None when the head is off;
        `attention_logits` (B, H/l, W/l, 1), or None when the head is off.
    """
    b, h, w, _ = image.shape
    n = len(self.encoder_channels)
    mult = 2 ** n
    x = jnp.concatenate([image, source_pose, target_pose], axis=-1).astype(self.dtype)
    pad_h, pad_w = (-h) % mult, (-w) % mult
    if pad_h or pad_w:
      x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))

    skips = []
    for i, c in enumerate(self.encoder_channels):
      x = layers.EncoderBlock(c, self.dtype, self.options, name=f"encoder_{i}")(x)
      skips.append(x)   # skips[i] is at factor 2^(i + 1)

    heads = {}
    finest = _log2(min(self.levels))
    for s in range(n - 1, finest - 1, -1):
      factor = 2 ** s
      c = self.encoder_channels[s - 1]
      x = layers.ResBlockUp(c, c, self.dtype, self.options, name=f"decoder_{factor}")(x)
      x = x + layers.Jump(c, self.jump_norm, self.dtype, self.options,
                          name=f"jump_{factor}")(skips[s - 1])
      if factor in self.levels:
        heads[factor] = self._heads(x, factor, h // factor, w // factor)

    out = {"flows": [], "occlusion": [], "attention_logits": []}
    for level in self.levels:
      flow, occ, logits = heads[level]
      out["flows"].append(flow)
      out["occlusion"].append(occ)
      out["attention_logits"].append(logits)
    return out

  def _heads(self, x, factor, h, w):
    """Flow (2 ch), occlusion (1 ch, sigmoid) and attention logits (1 ch), cropped to (h, w)."""
    crop = lambda y: y[:, :h, :w, :]
    f32 = jnp.float32
    o = self.options
    flow = layers.conv(2, 3, f32, o, f"flow_{factor}", head=True)(x)
    occ = logits = None
    if self.occlusion:
      occ = crop(jax.nn.sigmoid(layers.conv(1, 3, f32, o, f"occlusion_{factor}")(x)))
    if self.attention:
      logits = crop(layers.conv(1, 3, f32, o, f"attention_{factor}")(x))
    return crop(flow), occ, logits
