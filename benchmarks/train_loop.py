"""Train-loop benchmark: the real loop's steps/s against its own jitted step called back to back.

  python -m benchmarks.train_loop                       # the demo config, stage 2, 100 timed steps
  python -m benchmarks.train_loop --steps=200 --stage=1 --data_root=/tmp/synthetic

Both rows run the same compiled step of `rfgen_jax.train.trainer.Trainer` on the same state:
- loop: `Trainer.run()` for `--steps` steps: input pipeline, host-to-device copies, on-device finiteness
  record, progress hook, the metric reads and TensorBoard writes at `train.log_every_steps`. Only the
  end-of-run checkpoint and sample grid (once per run, not per step) are left out.
- step: the jitted step called `--steps` times back to back on batches already on the devices
  (`--resident` different ones, cycled), then one wait.
ratio = loop / step: 1.0 means the loop adds nothing to the device's work. Each is run `--repeats` times,
alternating, and the best of each is reported (the machine may be shared).
"""
from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # pylint: disable=g-import-not-at-top
from absl import app, flags, logging

from rfgen_jax import cli

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rfgen_jax import config_utils  # pylint: disable=g-import-not-at-top
from rfgen_jax.train import trainer as trainer_lib

flags.DEFINE_string("config", "configs/synthetic.py", "Config spec.")
flags.DEFINE_string("data_root", "", "data.root override (default: the config's).")
flags.DEFINE_integer("steps", 100, "Timed steps per row and repeat.")
flags.DEFINE_integer("stage", 2, "1: flow warm-up step, 2: end-to-end step.")
flags.DEFINE_integer("repeats", 2, "Alternating repeats of both rows; the best is reported.")
flags.DEFINE_integer("resident", 4, "Distinct device-resident batches cycled by the `step` row.")
FLAGS = flags.FLAGS


def _time_loop(trainer, steps: int) -> float:
  """steps/s of `trainer.run()` over the next `steps` steps."""
  first = int(jax.device_get(trainer.state.step))
  trainer.config.train.total_steps = first + steps
  start = time.perf_counter()
  trainer.run()
  jax.block_until_ready(trainer.state)
  return steps / (time.perf_counter() - start)


def _time_step(trainer, step_fn, stage: int, batches, steps: int) -> float:
  """steps/s of `step_fn` called back to back on device-resident `batches`."""
  state, health = trainer.state, trainer.health[stage]
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _, batch in zip(range(steps), itertools.cycle(batches)):
    state, _, health = step_fn(state, batch, trainer.vgg_params, health)
  jax.block_until_ready(state)
  rate = steps / (time.perf_counter() - start)
  trainer.state, trainer.health[stage] = state, health
  return rate


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = config_utils.load_config(FLAGS.config)
  if FLAGS.data_root:
    config.data.root = FLAGS.data_root
  config.train.flow_warmup_steps = 10**9 if FLAGS.stage == 1 else 0
  config.train.eval_at_end = False
  config.train.sample_every_steps = 10**9
  config.checkpoint.every_steps = 10**9
  # The config must validate (warm-up <= total) when the trainer is built; each `run()` then reads the
  # total it trains to from `trainer.config`.
  config.train.total_steps = max(config.train.flow_warmup_steps, 2)
  workdir = tempfile.mkdtemp(prefix="train_loop_bench_")
  trainer = trainer_lib.Trainer(config, workdir, config_utils.setup_run(config))
  trainer.config.train.total_steps = 2    # compile and warm up
  # Once-per-run work at the last step, not part of the per-step cost measured here.
  trainer.write_samples = lambda step: None
  trainer.checkpointer.save = lambda *args, **kwargs: None
  trainer.run()
  step_fn = trainer.train_steps[FLAGS.stage]    # compiled by the warm-up run above
  batches = [trainer.next_batch() for _ in range(FLAGS.resident)]
  _time_step(trainer, step_fn, FLAGS.stage, batches, 2)
  loop, step = [], []
  for _ in range(FLAGS.repeats):
    step.append(_time_step(trainer, step_fn, FLAGS.stage, batches, FLAGS.steps))
    loop.append(_time_loop(trainer, FLAGS.steps))
  trainer.close()
  h, w = config.data.image_size
  print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()} ({jax.default_backend()}); "
        f"{FLAGS.config}, stage {FLAGS.stage}, batch {config.train.batch_size}, {h}x{w}, "
        f"width {config.model.width}, log every {config.train.log_every_steps} steps, "
        f"{FLAGS.steps} steps x {FLAGS.repeats}")
  print("| row | steps/s (best) | all repeats |")
  print("| --- | --- | --- |")
  print(f"| step (back to back, resident batches) | {max(step):.3f} | "
        f"{', '.join(f'{r:.3f}' for r in step)} |")
  print(f"| loop (Trainer.run) | {max(loop):.3f} | {', '.join(f'{r:.3f}' for r in loop)} |")
  print(f"| ratio loop / step | {max(loop) / max(step):.3f} | |")


if __name__ == "__main__":
  cli.run(main)
