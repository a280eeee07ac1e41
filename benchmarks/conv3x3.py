"""Benchmark: the stride-1 3x3 convolution, forward + backward on CPU: XLA's own, a Winograd F(2x2, 3x3)
form written in XLA ops, and torch.nn.functional.conv2d.

What is left between our Market-1501 step and PyTorch's is XLA CPU's stride-1 3x3 convolution on the large
maps (docs/performance.md, "Convolutions"). Winograd's F(2x2, 3x3) does 16 multiplies per 2x2 output tile
where the direct form does 36 (2.25x fewer MACs, all of them in 16 batched matmuls), at the price of the
input and output transforms, which are adds over strided slices of the map. This benchmark times
whether that trade wins under XLA's CPU backend. The form is exact up to float rounding (the table prints
its largest error relative to the largest output) but is not used by the model: it measured slower.

Shapes: batch 16 (8 x K = 2) at the Market-1501 generator's map sizes. Each row times
`vjp(conv)(cotangent)` (input and kernel gradients, which include the forward) under `jax.jit`, and the same
in torch (NCHW, `torch.set_num_threads(os.cpu_count())` or `--threads`); minimum over repeats, ms.

Run:  python -m benchmarks.conv3x3 [--repeats 7] [--threads 2]
(XLA:CPU's YNNPACK fusions: this script does not import rfgen_jax, so jax's default applies; add
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=` to time XLA's own convolution. Without torch, as on
Python >= 3.12, the torch columns are '-'.)
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

SHAPES = ((16, 64, 32, 64, 64), (16, 128, 64, 32, 32), (16, 32, 16, 128, 128), (16, 128, 64, 64, 32))


def winograd_conv3x3(x, w):
  """'SAME' stride-1 3x3 convolution by Winograd F(2x2, 3x3) (Lavin & Gray 2016).

  Args:
    x: (B, H, W, C_in) float, H and W even.
    w: (3, 3, C_in, C_out) HWIO kernel.
  Returns:
    (B, H, W, C_out), equal to `lax.conv_general_dilated(x, w, (1, 1), "SAME")` up to float rounding.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  b, h, wd, ci = x.shape
  co = w.shape[-1]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  d = [[xp[:, r:r + h:2, c:c + wd:2, :] for c in range(4)] for r in range(4)]   # 4x4 input tiles

  def input_transform(v):      # B^T v, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
    return [v[0] - v[2], v[1] + v[2], v[2] - v[1], v[1] - v[3]]

  cols = [input_transform([d[r][c] for r in range(4)]) for c in range(4)]
  v = [input_transform([cols[c][a] for c in range(4)]) for a in range(4)]
  v = jnp.stack([v[a][e] for a in range(4) for e in range(4)]).reshape(16, -1, ci)
  g = jnp.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], w.dtype)
  u = jnp.einsum("ar,rsio,bs->abio", g, w, g).reshape(16, ci, co)               # G w G^T
  m = jnp.einsum("kni,kio->kno", v, u).reshape(4, 4, b, h // 2, wd // 2, co)

  def output_transform(v):     # A^T v, A^T = [[1,1,1,0],[0,1,-1,-1]]
    return [v[0] + v[1] + v[2], v[1] - v[2] - v[3]]

  rows = [output_transform([m[a, e] for a in range(4)]) for e in range(4)]
  y = [[output_transform([rows[e][p] for e in range(4)])[q] for q in range(2)] for p in range(2)]
  y = jnp.stack([jnp.stack(y[p], axis=3) for p in range(2)], axis=2)            # (B, H/2, 2, W/2, 2, C)
  return y.reshape(b, h, wd, co)


def _min_ms(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times) * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--threads", type=int, default=0, help="torch threads (0: os.cpu_count())")
  args = parser.parse_args()
  import jax  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(args.threads or os.cpu_count())
  except ImportError:  # Python >= 3.12: requirements-test.txt installs torch on 3.11 only
    torch = None
  print(f"jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
        + ("" if torch else ", torch not installed: its columns are '-'"))

  def xla_conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def grads(conv):
    return jax.jit(lambda x, w, g: jax.vjp(conv, x, w)[1](g))

  print("| B x H x W x C_in -> C_out | XLA conv ms | Winograd ms | torch ms | XLA / torch | Winograd rel. error |")
  print("| --- | --- | --- | --- | --- | --- |")
  for b, h, w_, ci, co in SHAPES:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, h, w_, ci)).astype(np.float32)
    w = (rng.normal(size=(3, 3, ci, co)) / np.sqrt(9 * ci)).astype(np.float32)
    cot = rng.normal(size=(b, h, w_, co)).astype(np.float32)
    ref = np.asarray(xla_conv(x, w))
    err = np.abs(np.asarray(jax.jit(winograd_conv3x3)(x, w)) - ref).max() / np.abs(ref).max()
    xla_fn, wino_fn = grads(xla_conv), grads(winograd_conv3x3)
    t_xla = _min_ms(lambda: jax.block_until_ready(xla_fn(x, w, cot)), args.repeats)
    t_wino = _min_ms(lambda: jax.block_until_ready(wino_fn(x, w, cot)), args.repeats)
    torch_cols = "- | -"
    if torch is not None:
      tx = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
      tw = torch.tensor(w).permute(3, 2, 0, 1).contiguous().requires_grad_()
      tg = torch.tensor(cot).permute(0, 3, 1, 2).contiguous()
      t_torch = _min_ms(lambda: torch.nn.functional.conv2d(tx, tw, padding=1).backward(tg), args.repeats)
      torch_cols = f"{t_torch:.1f} | {t_xla / t_torch:.2f}"
    print(f"| {b} x {h} x {w_} x {ci} -> {co} | {t_xla:.1f} | {t_wino:.1f} | {torch_cols} | {err:.1e} |",
          flush=True)


if __name__ == "__main__":
  main()
