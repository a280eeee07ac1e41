"""Bytes of the train state per device, from `jax.eval_shape` (nothing is allocated or compiled).

  python -m benchmarks.state_memory                                   # DeepFashion at widths 1 and 2
  python -m benchmarks.state_memory --config=configs/market.py --widths=1,2,4

For each width: parameter counts, the bytes of each part of `TrainState` (generator and discriminator
parameters, the generator's EMA, the three Adam states: two moments each), and what one device would hold
if the large conv kernels and their Adam moments and EMA were sharded over a `model` axis of 2, 4 or 8
(FSDP-style: every leaf of at least `--min_shard_kib` split, the rest replicated). Activation memory is
not included (it depends on the batch; `benchmarks/train_step.py` reports a compiled step's peak).
"""
from __future__ import annotations

import os
import sys

import jax
import numpy as np
from absl import app, flags

from rfgen_jax import cli

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rfgen_jax import config_utils, models  # pylint: disable=g-import-not-at-top
from rfgen_jax.runtime import state as state_lib

flags.DEFINE_string("config", "configs/deepfashion.py", "Config spec.")
flags.DEFINE_list("widths", ["1", "2"], "model.width values.")
flags.DEFINE_integer("min_shard_kib", 64, "Leaves at least this large are sharded in the FSDP column.")
FLAGS = flags.FLAGS


def _bytes(tree) -> int:
  return int(sum(np.prod(a.shape) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree)))


def _sharded_bytes(tree, ways: int, min_bytes: int) -> int:
  total = 0
  for a in jax.tree.leaves(tree):
    size = int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
    total += size // ways if size >= min_bytes else size
  return total


def main(argv):
  del argv
  print("| width | generator params | disc params | gen | EMA | disc | Adam (3 states) | state total | "
        "state per device, model=2 / 4 / 8 |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  mib = 2.0**20
  for width in FLAGS.widths:
    config = config_utils.load_config(FLAGS.config)
    config.model.width = float(width)
    gen, disc = models.build_generator(config), models.build_discriminator(config)
    state = state_lib.abstract_state(config, gen, disc)
    n_gen = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(state.gen_params))
    n_disc = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(state.disc_params))
    adam = _bytes((state.flow_opt_state, state.gen_opt_state, state.disc_opt_state))
    total = _bytes(state)
    sharded = [_sharded_bytes(state, w, FLAGS.min_shard_kib * 1024) for w in (2, 4, 8)]
    print(f"| {width} | {n_gen / 1e6:.1f} M | {n_disc / 1e6:.2f} M | {_bytes(state.gen_params) / mib:.0f} MiB | "
          f"{_bytes(state.ema_params) / mib:.0f} MiB | {_bytes(state.disc_params) / mib:.1f} MiB | "
          f"{adam / mib:.0f} MiB | {total / mib:.0f} MiB | "
          f"{' / '.join(f'{s / mib:.0f}' for s in sharded)} MiB |")


if __name__ == "__main__":
  cli.run(main)
