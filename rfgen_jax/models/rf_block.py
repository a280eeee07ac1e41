"""The residual-flow (RF) block of one fusion level (equations 3-6 of the paper)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rfgen_jax.models import layers
from rfgen_jax.ops import bilinear_warp

# model.attention_activation: what turns the estimator's attention logits into weights before the softmax
# over the K sources ("sigmoid": the paper; "none": the logits themselves).
ATTENTION_ACTIVATIONS = ("sigmoid", "none")

Dtype = Any


class ResidualFlowPredictor(nn.Module):
  """R_i: conv3x3, act, conv3x3, act, zero-initialised conv3x3 to 2 channels.

  (B, h, w, C_in) -> (B, h, w, 2) float32 residual flow in pixels of the level's map; exactly zero
  at initialisation.
  """
  hidden: int
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    o = self.options
    x = layers.leaky_relu(layers.conv(self.hidden, 3, self.dtype, o, "conv_0")(x))
    x = layers.leaky_relu(layers.conv(self.hidden, 3, self.dtype, o, "conv_1")(x))
    return layers.conv(2, 3, jnp.float32, o, "conv_out", kernel_init=nn.initializers.zeros)(x)


class SourceWarp(nn.Module):
  """Per source: initial warp, residual flow, refined warp (equations 3-4).

  Vmapped over K by `RFBlock` with shared parameters; sees one source.

  Attributes:
    residual_flow: if False there is no R_i (no parameters) and the refined flow is the initial one.
    hidden: hidden channels of R_i.
    padding: warp padding, "zeros" or "border".
    warp_impl: `bilinear_warp` implementation ("gather" | "onehot" | "reference").
    dtype: compute dtype.
    options: layer options (init, conv implementation).
  """
  residual_flow: bool
  hidden: int
  padding: str = "zeros"
  warp_impl: str = "gather"
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, feat: jax.Array, flow: jax.Array, target_feat: jax.Array):
    """Warps one source's features.

    Args:
      feat: (B, h, w, C) source features f[k, i].
      flow: (B, h, w, 2) float32 initial flow w[k, i], pixels of this map.
      target_feat: (B, h, w, C) target features f_t[i].
    Returns:
      (warped (B, h, w, C) = W(f, w + r), refined flow (B, h, w, 2) float32 = w + r).
    """
    warped = bilinear_warp(feat, flow, padding=self.padding, impl=self.warp_impl)
    if not self.residual_flow:
      return warped, flow
    r = ResidualFlowPredictor(self.hidden, self.dtype, self.options,
                              name="residual_predictor")(
        jnp.concatenate([target_feat.astype(self.dtype), warped.astype(self.dtype)], axis=-1))
    refined = flow + r
    return bilinear_warp(feat, refined, padding=self.padding, impl=self.warp_impl), refined


class RFBlock(nn.Module):
  """Warps, mattes and fuses the K sources' features at one level (equations 3-6, without D_i).

  g[k] = W(f[k], w[k] + r[k]) * (1 - m[k]) + f_t * m[k];  fused = sum_k softmax_k(a)[k] * g[k].

  The attention map a[k] is the estimator's attention head through `attention_activation`:
  "sigmoid" (the paper: a[k] in (0, 1), then the softmax over the sources) or "none" (the softmax of
  the raw logits).

  Attributes:
    residual_flow, occlusion, attention: the ablation switches (config `model.*`).
    attention_activation: "sigmoid" | "none" (config `model.attention_activation`).
    hidden: hidden channels of R_i.
    padding: warp padding.
    warp_impl: `bilinear_warp` implementation.
    dtype: compute dtype.
    options: layer options (init, conv implementation).
  """
  residual_flow: bool = True
  occlusion: bool = True
  attention: bool = True
  attention_activation: str = "sigmoid"
  hidden: int = 64
  padding: str = "zeros"
  warp_impl: str = "gather"
  dtype: Dtype = jnp.float32
  options: layers.Options = layers.DEFAULT

  @nn.compact
  def __call__(self, target_feat, source_feats, flows, occlusion=None, attention_logits=None):
    """Fuses the sources into the target features.

    Args:
      target_feat: (B, h, w, C) f_t[i].
      source_feats: (B, K, h, w, C) f[k, i].
      flows: (B, K, h, w, 2) float32 estimator flows w[k, i] (pixels of this map).
      occlusion: (B, K, h, w, 1) m[k, i] in [0, 1] (1 = not visible in source k); ignored when off.
      attention_logits: (B, K, h, w, 1) the attention head's logits; ignored when attention is off.
    Returns:
      fused (B, h, w, C) in the compute dtype, and a dict with `flows` (refined, (B, K, h, w, 2)),
      `occlusion` (B, K, h, w, 1) (zeros when off) and `attention` (softmax weights
      (B, K, h, w, 1), 1/K when off), all float32.
    """
    k = source_feats.shape[1]
    per_source = nn.vmap(
        SourceWarp, in_axes=(1, 1, None), out_axes=1,
        variable_axes={"params": None}, split_rngs={"params": False})(
            residual_flow=self.residual_flow, hidden=self.hidden, padding=self.padding,
            warp_impl=self.warp_impl, dtype=self.dtype, options=self.options, name="per_source")
    source_feats = source_feats.astype(self.dtype)
    target_feat = target_feat.astype(self.dtype)
    warped, refined = per_source(source_feats, flows, target_feat)

    if self.occlusion:
      m = occlusion.astype(self.dtype)
      g = warped * (1 - m) + target_feat[:, None] * m
      occ_out = occlusion.astype(jnp.float32)
    else:
      g = warped
      occ_out = jnp.zeros(flows.shape[:-1] + (1,), jnp.float32)

    if self.attention:
      a = attention_logits.astype(jnp.float32)
      if self.attention_activation == "sigmoid":
        a = jax.nn.sigmoid(a)
      elif self.attention_activation not in ATTENTION_ACTIVATIONS:
        raise ValueError(f"model.attention_activation must be one of {ATTENTION_ACTIVATIONS}, got "
                         f"{self.attention_activation!r}.")
      weights = jax.nn.softmax(a, axis=1)
    else:
      weights = jnp.full(flows.shape[:-1] + (1,), 1.0 / k, jnp.float32)
    fused = jnp.sum(weights.astype(self.dtype) * g, axis=1)
    return fused, {"flows": refined, "occlusion": occ_out, "attention": weights}
