"""Benchmark: bilinear warp forward+backward, rfgen_jax vs torch.nn.functional.grid_sample, on CPU.

Times one call of "gradient of sum(warp(x, flow) * cotangent) with respect to x and flow" (the forward
plus the backward, as in a training step) at the Market-1501 fusion-level shapes of the default model
(width 1.0): batch 8 x K = 2 sources = 16 maps at 16x8 (C=256), 32x16 (C=128), 64x32 (C=64).

JAX: `jax.jit` of `jax.grad`, `block_until_ready`. PyTorch: `grid_sample(..., align_corners=True)` and
`torch.autograd.grad` on NCHW float32 tensors, with `torch.set_num_threads` set to the number of cores
that XLA's CPU client uses (all of them, `os.cpu_count()`); `--threads 1` makes both single-threaded. Each
measurement runs the two frameworks alternately (so both see the same machine load), after warm-up, and
reports the minimum and the median over repeats; the ratio is ours / torch of the minima.

Run:  python -m benchmarks.warp [--repeats 30] [--impls gather,reference] [--flow-std 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

SHAPES = ((16, 16, 8, 256), (16, 32, 16, 128), (16, 64, 32, 64))


def _time(fn, repeats):
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return np.asarray(times) * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=30)
  parser.add_argument("--warmup", type=int, default=5)
  parser.add_argument("--impls", default="gather,reference",
                      help="comma-separated bilinear_warp impls to time (gather, onehot, reference)")
  parser.add_argument("--flow-std", type=float, default=3.0, help="flow standard deviation in pixels")
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch threads; 1 also makes XLA single-threaded (a contention-robust comparison)")
  args = parser.parse_args()

  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  if args.threads == 1:  # must be set before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()
  import jax  # after XLA_FLAGS above (as every jax import here)
  import jax.numpy as jnp
  import torch
  from rfgen_jax.ops import bilinear_warp  # imports jax: after XLA_FLAGS too

  torch.set_num_threads(args.threads)
  impls = args.impls.split(",")
  print(f"jax {jax.__version__} ({jax.devices()[0].platform}, {os.cpu_count()} cores visible), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}; flow std {args.flow_std} px; "
        f"{args.repeats} repeats, min (median) ms per forward+backward call")
  header = f"| maps x H x W x C | torch | " + " | ".join(f"ours ({i})" for i in impls) + " | " + \
      " | ".join(f"{i}/torch" for i in impls) + " |"
  print(header)
  print("|" + " --- |" * (2 + 2 * len(impls)))

  for b, h, w, c in SHAPES:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, h, w, c)).astype(np.float32)
    flow = (rng.standard_normal((b, h, w, 2)) * args.flow_std).astype(np.float32)
    cot = rng.standard_normal((b, h, w, c)).astype(np.float32)

    # torch, NCHW, grid = 2 * (base + flow) / (size - 1) - 1 (align_corners=True).
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    grid = np.stack([2 * (xs + flow[..., 0]) / (w - 1) - 1, 2 * (ys + flow[..., 1]) / (h - 1) - 1], -1)
    gt = torch.from_numpy(grid.astype(np.float32)).requires_grad_()
    cot_t = torch.from_numpy(cot).permute(0, 3, 1, 2).contiguous()

    def torch_step():
      out = torch.nn.functional.grid_sample(xt, gt, mode="bilinear", padding_mode="zeros",
                                            align_corners=True)
      return torch.autograd.grad((out * cot_t).sum(), (xt, gt))

    xj, fj, cj = jnp.asarray(x), jnp.asarray(flow), jnp.asarray(cot)
    steps = {}
    for impl in impls:
      loss = lambda x_, f_, c_, impl=impl: jnp.sum(bilinear_warp(x_, f_, impl=impl) * c_)
      grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
      steps[impl] = lambda grad=grad: jax.block_until_ready(grad(xj, fj, cj))

    for _ in range(args.warmup):
      torch_step()
      for step in steps.values():
        step()
    times = {"torch": [], **{i: [] for i in impls}}
    for _ in range(args.repeats):  # alternate, so that load from other processes hits all alike
      times["torch"].append(_time(torch_step, 1)[0])
      for impl, step in steps.items():
        times[impl].append(_time(step, 1)[0])
    mins = {k: float(np.min(v)) for k, v in times.items()}
    meds = {k: float(np.median(v)) for k, v in times.items()}
    cells = [f"{mins[k]:.2f} ({meds[k]:.2f})" for k in ["torch"] + impls]
    ratios = [f"{mins[i] / mins['torch']:.2f}" for i in impls]
    print(f"| {b} x {h} x {w} x {c} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
  main()
