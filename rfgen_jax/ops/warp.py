"""Bilinear warping of NHWC feature maps by flows in pixels (DESIGN section 3).

Reference (simple gather) version; to be optimised (issue 2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _check(x, flow):
  if x.ndim != 4:
    raise ValueError(f"bilinear_warp: x must be (B, H, W, C), got shape {x.shape}.")
  if flow.shape != x.shape[:3] + (2,):
    raise ValueError(
        f"bilinear_warp: flow must be (B, H, W, 2) = {x.shape[:3] + (2,)} to match x {x.shape}, "
        f"got {flow.shape}.")


def bilinear_warp(x: jax.Array, flow: jax.Array, padding: str = "zeros") -> jax.Array:
  """Samples `x` at `(y + flow[..., 1], x + flow[..., 0])` with bilinear interpolation.

  Args:
    x: (B, H, W, C) features.
    flow: (B, H, W, 2) offsets in pixels of `x`; channel 0 is x (width), channel 1 is y.
    padding: "zeros" (samples outside the map read 0) or "border" (clamped to the edge).
  Returns:
    (B, H, W, C) warped features, dtype of `x`.
  """
  _check(x, flow)
  if padding not in ("zeros", "border"):
    raise ValueError(f"bilinear_warp: padding must be 'zeros' or 'border', got {padding!r}.")
  b, h, w, c = x.shape
  gy, gx = jnp.meshgrid(jnp.arange(h, dtype=flow.dtype), jnp.arange(w, dtype=flow.dtype), indexing="ij")
  sx = gx[None] + flow[..., 0]
  sy = gy[None] + flow[..., 1]
  if padding == "border":
    sx = jnp.clip(sx, 0, w - 1)
    sy = jnp.clip(sy, 0, h - 1)
  x0 = jnp.floor(sx)
  y0 = jnp.floor(sy)
  wx1 = (sx - x0)[..., None].astype(x.dtype)
  wy1 = (sy - y0)[..., None].astype(x.dtype)
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  flat = x.reshape(b, h * w, c)

  def corner(yi, xi):
    valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
    idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
    vals = jnp.take_along_axis(flat, idx.reshape(b, h * w, 1), axis=1).reshape(b, h, w, c)
    return vals * valid[..., None].astype(x.dtype)

  out = (corner(y0, x0) * (1 - wy1) * (1 - wx1) + corner(y0, x0 + 1) * (1 - wy1) * wx1
         + corner(y0 + 1, x0) * wy1 * (1 - wx1) + corner(y0 + 1, x0 + 1) * wy1 * wx1)
  return out.astype(x.dtype)


def resize_flow(flow: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Resizes a (B, h, w, 2) flow to (B, H, W, 2) bilinearly and rescales it to pixels of the new size."""
  b, h, w, _ = flow.shape
  new_h, new_w = size
  resized = jax.image.resize(flow, (b, new_h, new_w, 2), method="bilinear")
  scale = jnp.asarray([new_w / w, new_h / h], dtype=flow.dtype)
  return resized * scale
