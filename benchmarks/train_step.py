"""Train-step benchmark: compile time, step time, images/s, peak memory and achieved FLOP/s per stage.

  python -m benchmarks.train_step                                   # Market-1501 (batch 8, K=2) + demo
  python -m benchmarks.train_step --configs=configs/market.py --dtypes=float32,bfloat16 --steps=20
  python -m benchmarks.train_step --conv_impls=xla,auto --stages=1,2  # plain XLA convs vs fast forms

For each config, dtype and stage (1: flow warm-up, 2: end to end) it jits the real step function of
`rfgen_jax.train.steps` on random inputs of the config's shapes, and reports:
- config: the config's name, the spec as given to `--configs` (file[:arg]); its overrides are the
  dtype, conv_impl and batch columns (`--batch_size`);
- compile: seconds to lower and compile the step;
- step: median seconds per step over `--steps` timed steps (after 2 warm-up steps);
- img/s: target images per second (batch / step);
- peak MiB: the device's peak bytes in use where the backend reports it (GPU/TPU), else XLA's
  memory analysis of the compiled step (arguments + outputs + temporaries, CPU);
- TFLOP/s: XLA's cost analysis flops of one step divided by the step time.
The VGG19 used by the losses has random weights here (speed does not depend on the values).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # pylint: disable=g-import-not-at-top
import numpy as np
from absl import flags, logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rfgen_jax import cli, config_utils, models  # pylint: disable=g-import-not-at-top
from rfgen_jax.nets import vgg19
from rfgen_jax.train import steps
from rfgen_jax.runtime import sharding, state as state_lib

flags.DEFINE_list("configs", ["configs/market.py", "configs/synthetic.py"], "Config specs.")
flags.DEFINE_list("dtypes", ["float32"], "Compute dtypes (model.dtype).")
flags.DEFINE_integer("steps", 5, "Timed steps per stage.")
flags.DEFINE_integer("batch_size", 0, "Override train.batch_size (0: the config's).")
flags.DEFINE_list("conv_impls", ["auto"], "model.conv_impl values to compare (auto | xla).")
flags.DEFINE_list("stages", ["1", "2"], "Stages to time (1: flow warm-up, 2: end to end).")
FLAGS = flags.FLAGS


def _random_batch(config, batch_size):
  rng = np.random.default_rng(0)
  h, w = config.data.image_size
  k, p = config.data.num_sources, config.data.pose_channels
  return {"source_images": rng.uniform(-1, 1, (batch_size, k, h, w, 3)).astype(np.float32),
          "source_poses": rng.uniform(0, 1, (batch_size, k, h, w, p)).astype(np.float32),
          "target_image": rng.uniform(-1, 1, (batch_size, h, w, 3)).astype(np.float32),
          "target_pose": rng.uniform(0, 1, (batch_size, h, w, p)).astype(np.float32)}


def _peak_mib(compiled) -> float:
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return stats["peak_bytes_in_use"] / 2**20
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
          - m.alias_size_in_bytes) / 2**20


def bench(spec: str, dtype: str, conv_impl: str = "auto"):
  config = config_utils.load_config(spec)
  config.model.dtype = dtype
  config.model.conv_impl = conv_impl
  config.losses.allow_random_vgg = True
  config.losses.vgg19_weights = None
  if FLAGS.batch_size:
    config.train.batch_size = FLAGS.batch_size
  config_utils.validate_config(config, num_devices=jax.device_count())
  mesh = sharding.make_mesh(config.train.mesh_shape)
  rep = sharding.replicated(mesh)
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  vgg, vgg_params = vgg19.load_vgg19(config)
  vgg_params = jax.device_put(vgg_params, rep)
  state_sharding = jax.tree.map(lambda _: rep, state_lib.abstract_state(config, gen, disc))
  state = state_lib.create_state(config, jax.random.PRNGKey(0), gen, disc, state_sharding)
  batch = sharding.to_global_batch(_random_batch(config, config.train.batch_size), mesh)
  step_spec = steps.StepSpec.create(config, gen, disc, vgg, mesh)   # as the trainer runs it (train.grad_reduction)
  rows = []
  for stage in (int(s) for s in FLAGS.stages):
    health = steps.initial_health(stage, step_spec, state, batch, vgg_params, rep)
    start = time.perf_counter()
    compiled = steps.make_train_step(stage, step_spec, state, batch, vgg_params, health,
                                  state_sharding=state_sharding,
                                  batch_sharding=sharding.data_sharded(mesh), replicated_sharding=rep)
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0))
    times = []
    for i in range(FLAGS.steps + 2):
      start = time.perf_counter()
      state, metrics, health = compiled(state, batch, vgg_params, health)
      jax.block_until_ready(metrics)
      if i >= 2:
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    rows.append((spec, f"{dtype}, {conv_impl}", stage, config.train.batch_size, config.data.num_sources,
                 "x".join(map(str, config.data.image_size)), config.model.width, compile_s, step_s,
                 config.train.batch_size / step_s, _peak_mib(compiled), flops / step_s / 1e12))
  return rows


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  header = ("config", "dtype, conv_impl", "stage", "batch", "K", "HxW", "width", "compile s", "step s",
            "img/s", "peak MiB", "TFLOP/s", "load")
  print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()} ({jax.default_backend()}), "
        f"load average {os.getloadavg()[0]:.1f}", flush=True)
  print("| " + " | ".join(header) + " |")
  print("|" + " --- |" * len(header), flush=True)
  for spec in FLAGS.configs:
    for dtype in FLAGS.dtypes:
      for conv_impl in FLAGS.conv_impls:
        for r in bench(spec, dtype, conv_impl):
          print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]:.1f} | "
                f"{r[8]:.3f} | {r[9]:.1f} | {r[10]:.0f} | {r[11]:.4f} | {os.getloadavg()[0]:.1f} |",
                flush=True)


if __name__ == "__main__":
  cli.run(main)
