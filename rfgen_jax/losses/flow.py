"""Flow losses of stage 1 (docs/design.md, "## 3. Losses"): sampling correctness and affine regularisation.

Both take flows in pixels of the map they act on, channel 0 = x (width) offset, channel 1 = y offset,
NHWC layout, and return float32 scalars.

Sampling correctness (`sampling_correctness`), following GFLA's `PerceptualCorrectness`
(RenYurui/Global-Flow-Local-Attention, model/networks/external_function.py):

  cos(a, b)  = a . b / ((|a| + eps) (|b| + eps)),                       eps = 1e-8
  ratio(t)   = cos(W(source, flow)(t), target(t)) / (max_s cos(source(s), target(t)) + eps)
  L_cor      = mean_{b, t} exp(-ratio(t)) - exp(-1)

Decision on the maximum: it is treated as a constant (`lax.stop_gradient`). In GFLA the maximum is
computed from the VGG features of the two *data* images (source and ground-truth target), which carry
no gradient, and it never depends on the flow; only the warped numerator is differentiated. Stopping the
gradient here keeps that behaviour for any caller, and it means the blockwise max (below) is never
linearised, so no (h*w) x (h*w) residuals are kept for the backward pass.

Memory. The maximum runs over a (h*w) x (h*w) cosine matrix per example. It is computed in blocks of
`block_size` target positions (a `lax.map`), so peak memory is O(B * h*w * block_size) instead of
O(B * (h*w)^2): at H/2 of a 256x176 image (128x88 = 11264 positions) the full matrix is 0.5 GB per
example in float32, a 512-position block 23 MB.

Affine regularisation (`affine_regularization`), following GFLA's `AffineRegularizationLoss`: with
absolute coordinates c = grid + flow, every k x k window fully inside the map (stride 1) is fitted by
least squares with an affine function alpha + beta * i + gamma * j of the window's pixel indices, for
c_x and c_y separately; the loss is the mean over windows of the two sums of squared residuals. The
design matrix A (k^2 x 3) is the same for every window, so the residual vector of a window w is
M c_w with the fixed projection M = I - A (A^T A)^-1 A^T, applied here as one convolution with k^2
output channels. The grid itself is affine in (i, j), so M grid_w = 0 exactly and the residuals are
computed from the flow alone; this is the same function, without the float32 cancellation that
absolute coordinates of a few hundred pixels would cause.
"""
from __future__ import annotations

import functools
import math

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from rfgen_jax.ops import bilinear_warp
from rfgen_jax.ops import gaussian_resample

COSINE_EPS = 1e-8
DEFAULT_BLOCK_SIZE = 512
# How the source features are sampled at target pixel + flow (config `losses.correctness_sampling`):
# "gaussian": GFLA's Resample2d (4 x 4 taps, sigma 2 px, border clamp; rfgen_jax/ops/gaussian_resample.py);
# "bilinear": bilinear with zero padding (GFLA's `use_bilinear_sampling=True` path).
SAMPLINGS = ("gaussian", "bilinear")


def _float(x):
  """Casts to at least float32 (float64 stays float64, bfloat16/float16 become float32)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _safe_norm(x, axis=-1):
  """Euclidean norm over `axis` whose gradient is 0 (not NaN) at the zero vector."""
  sq = jnp.sum(x * x, axis=axis)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _unit(x, eps):
  """x / (|x| + eps) over the last axis."""
  return x / (_safe_norm(x)[..., None] + eps)


def _max_cosine(source_unit, target_unit, block_size):
  """max_s <source_unit[b, s], target_unit[b, t]> for every (b, t), in blocks of target positions.

  Args:
    source_unit: (B, N_s, C) source features already divided by (norm + eps).
    target_unit: (B, N_t, C) target features already divided by (norm + eps).
    block_size: target positions per block (>= 1).
  Returns:
    (B, N_t) maxima.
  """
  b, n_t, c = target_unit.shape

  def block_max(tgt):  # tgt (B, n, C) -> (B, n)
    sim = jnp.einsum("bsc,btc->bst", source_unit, tgt, precision=lax.Precision.HIGHEST)
    return jnp.max(sim, axis=1)

  if n_t <= block_size:
    return block_max(target_unit)
  num_blocks = -(-n_t // block_size)
  pad = num_blocks * block_size - n_t
  tgt = jnp.pad(target_unit, ((0, 0), (0, pad), (0, 0)))
  tgt = tgt.reshape(b, num_blocks, block_size, c).transpose(1, 0, 2, 3)   # (nb, B, n, C)
  maxima = lax.map(block_max, tgt)                                         # (nb, B, n)
  return maxima.transpose(1, 0, 2).reshape(b, num_blocks * block_size)[:, :n_t]


def sampling_correctness(source_feat: jax.Array, target_feat: jax.Array, flow: jax.Array, *,
                         block_size: int = DEFAULT_BLOCK_SIZE, eps: float = COSINE_EPS,
                         sampling: str = "bilinear", kernel_size: int = 4, sigma: float = 2.0) -> jax.Array:
  """Sampling correctness loss L_cor of one flow (docs/design.md, "## 3. Losses"; GFLA's PerceptualCorrectness).

  Args:
    source_feat: (B, h, w, C) features of the source image (e.g. VGG19 relu3_1 at H/4).
    target_feat: (B, h, w, C) features of the target image at the same resolution.
    flow: (B, h, w, 2) flow in pixels of this (h, w) map; channel 0 = x offset, 1 = y offset. Target
      pixel (y, x) is compared with the source sampled at (y + flow[..., 1], x + flow[..., 0]).
    block_size: target positions per block of the (h*w) x (h*w) similarity matrix whose maximum over
      source positions normalises the ratio; peak memory is about 4 * B * h*w * block_size bytes.
    eps: added to the vector norms of the cosine and to the maximum (GFLA: 1e-8).
    sampling: "bilinear" (zero padding) or "gaussian" (GFLA's Resample2d: `kernel_size` taps per axis
      weighted by a Gaussian of `sigma` pixels, border clamp); see SAMPLINGS.
  Returns:
    float32 scalar (float64 for float64 inputs), mean over batch and target positions of
    exp(-ratio) - exp(-1); 0 when every target feature is found exactly where the flow points.
    The maximum over source positions is a constant for differentiation (see module docstring).
  """
  if source_feat.ndim != 4 or source_feat.shape != target_feat.shape:
    raise ValueError(
        "sampling_correctness: source_feat and target_feat must be (B, h, w, C) with equal shapes, "
        f"got {source_feat.shape} and {target_feat.shape}.")
  if flow.shape != source_feat.shape[:3] + (2,):
    raise ValueError(
        f"sampling_correctness: flow must be (B, h, w, 2) = {source_feat.shape[:3] + (2,)} "
        f"(pixels of the feature map), got {flow.shape}.")
  if int(block_size) < 1:
    raise ValueError(f"sampling_correctness: block_size must be >= 1, got {block_size}.")
  src = _float(source_feat)
  tgt = _float(target_feat)
  b, h, w, c = src.shape

  if sampling == "bilinear":
    warped = bilinear_warp(src, flow.astype(src.dtype), padding="zeros").astype(src.dtype)
  elif sampling == "gaussian":
    warped = gaussian_resample(src, flow.astype(src.dtype), kernel_size, sigma).astype(src.dtype)
  else:
    raise ValueError(f"sampling_correctness: sampling must be one of {SAMPLINGS}, got {sampling!r}.")
  cos_sample = jnp.sum(_unit(warped, eps) * _unit(tgt, eps), axis=-1)               # (B, h, w)

  src_unit = lax.stop_gradient(_unit(src, eps)).reshape(b, h * w, c)
  tgt_unit = lax.stop_gradient(_unit(tgt, eps)).reshape(b, h * w, c)
  cos_max = lax.stop_gradient(_max_cosine(src_unit, tgt_unit, int(block_size))).reshape(b, h, w)

  ratio = cos_sample / (cos_max + eps)
  return jnp.mean(jnp.exp(-ratio)) - math.exp(-1.0)


@functools.lru_cache(maxsize=None)
def affine_residual_operator(kernel_size: int) -> np.ndarray:
  """M = I - A (A^T A)^-1 A^T for a kernel_size x kernel_size window, float64 (k^2, k^2).

  Rows and columns index window pixels in row-major order (p = i * k + j, i = row, j = column);
  A has rows (1, i, j). `M @ c_window` is the least-squares residual of the affine fit, and, M being a
  symmetric projection, `|M c|^2 = c^T M c`. Read-only (cached).
  """
  k = int(kernel_size)
  i, j = np.meshgrid(np.arange(k, dtype=np.float64), np.arange(k, dtype=np.float64), indexing="ij")
  a = np.stack([np.ones(k * k), i.reshape(-1), j.reshape(-1)], axis=1)
  m = np.eye(k * k) - a @ np.linalg.solve(a.T @ a, a.T)
  m.setflags(write=False)
  return m


def affine_regularization(flow: jax.Array, kernel_size: int) -> jax.Array:
  """Affine regularisation L_reg of a flow (docs/design.md, "## 3. Losses"; GFLA's AffineRegularizationLoss).

  Args:
    flow: (B, h, w, 2) flow in pixels of its map, channel 0 = x offset, channel 1 = y offset.
    kernel_size: window side k (static Python int, 2 <= k <= min(h, w)); windows are all k x k
      windows fully inside the map, stride 1: (h - k + 1) * (w - k + 1) per example.
  Returns:
    float32 scalar (float64 for float64 inputs) in squared pixels: mean over the batch and the windows
    of (sum of squared residuals of the affine least-squares fit of c_x) + (the same for c_y), with
    c = grid + flow the absolute sampling coordinates. 0 for any globally affine flow.
  """
  k = int(kernel_size)
  if flow.ndim != 4 or flow.shape[-1] != 2:
    raise ValueError(f"affine_regularization: flow must be (B, h, w, 2), got {flow.shape}.")
  b, h, w, _ = flow.shape
  if k < 2 or k > min(h, w):
    raise ValueError(
        f"affine_regularization: kernel_size must be in [2, min(h, w) = {min(h, w)}] "
        f"(an affine fit needs at least 2x2 pixels), got {kernel_size}.")
  f = _float(flow)
  # Each of the 2 coordinates of each example becomes one single-channel image: (2B, h, w, 1).
  planes = jnp.transpose(f, (0, 3, 1, 2)).reshape(b * 2, h, w, 1)
  # Output channel p of the convolution is row p of M: the residual at window pixel p.
  m = affine_residual_operator(k)
  kernel = jnp.asarray(m.reshape(k * k, k, k).transpose(1, 2, 0)[:, :, None, :], f.dtype)   # HWIO
  residual = lax.conv_general_dilated(
      planes, kernel, window_strides=(1, 1), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST)
  per_window = jnp.sum(jnp.square(residual), axis=-1).reshape(b, 2, h - k + 1, w - k + 1)
  return jnp.mean(jnp.sum(per_window, axis=1))
