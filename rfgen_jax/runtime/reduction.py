"""Averaging gradients and metrics over the mesh's `data` axis in a fixed order.

Data parallelism averages each device's gradient over all devices. Left to XLA (`train.grad_reduction =
"all_reduce"`: the step is jitted on global arrays and XLA inserts an all-reduce), the float sum runs in an
order that depends on how the devices are spread over processes: in one process XLA's CPU all-reduce
adds the 8 devices' values in one order, between two processes gloo adds them in another. The results
differ in the last bits, and Adam and the GAN amplify that to visible parameter differences within tens
of steps (docs/scaling.md, "Several processes", gives the measurement).

`train.grad_reduction = "fixed_order"` (the default) runs the step per device (`jax.shard_map` over
`data`, each device on its rows of the batch) and averages with `fixed_order_mean`: the flattened
gradients are cut into one chunk per device, an all-to-all gives device i the chunk i of every device,
device i adds those in device order (one `jnp.sum` over a (devices, chunk) array, the same compiled code
on every layout) and an all-gather returns the averaged chunks to everyone. An all-to-all and an
all-gather move only bits, so the result is the same on 1 process with 8 devices as on 2 with 4
(tests/test_multiprocess.py asserts it). The traffic equals a ring all-reduce's (a reduce-scatter plus an
all-gather); the extra memory is one flattened copy of the gradients.

Both give the same mean up to float rounding; every loss of rfgen_jax is a mean over examples with the
same number of terms per example, so the mean of the devices' means is the mean over the global batch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

GRAD_REDUCTIONS = ("fixed_order", "all_reduce")


def check_grad_reduction(kind: str) -> str:
  """`kind` if it is one of GRAD_REDUCTIONS, else a ValueError naming `--config.train.grad_reduction`."""
  if kind not in GRAD_REDUCTIONS:
    raise ValueError(f"--config.train.grad_reduction={kind!r}; accepted: {GRAD_REDUCTIONS}.")
  return kind


def fixed_order_mean(tree, axis_name: str):
  """The mean over the devices of `axis_name` of each leaf of `tree`, summed in device order.

  Call inside `jax.shard_map` (or any function mapped over `axis_name`).

  Args:
    tree: a pytree of float arrays, this device's values (e.g. gradients of its rows' mean loss).
    axis_name: the mapped mesh axis to average over.
  Returns:
    a pytree like `tree` (leaf dtypes kept), the same bits on every device and on every process layout.
  """
  flat, unravel = ravel_pytree(tree)
  n = jax.lax.axis_size(axis_name)
  if n == 1:
    return tree
  pad = (-flat.size) % n
  chunks = jnp.pad(flat, (0, pad)).reshape(n, -1)                   # row i goes to device i
  gathered = jax.lax.all_to_all(chunks, axis_name, split_axis=0, concat_axis=0, tiled=True)
  mine = jnp.sum(gathered, axis=0) / n                               # row j came from device j
  full = jax.lax.all_gather(mine, axis_name, tiled=True)
  return unravel(full[:flat.size])
