"""Animation frame-rate benchmark: frames per second of `rfgen_jax.tools.animate`'s generation step.

  python -m benchmarks.animate                                     # demo and Market-1501 shapes
  python -m benchmarks.animate --configs=configs/market.py --batch_sizes=1,8,32 --num_sources=2 --repeats=5

For each config, K and batch size it runs the function the animator and the app use
(`rfgen_jax.inference.generator_outputs`: the generated images and every inner map, copied to the
host) on random parameters of the config's shapes (speed does not depend on the values) and random
inputs: one set of K sources, `batch` target poses. Reports the compile time (first call) and the
frames per second of the median of `--repeats` timed calls after one warm-up call.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # pylint: disable=g-import-not-at-top
import numpy as np
from absl import app, flags

from rfgen_jax import cli

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rfgen_jax import config_utils, models  # pylint: disable=g-import-not-at-top
from rfgen_jax import inference  # pylint: disable=g-import-not-at-top

flags.DEFINE_list("configs", ["configs/synthetic.py", "configs/market.py"], "Config specs.")
flags.DEFINE_list("batch_sizes", ["1", "8", "16"], "Frames generated per call.")
flags.DEFINE_integer("num_sources", 2, "K.")
flags.DEFINE_integer("repeats", 5, "Timed calls per setting.")
FLAGS = flags.FLAGS


def random_params(config, generator):
  abstract = jax.eval_shape(generator.init, jax.random.PRNGKey(0), *models.example_inputs(config, 1))
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda a: jax.numpy.asarray((0.1 * rng.standard_normal(a.shape)).astype(a.dtype)),
                      abstract["params"])


def main(argv):
  del argv
  print(f"devices: {jax.devices()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
  print("| config | H x W | width | K | batch | compile s | s per call | frames/s |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for spec in FLAGS.configs:
    config = config_utils.load_config(spec)
    generator = models.build_generator(config)
    params = random_params(config, generator)
    h, w = config.data.image_size
    p, k = config.data.pose_channels, FLAGS.num_sources
    rng = np.random.default_rng(0)
    for b in (int(x) for x in FLAGS.batch_sizes):
      sources = rng.uniform(-1, 1, (k, h, w, 3)).astype(np.float32)
      batch = {"source_images": np.broadcast_to(sources, (b, k, h, w, 3)),
               "source_poses": rng.uniform(0, 1, (b, k, h, w, p)).astype(np.float32),
               "target_pose": rng.uniform(0, 1, (b, h, w, p)).astype(np.float32)}
      start = time.perf_counter()
      inference.generator_outputs(generator, params, batch)
      compile_s = time.perf_counter() - start
      inference.generator_outputs(generator, params, batch)
      times = []
      for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        inference.generator_outputs(generator, params, batch)
        times.append(time.perf_counter() - start)
      t = statistics.median(times)
      print(f"| {os.path.basename(spec)} | {h}x{w} | {config.model.width} | {k} | {b} | {compile_s:.1f} | "
            f"{t:.3f} | {b / t:.1f} |", flush=True)


if __name__ == "__main__":
  cli.run(main)
