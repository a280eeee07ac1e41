"""Gaussian-weighted resampling of NHWC maps by flows in pixels: GFLA's `Resample2d` on any device.

GFLA samples the source's VGG features for its sampling-correctness loss with a CUDA kernel
(`Resample2d(kernel_size=4, dilation=1, sigma=2)`), not with bilinear interpolation. For output pixel
(y, x) and sampling point s = (y + flow_y, x + flow_x), it reads the `kernel_size` x `kernel_size` pixels
around s along each axis (floor(s) - f and floor(s) + 1 + f for f = 0 .. kernel_size / 2 - 1), indices
clamped to the map (border padding: a point outside the map reads the nearest edge pixels), and
averages them with weights exp(-d^2 / (2 sigma^2)), d the distance of the tap from s along that axis,
normalised by the sum of the weights.

Why it matters for training the flows (docs/architecture.md, "Training the flows"): a
bilinear sample's gradient with respect to the flow sees only the 2 x 2 pixels around s, and with zero
padding a point pushed off a small map reads 0, which the cosine loss scores as its worst case; the
4 x 4 Gaussian sample (sigma 2 pixels) has gradients that see 2 pixels each way and never reads zeros.

Convention as `rfgen_jax/ops/warp.py`: x (B, H, W, C), flow (B, H, W, 2) in pixels of x, channel 0 = x
(width) offset, channel 1 = y offset, pixel centres at integer coordinates. Differentiated by JAX (the
floor has zero gradient; the weights carry it). Like GFLA's kernel, the function jumps where s crosses
an integer (the farthest tap on one side is exchanged for one on the other): small for sigma >= the
kernel's half-width, and the reason `sigma` should not be much smaller than 2.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _axis_taps(s, size: int, kernel_size: int, sigma: float):
  """Indices (T, ...) int32 clamped to [0, size - 1] and Gaussian weights (T, ...) along one axis."""
  f0 = jnp.floor(s)
  frac = s - f0
  indices, weights = [], []
  for f in range(kernel_size // 2):
    for tap, dist in ((f0 - f, f + frac), (f0 + f + 1, (f + 1) - frac)):
      indices.append(jnp.clip(tap, 0, size - 1).astype(jnp.int32))
      weights.append(jnp.exp(-jnp.square(dist) / (2.0 * sigma * sigma)))
  return jnp.stack(indices), jnp.stack(weights)


def gaussian_resample(x: jax.Array, flow: jax.Array, kernel_size: int = 4, sigma: float = 2.0) -> jax.Array:
  """Samples `x` at `(y + flow[..., 1], x + flow[..., 0])` with a normalised Gaussian-weighted window.

  Args:
    x: (B, H, W, C) features, any float dtype (computed in float32).
    flow: (B, H, W, 2) offsets in pixels of `x` (channel 0 = x, channel 1 = y).
    kernel_size: taps per axis, even, >= 2 (GFLA: 4). kernel_size = 2 with a large sigma tends to a
      plain average of the 2 x 2 neighbours, not to bilinear interpolation.
    sigma: the Gaussian's standard deviation in pixels of `x`, > 0 (GFLA: 2).
  Returns:
    (B, H, W, C) float32.
  """
  x = jnp.asarray(x)
  flow = jnp.asarray(flow)
  if x.ndim != 4 or flow.shape != x.shape[:3] + (2,):
    raise ValueError(f"gaussian_resample: x must be (B, H, W, C) and flow (B, H, W, 2) to match, got "
                     f"{x.shape} and {flow.shape}.")
  if int(kernel_size) < 2 or int(kernel_size) % 2:
    raise ValueError(f"gaussian_resample: kernel_size must be even and >= 2, got {kernel_size}.")
  if not float(sigma) > 0:
    raise ValueError(f"gaussian_resample: sigma must be > 0 pixels, got {sigma}.")
  b, h, w, _ = x.shape
  f = flow.astype(jnp.float32)
  sx = jnp.arange(w, dtype=jnp.float32)[None, None, :] + f[..., 0]
  sy = jnp.arange(h, dtype=jnp.float32)[None, :, None] + f[..., 1]
  ix, wx = _axis_taps(sx, w, int(kernel_size), float(sigma))    # (T, B, H, W)
  iy, wy = _axis_taps(sy, h, int(kernel_size), float(sigma))
  xf = x.astype(jnp.float32)
  bi = jnp.arange(b)[:, None, None]
  out = jnp.zeros(x.shape, jnp.float32)
  for ty in range(iy.shape[0]):
    for tx in range(ix.shape[0]):
      out = out + xf[bi, iy[ty], ix[tx]] * (wy[ty] * wx[tx])[..., None]
  return out / (jnp.sum(wy, axis=0) * jnp.sum(wx, axis=0))[..., None]
