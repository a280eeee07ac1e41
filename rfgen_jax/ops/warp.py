"""Bilinear warping of NHWC feature maps by flows in pixels (docs/design.md, "## 2. Generator").

Convention. `x` is (B, H, W, C) and `flow` is (B, H, W, 2) in pixels of `x`; channel 0 is the x (width)
offset, channel 1 the y (height) offset. Output pixel (y, x) is `x` sampled bilinearly at
(y + flow[..., 1], x + flow[..., 0]), pixel centres at integer coordinates. Samples outside the map read
0 (`padding="zeros"`) or the nearest edge pixel (`padding="border"`, the coordinate is clamped to
[0, size - 1] first, with zero gradient for a clamped coordinate, as in PyTorch).

This equals `torch.nn.functional.grid_sample(x_nchw, grid, mode="bilinear", align_corners=True,
padding_mode=...)` with `grid = 2 * (base + flow) / (size - 1) - 1`. A dimension of size 1 makes that
formula divide by zero (the grid is infinite or NaN there); here the pixel definition above still
holds (a 1-pixel map has content at coordinate 0 only, so with zero padding a flow of 0.25
reads 0.75 of it). For every size, including 1, the result equals `grid_sample(..., align_corners=False)`
with `grid = (2 * (base + flow) + 1) / size - 1`.

Gradients. The interpolation weights use `x0 = floor(s)` and `frac = s - x0`, so at an integer sampling
position (zero flow, the state at initialisation) the gradient with respect to the flow is the
one-sided difference `x[x0 + 1] - x[x0]`, as in PyTorch, and never zero by construction.

Implementations (argument `impl`; all three compute the same function and gradients):
- "gather" (default): a `jax.custom_vjp`. The forward is four per-example row gathers from x viewed as
  (B, H*W, C), fused by XLA into the weighted sum (no (B, H, W, 4, C) intermediate). The backward gathers the four
  corners once more to get the flow gradient, and scatter-adds the x gradient. On CPU it does so in
  blocks of output rows of about 512 KiB (a `lax.scan`), which keeps XLA's temporary buffers small and
  in cache: that is what makes it fast there (see docs/performance.md); on GPU/TPU it is one block.
  Gathers and scatters are per example (batch dimension explicit), so a batch-sharded x stays sharded.
  It supports reverse mode (grad, vjp) but not forward mode (jvp, jacfwd): use "reference" for those.
- "onehot": builds the dense (H*W, H*W) interpolation matrix per example (each row has at most four
  non-zeros, outer products of one-hot x and y weights) and applies it with one batched matmul. The
  memory and work are O(B * (H*W)^2 * C): for small maps on TPU/GPU, where it maps to the matrix units
  and avoids gathers and scatters entirely; wasteful on CPU and for big maps.
- "reference": the plain four-corner gather differentiated by JAX; the simplest correct form.
"""
from __future__ import annotations

from functools import partial

import jax
from jax import lax
import jax.numpy as jnp

_PADDINGS = ("zeros", "border")
_IMPLS = ("gather", "onehot", "reference")
# Elements of the output cotangent per row block of the backward on CPU: 2**17 float32 = 512 KiB.
_CHUNK_ELEMENTS = 1 << 17


def _check(x, flow, padding, impl):
  """Validates shapes and options before anything is traced (clear errors, not XLA's)."""
  x_shape = getattr(x, "shape", None)
  f_shape = getattr(flow, "shape", None)
  if x_shape is None or len(x_shape) != 4:
    raise ValueError(f"bilinear_warp: x must be 4-D (B, H, W, C) (NHWC), got shape {x_shape}.")
  want = tuple(x_shape[:3]) + (2,)
  if f_shape is None or tuple(f_shape) != want:
    raise ValueError(
        f"bilinear_warp: flow must be (B, H, W, 2) = {want} to match x {tuple(x_shape)} "
        f"(channel 0 = x offset, channel 1 = y offset, in pixels), got shape {f_shape}.")
  if padding not in _PADDINGS:
    raise ValueError(f"bilinear_warp: padding must be one of {_PADDINGS}, got {padding!r}.")
  if impl not in _IMPLS:
    raise ValueError(f"bilinear_warp: impl must be one of {_IMPLS}, got {impl!r}.")
  if not jnp.issubdtype(x.dtype, jnp.floating) or not jnp.issubdtype(flow.dtype, jnp.floating):
    raise ValueError(
        f"bilinear_warp: x and flow must be floating point, got {x.dtype} and {flow.dtype}.")


def _coords(flow, h, w, padding, differentiable, row0=0):
  """Absolute sampling coordinates (B, rows, W) float32 in pixels, clamped for border padding.

  `flow` (B, rows, W, 2) holds the output rows row0 .. row0 + rows - 1 (all of them by default) of a
  map of h x w pixels; `row0` may be traced.

  With `differentiable`, the clamp is written with `where` so that its gradient is 0 on and beyond the
  edge (PyTorch's `clip_coordinates_set_grad`), not the 0.5 that `jnp.clip` gives at a tie.
  Returns (sx, sy, inside_x, inside_y); inside_* is None for zero padding, else the boolean masks where
  the clamp passes the gradient (0 < s < size - 1).
  """
  f = flow.astype(jnp.float32)
  sx = jnp.arange(w, dtype=jnp.float32)[None, None, :] + f[..., 0]
  rows = jnp.arange(flow.shape[1], dtype=jnp.float32) + jnp.asarray(row0, jnp.float32)
  sy = rows[None, :, None] + f[..., 1]
  if padding == "zeros":
    return sx, sy, None, None
  inside_x = (sx > 0) & (sx < w - 1)
  inside_y = (sy > 0) & (sy < h - 1)
  if differentiable:
    sx = jnp.where(inside_x, sx, jnp.where(sx <= 0, 0.0, w - 1.0))
    sy = jnp.where(inside_y, sy, jnp.where(sy <= 0, 0.0, h - 1.0))
  else:
    sx = jnp.clip(sx, 0.0, w - 1.0)
    sy = jnp.clip(sy, 0.0, h - 1.0)
  return sx, sy, inside_x, inside_y


def _taps(s, size):
  """Bilinear taps along one axis for coordinates `s` (float32) on an axis of `size` pixels.

  Returns (i0, i1, w0, w1, m0, m1, frac): int32 indices of the two taps clamped into [0, size - 1], their
  weights with out-of-range taps already zeroed (zero padding), the in-range masks, and `s - floor(s)`.
  """
  f0 = jnp.floor(s)
  frac = s - f0
  m0 = (f0 >= 0) & (f0 <= size - 1)
  m1 = (f0 >= -1) & (f0 <= size - 2)
  i0 = jnp.clip(f0, 0, size - 1).astype(jnp.int32)
  i1 = jnp.clip(f0 + 1, 0, size - 1).astype(jnp.int32)
  w0 = jnp.where(m0, 1.0 - frac, 0.0)
  w1 = jnp.where(m1, frac, 0.0)
  return i0, i1, w0, w1, m0, m1, frac


def _corners(flow, h, w, padding, row0=0):
  """Per-corner row indices into each example's x viewed as (H*W, C), weights and masks (no gradient).

  Indices are per example (no batch offset), so gathers and scatters keep the batch dimension explicit
  (`operand_batching_dims`) and XLA's SPMD partitioner can keep a batch-sharded x sharded.
  `flow` (B, rows, W, 2) covers output rows row0 .. (see `_coords`).
  Returns a dict: `index` [4 x (B, rows, W) int32], `weight` [4 x (B, rows, W) float32, zero where the
  corner is outside], `valid` [4 x (B, rows, W) bool], `fx`, `fy` (B, rows, W) fractional positions,
  `inside_x`, `inside_y` (border clamp masks or None). Corner k = 2 * dy + dx.
  """
  sx, sy, inside_x, inside_y = _coords(flow, h, w, padding, differentiable=False, row0=row0)
  xi0, xi1, wx0, wx1, mx0, mx1, fx = _taps(sx, w)
  yi0, yi1, wy0, wy1, my0, my1, fy = _taps(sy, h)
  rows = (yi0 * w, yi1 * w)
  index, weight, valid = [], [], []
  for row, wy, my in ((rows[0], wy0, my0), (rows[1], wy1, my1)):
    for col, wx, mx in ((xi0, wx0, mx0), (xi1, wx1, mx1)):
      index.append(row + col)
      weight.append(wy * wx)
      valid.append(my & mx)
  return dict(index=index, weight=weight, valid=valid, fx=fx, fy=fy,
              inside_x=inside_x, inside_y=inside_y)


def _rows(flat, index):
  """Per-example row gather: flat (B, N, C), index (B, ...) int32 in [0, N) -> index.shape + (C,)."""
  return jax.vmap(lambda f, i: f.at[i].get(mode="promise_in_bounds"))(flat, index)


def _scatter_rows(acc, index, updates):
  """Per-example row scatter-add: acc (B, N, C) += updates (B, M, C) at rows index (B, M)."""
  return jax.vmap(lambda a, i, u: a.at[i].add(u, mode="promise_in_bounds"))(acc, index, updates)


def _warp_gather_forward(x, flow, padding):
  b, h, w, c = x.shape
  cr = _corners(flow, h, w, padding)
  flat = x.reshape(b, h * w, c)
  out = jnp.zeros((b, h, w, c), jnp.float32)
  for k in range(4):
    out = out + _rows(flat, cr["index"][k]).astype(jnp.float32) * cr["weight"][k][..., None]
  return out.astype(x.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _warp_gather(x, flow, padding):
  return _warp_gather_forward(x, flow, padding)


def _warp_gather_fwd(x, flow, padding):
  return _warp_gather_forward(x, flow, padding), (x, flow)


def _backward_rows(flat, flow, g, grad_x, padding, h, w, row0):
  """Backward for one block of output rows: adds its x gradient to `grad_x`, returns its flow gradient.

  Args:
    flat: (B, H*W, C) the input x.
    flow: (B, rows, W, 2) and g: (B, rows, W, C), the flow and output cotangent of rows row0 ...
    grad_x: (B, H*W, C) float32 accumulator of the x gradient (scatter-add target).
  Returns:
    (grad_x updated, grad_flow (B, rows, W, 2) float32).
  """
  b, rows, _, c = g.shape
  cr = _corners(flow, h, w, padding, row0)
  g_flat = g.astype(jnp.float32).reshape(b, rows * w, c)
  dots = []
  for k in range(4):
    index = cr["index"][k].reshape(b, rows * w)
    corner = _rows(flat, index).astype(jnp.float32)
    dots.append(jnp.where(cr["valid"][k], jnp.sum(corner * g_flat, axis=-1).reshape(b, rows, w), 0.0))
    grad_x = _scatter_rows(grad_x, index, cr["weight"][k].reshape(b, rows * w, 1) * g_flat)
  fx, fy = cr["fx"], cr["fy"]
  # out = sum_k weight_k * corner_k with weight = (1-fy|fy) * (1-fx|fx); d weight / d s is exact here,
  # including at integer s where frac = 0 (one-sided difference, as PyTorch).
  d_sx = (1.0 - fy) * (dots[1] - dots[0]) + fy * (dots[3] - dots[2])
  d_sy = (1.0 - fx) * (dots[2] - dots[0]) + fx * (dots[3] - dots[1])
  if cr["inside_x"] is not None:
    d_sx = jnp.where(cr["inside_x"], d_sx, 0.0)
    d_sy = jnp.where(cr["inside_y"], d_sy, 0.0)
  return grad_x, jnp.stack([d_sx, d_sy], axis=-1)


def _rows_per_block(h, per_row):
  """Largest divisor of h whose block of rows holds at most _CHUNK_ELEMENTS elements (at least 1)."""
  best = 1
  for d in range(1, h + 1):
    if h % d == 0 and d * per_row <= _CHUNK_ELEMENTS:
      best = d
  return best


def _warp_gather_bwd(padding, residuals, g):
  x, flow = residuals
  b, h, w, c = x.shape
  flat = x.reshape(b, h * w, c)
  grad_x = jnp.zeros((b, h * w, c), jnp.float32)
  # Blocking the output rows is a CPU optimisation (the gathered corners and scatter updates stay
  # cache-sized and XLA's per-call temp arena small); on GPU/TPU all rows are one block. Blocks split
  # rows, never the batch, so a batch-sharded x stays sharded under SPMD partitioning.
  # The form is chosen when the program is lowered, per platform (`lax.platform_dependent`), not from
  # the process's default backend: a program lowered here for GPU or TPU (jax.export) gets their form.
  rows = _rows_per_block(h, b * w * c)
  if rows == h:
    grad_x, grad_flow = _backward_rows(flat, flow, g, grad_x, padding, h, w, 0)
  else:
    def one_block(flat, flow, g, grad_x):
      return _backward_rows(flat, flow, g, grad_x, padding, h, w, 0)

    def row_blocks(flat, flow, g, grad_x):
      def block(acc, i):
        row0 = i * rows
        f_i = lax.dynamic_slice_in_dim(flow, row0, rows, axis=1)
        g_i = lax.dynamic_slice_in_dim(g, row0, rows, axis=1)
        return _backward_rows(flat, f_i, g_i, acc, padding, h, w, row0)
      grad_x, grad_flow = lax.scan(block, grad_x, jnp.arange(h // rows))
      return grad_x, jnp.moveaxis(grad_flow, 0, 1).reshape(b, h, w, 2)   # (blocks, B, rows, W, 2)

    grad_x, grad_flow = lax.platform_dependent(flat, flow, g, grad_x, cpu=row_blocks, default=one_block)
  return grad_x.reshape(x.shape).astype(x.dtype), grad_flow.astype(flow.dtype)


_warp_gather.defvjp(_warp_gather_fwd, _warp_gather_bwd)


def _warp_reference(x, flow, padding):
  """Four-corner gather, differentiated by JAX (the floor has zero gradient; frac carries it)."""
  b, h, w, c = x.shape
  sx, sy, _, _ = _coords(flow, h, w, padding, differentiable=True)
  xi0, xi1, wx0, wx1, _, _, _ = _taps(sx, w)
  yi0, yi1, wy0, wy1, _, _, _ = _taps(sy, h)
  bi = jnp.arange(b)[:, None, None]
  out = jnp.zeros((b, h, w, c), jnp.float32)
  for yi, wy in ((yi0, wy0), (yi1, wy1)):
    for xi, wx in ((xi0, wx0), (xi1, wx1)):
      out = out + x[bi, yi, xi].astype(jnp.float32) * (wy * wx)[..., None]
  return out.astype(x.dtype)


def _axis_weights(s, size):
  """Dense bilinear weights (B, H, W, size) float32 along one axis; differentiable in `s`.

  Row entries are (1 - frac) at floor(s) and frac at floor(s) + 1, so the derivative at an integer `s` is
  the one-sided difference (never the zero that a hat function max(0, 1 - |s - i|) gives there).
  """
  f0 = lax.stop_gradient(jnp.floor(s))
  frac = s - f0
  grid = jnp.arange(size, dtype=jnp.float32)
  f0 = f0[..., None]
  return (jnp.where(grid == f0, 1.0 - frac[..., None], 0.0)
          + jnp.where(grid == f0 + 1.0, frac[..., None], 0.0))


def _warp_onehot(x, flow, padding):
  """Dense interpolation matrix (B, H*W, H*W) applied with one batched matmul."""
  b, h, w, c = x.shape
  sx, sy, _, _ = _coords(flow, h, w, padding, differentiable=True)
  wx = _axis_weights(sx, w)                                  # (B, H, W, w)
  wy = _axis_weights(sy, h)                                  # (B, H, W, h)
  m = (wy[..., :, None] * wx[..., None, :]).reshape(b, h * w, h * w)
  out = jnp.einsum("bpq,bqc->bpc", m, x.reshape(b, h * w, c).astype(jnp.float32),
                   precision=lax.Precision.HIGHEST)
  return out.reshape(b, h, w, c).astype(x.dtype)


def bilinear_warp(x: jax.Array, flow: jax.Array, padding: str = "zeros", *,
                  impl: str = "gather") -> jax.Array:
  """Samples `x` at `(y + flow[..., 1], x + flow[..., 0])` with bilinear interpolation.

  See the module docstring for the exact convention, its PyTorch equivalent and the size-1 case.

  Args:
    x: (B, H, W, C) features, any float dtype (computed in float32 internally).
    flow: (B, H, W, 2) offsets in pixels of `x`; channel 0 is x (width), channel 1 is y (height).
    padding: "zeros" (samples outside the map read 0) or "border" (coordinates clamped to the edge).
    impl: "gather" (default; custom VJP, fastest on CPU/GPU), "onehot" (dense matmul, small maps on
      TPU) or "reference" (plain gather, autodiff; also supports forward-mode jvp).
  Returns:
    (B, H, W, C) warped features in x's dtype.
  Raises:
    ValueError: x not 4-D, flow not (B, H, W, 2) matching x, or an unknown padding/impl.
  """
  x = jnp.asarray(x)
  flow = jnp.asarray(flow)
  _check(x, flow, padding, impl)
  if impl == "gather":
    return _warp_gather(x, flow, padding)
  if impl == "onehot":
    return _warp_onehot(x, flow, padding)
  return _warp_reference(x, flow, padding)


def resize_flow(flow: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Resizes a flow to another resolution and rescales its values to pixels of the new size.

  Uses `jax.image.resize` (bilinear, half-pixel centres, antialiased when shrinking). With half-pixel
  centres the map from old to new pixel coordinates is `x' = (x + 0.5) * s - 0.5`, so a displacement
  scales by exactly `s = new_w / w` in x and `new_h / h` in y: a constant 1 px flow at h becomes 2 px at 2h.

  Args:
    flow: (B, h, w, 2) flow in pixels of an h x w map (channel 0 = x, channel 1 = y).
    size: (H, W) target size.
  Returns:
    (B, H, W, 2) flow in pixels of an H x W map, flow's dtype.
  """
  flow = jnp.asarray(flow)
  if flow.ndim != 4 or flow.shape[-1] != 2:
    raise ValueError(f"resize_flow: flow must be (B, h, w, 2), got shape {flow.shape}.")
  if len(size) != 2 or any(int(s) < 1 for s in size):
    raise ValueError(f"resize_flow: size must be (H, W) with positive ints, got {size!r}.")
  b, h, w, _ = flow.shape
  new_h, new_w = int(size[0]), int(size[1])
  resized = jax.image.resize(flow, (b, new_h, new_w, 2), method="bilinear")
  scale = jnp.asarray([new_w / w, new_h / h], dtype=flow.dtype)
  return resized * scale
