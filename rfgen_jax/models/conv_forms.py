"""Exact fast forms of the generator's strided convolutions (NHWC, kernels HWIO).

XLA's CPU backend runs stride-2 convolutions and (much worse) stride-2 transposed convolutions far
slower than stride-1 convolutions of the same work (docs/performance.md, "Convolutions"). Both are
rewritten here as stride-1 convolutions plus reshapes, which compute exactly the same function (the same
products, summed in another order) with plain ops that are fast on CPU, GPU and TPU alike:

* `conv_down_4x4`: a 4x4 stride-2 convolution with padding 1 (torch `Conv2d(k=4, s=2, p=1)`, GFLA's
  down-sampling conv) is a 2x2 stride-1 VALID convolution of the space-to-depth of the padded input.
  No extra multiply-adds.
* `conv_up_3x3`: a 3x3 stride-2 transposed convolution with torch's `ConvTranspose2d(k=3, s=2, p=1,
  output_padding=1)` alignment (GFLA's up-blocks) is a 2x2 stride-1 convolution to 4 x C_out channels
  (one group per output parity) followed by depth-to-space. 9 of its 16 taps per output group are
  non-zero, so it spends 16/9 of the transposed convolution's multiply-adds, all of them dense.

Kernel layouts keep the shapes of the `nn.Conv` / `nn.ConvTranspose` parameters they replace, so
parameter trees (names and shapes) are unchanged.
"""
from __future__ import annotations

from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

_DN = ("NHWC", "HWIO", "NHWC")

# Tap of the 3-tap transposed kernel used by output parity r (rows) at input offset d (columns); 3 = none.
# torch ConvTranspose2d(k=3, s=2, p=1, op=1): y[2m] = x[m] w[1], y[2m+1] = x[m] w[2] + x[m+1] w[0].
_UP_TAPS = np.array([[1, 3], [2, 0]], np.int32)


def _conv(x, kernel, precision=None):
  return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_DN,
                                  precision=precision)


def space_to_depth(x: jax.Array) -> jax.Array:
  """(B, H, W, C) -> (B, H/2, W/2, 4C); channel index (ph * 2 + pw) * C + c for pixel (2i+ph, 2j+pw)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(x: jax.Array) -> jax.Array:
  """Inverse of `space_to_depth`: (B, h, w, 4C) -> (B, 2h, 2w, C)."""
  b, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c)


def down_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, C, O) stride-2 kernel -> (2, 2, 4C, O) kernel of the space-to-depth input."""
  _, _, c, o = kernel.shape
  k = kernel.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5)   # (dh, dw, ph, pw, C, O)
  return k.reshape(2, 2, 4 * c, o)


def conv_down_4x4(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
  """torch `Conv2d(k=4, s=2, p=1)` without bias: (B, H, W, C) x (4, 4, C, O) -> (B, H/2, W/2, O).

  H and W must be even. Equal to `lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)))`.
  """
  if kernel.shape[:2] != (4, 4):
    raise ValueError(f"conv_down_4x4: kernel must be (4, 4, C, O), got {kernel.shape}.")
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"conv_down_4x4: H and W must be even, got {x.shape}.")
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return _conv(space_to_depth(xp), down_kernel(kernel).astype(x.dtype), precision)


def up_kernel(kernel: jax.Array) -> jax.Array:
  """(3, 3, C, O) transposed kernel -> (2, 2, C, 4O) sub-pixel kernel (output parity-major)."""
  _, _, c, o = kernel.shape
  ext = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))            # tap 3 = zeros
  idx = jnp.asarray(_UP_TAPS)
  k = jnp.take(ext, idx, axis=0)                                      # (rh, dh, 4, C, O)
  k = jnp.take(k, idx, axis=2)                                        # (rh, dh, rw, dw, C, O)
  k = k.transpose(1, 3, 4, 0, 2, 5)                                   # (dh, dw, C, rh, rw, O)
  return k.reshape(2, 2, c, 4 * o)


def conv_up_3x3(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
  """torch `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)` without bias, as a sub-pixel conv.

  Args:
    x: (B, H, W, C).
    kernel: (3, 3, C, O); kernel[th, tw, c, o] = torch weight[c, o, th, tw].
  Returns:
    (B, 2H, 2W, O): y[2m + r] = sum over taps t, inputs i with 2i - 1 + t = 2m + r of x[i] k[t].
  """
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"conv_up_3x3: kernel must be (3, 3, C, O), got {kernel.shape}.")
  xp = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
  return depth_to_space(_conv(xp, up_kernel(kernel).astype(x.dtype), precision))


# ---------------------------------------------------------------------------------------- selection
# Output positions per example at or below which a stride-1 convolution runs as patches + one matmul
# on CPU (XLA's CPU convolution, forward + backward, is up to 30x slower than the matmul there: a 3x3
# conv 256 -> 256 at 4x2, batch 16: 199 ms vs 6 ms), and at or below which a 4x4 stride-2 convolution
# uses space-to-depth (8x4x256 -> 4x2: 210 ms vs 31 ms). Larger maps keep XLA's convolution, which is
# as fast or faster there (docs/performance.md, "Convolutions").
SMALL_MAP_MATMUL = 16
SMALL_MAP_SPACE_TO_DEPTH = 32
CONV_IMPLS = ("auto", "xla")


def _conv_matmul(x, kernel, precision=None):
  """VALID stride-1 conv as patches + one matmul: (B, H, W, C) x (kh, kw, C, O)."""
  kh, kw, c, o = kernel.shape
  b, h, w, _ = x.shape
  oh, ow = h - kh + 1, w - kw + 1
  patches = jnp.concatenate([x[:, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)], axis=-1)
  y = jnp.dot(patches.reshape(b * oh * ow, kh * kw * c), kernel.reshape(kh * kw * c, o),
              precision=precision)
  return y.reshape(b, oh, ow, o)


def _conv_valid_cpu(x, kernel, precision=None):
  oh, ow = x.shape[1] - kernel.shape[0] + 1, x.shape[2] - kernel.shape[1] + 1
  if oh * ow <= SMALL_MAP_MATMUL:
    return _conv_matmul(x, kernel, precision)
  return _conv(x, kernel, precision)


def _per_platform(impl, cpu_fn, xla_fn, *args):
  """`cpu_fn` on CPU and `xla_fn` elsewhere (chosen at lowering time); `xla_fn` for impl "xla"."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv impl must be one of {CONV_IMPLS} (config model.conv_impl), got {impl!r}.")
  if impl == "xla":
    return xla_fn(*args)
  return jax.lax.platform_dependent(*args, cpu=cpu_fn, default=xla_fn)


def conv2d(x: jax.Array, kernel: jax.Array, padding: Any = ((1, 1), (1, 1)), impl: str = "auto",
           precision=None) -> jax.Array:
  """Stride-1 convolution, (B, H, W, C) x (kh, kw, C, O); `padding` as lax pairs (zeros).

  impl "auto": on CPU, small output maps (<= SMALL_MAP_MATMUL positions) use patches + matmul;
  "xla": always `lax.conv_general_dilated`. Both give the same values.
  """
  xp = jnp.pad(x, ((0, 0),) + tuple(tuple(p) for p in padding) + ((0, 0),))
  return _per_platform(impl, lambda a, k: _conv_valid_cpu(a, k, precision),
                       lambda a, k: _conv(a, k, precision), xp, kernel)


def conv_down(x: jax.Array, kernel: jax.Array, impl: str = "auto", precision=None) -> jax.Array:
  """torch `Conv2d(k=4, s=2, p=1)` without bias: (B, H, W, C) x (4, 4, C, O) -> (B, H/2, W/2, O).

  impl "auto": on CPU, small output maps use `conv_down_4x4` (space-to-depth); elsewhere, and for
  impl "xla", the strided `lax.conv_general_dilated`.
  """
  def xla_fn(a, k):
    return lax.conv_general_dilated(a, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN,
                                    precision=precision)

  def cpu_fn(a, k):
    if (a.shape[1] // 2) * (a.shape[2] // 2) > SMALL_MAP_SPACE_TO_DEPTH:
      return xla_fn(a, k)
    ap = jnp.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return _conv_valid_cpu(space_to_depth(ap), down_kernel(k).astype(a.dtype), precision)

  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"conv_down: H and W must be even, got {x.shape}.")
  return _per_platform(impl, cpu_fn, xla_fn, x, kernel)


def conv_up(x: jax.Array, kernel: jax.Array, impl: str = "auto", precision=None) -> jax.Array:
  """torch `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)` without bias, (B, H, W, C) -> (B, 2H, 2W, O).

  kernel (3, 3, C, O) with kernel[th, tw, c, o] = torch weight[c, o, th, tw]. impl "auto": the
  sub-pixel form (`conv_up_3x3`) on CPU; elsewhere, and for impl "xla", `lax.conv_transpose` with the
  same alignment.
  """
  def xla_fn(a, k):
    # torch's transposed conv = conv of the 2x-dilated input padded (k-1-p, k-1-p+op) = (1, 2) with
    # the spatially flipped kernel; `transpose_kernel=True` flips it (and swaps I/O, so pass (3,3,O,C)).
    return lax.conv_transpose(a, jnp.swapaxes(k, 2, 3), (2, 2), ((1, 2), (1, 2)),
                              dimension_numbers=_DN, transpose_kernel=True, precision=precision)

  def cpu_fn(a, k):
    ap = jnp.pad(a, ((0, 0), (0, 1), (0, 1), (0, 0)))
    return depth_to_space(_conv_valid_cpu(ap, up_kernel(k).astype(a.dtype), precision))

  return _per_platform(impl, cpu_fn, xla_fn, x, kernel)
