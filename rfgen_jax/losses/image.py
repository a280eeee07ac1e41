"""Image losses of stage 2 (docs/design.md, "## 3. Losses"): L1, perceptual (VGG19) and style (Gram) losses.

Conventions follow GFLA's `VGGLoss` (RenYurui/Global-Flow-Local-Attention,
model/networks/external_function.py): every term is an L1 *mean* (torch `L1Loss`), the perceptual
layers all have weight 1.0, and Gram matrices are normalised by C * h * w. Features are NHWC,
`(B, h, w, C)`, usually the dict returned by `rfgen_jax.nets.vgg19.VGG19`. Everything is computed in
float32 (float64 inputs stay float64) and returns a scalar.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import jax
from jax import lax
import jax.numpy as jnp


def _float(x):
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _pick(feats: Mapping[str, jax.Array], layer: str, which: str) -> jax.Array:
  if layer not in feats:
    raise KeyError(f"Feature {layer!r} missing from {which} (has {sorted(feats)}); request it from "
                   "the VGG19 taps (rfgen_jax.train.steps.vgg_taps).")
  return feats[layer]


def l1_loss(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean absolute difference of two arrays of the same shape (e.g. images (B, H, W, 3) in [-1, 1])."""
  if a.shape != b.shape:
    raise ValueError(f"l1_loss: shapes differ: {a.shape} vs {b.shape}.")
  return jnp.mean(jnp.abs(_float(a) - _float(b)))


def perceptual_loss(feats_a: Mapping[str, jax.Array], feats_b: Mapping[str, jax.Array],
                    layers: Sequence[str], weights: Optional[Sequence[float]] = None) -> jax.Array:
  """Sum over `layers` of weight * mean |a - b| of the two feature dicts.

  Args:
    feats_a, feats_b: {layer name: (B, h, w, C)} (VGG19 taps of the generated and the real image).
    layers: names to use, e.g. ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1").
    weights: per-layer weights; None = all 1.0 (GFLA's values).
  Returns:
    scalar.
  """
  if weights is None:
    weights = (1.0,) * len(layers)
  if len(weights) != len(layers):
    raise ValueError(f"perceptual_loss: {len(weights)} weights for {len(layers)} layers.")
  total = jnp.zeros((), jnp.float32)
  for layer, weight in zip(layers, weights):
    total = total + weight * l1_loss(_pick(feats_a, layer, "feats_a"), _pick(feats_b, layer, "feats_b"))
  return total


def gram_matrix(feat: jax.Array) -> jax.Array:
  """Gram matrix of NHWC features, normalised by C * h * w.

  Args:
    feat: (B, h, w, C).
  Returns:
    (B, C, C) with G[b, c, d] = sum_{y, x} feat[b, y, x, c] * feat[b, y, x, d] / (C * h * w), float32.
  """
  if feat.ndim != 4:
    raise ValueError(f"gram_matrix: feat must be (B, h, w, C), got {feat.shape}.")
  b, h, w, c = feat.shape
  f = _float(feat).reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", f, f, precision=lax.Precision.HIGHEST) / (c * h * w)


def style_loss(feats_a: Mapping[str, jax.Array], feats_b: Mapping[str, jax.Array],
               layers: Sequence[str]) -> jax.Array:
  """Sum over `layers` of mean |G(a) - G(b)| of the Gram matrices (`gram_matrix`).

  Args:
    feats_a, feats_b: {layer name: (B, h, w, C)}.
    layers: e.g. ("relu2_2", "relu3_4", "relu4_4", "relu5_2").
  Returns:
    scalar.
  """
  total = jnp.zeros((), jnp.float32)
  for layer in layers:
    total = total + l1_loss(gram_matrix(_pick(feats_a, layer, "feats_a")),
                            gram_matrix(_pick(feats_b, layer, "feats_b")))
  return total
