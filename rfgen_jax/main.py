"""Entry point: `python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR [--mode=train|eval]`.

Any config value can be overridden with `--config.KEY=VALUE`; the config is locked, so a mistyped key is
an error, not a silent no-op.

Exit status: 0 done; 2 a user error (a usage or config error, missing data or weight files, no checkpoint
to evaluate: one line on stderr, nothing written; `rfgen_jax/errors.py`); 75 preempted (SIGTERM): a
checkpoint of the step every process agreed on was written, and rerunning the same command resumes
(`rfgen_jax/train/preemption.py`; `launch/slurm_multihost.sbatch` requeues on 75).
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # pylint: disable=g-import-not-at-top
from absl import app, flags, logging
from ml_collections import config_flags

from rfgen_jax import cli, config_utils, errors, job, logging_setup  # pylint: disable=g-import-not-at-top
from rfgen_jax.train import preemption  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The program's flags; defined only when it runs, so importing this module defines none."""
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/market.py[:runlocal].",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Folder for config.json, checkpoints, logs, samples and eval.")
  flags.DEFINE_enum("mode", "train", ["train", "eval"], "train (then eval if train.eval_at_end) or eval.")
  flags.mark_flags_as_required(["config", "workdir"])


def _maybe_initialize_distributed() -> None:
  """Joins a multi-process job when the launch environment describes one; a single host needs nothing.

  RFGEN_DISTRIBUTED=1 (set by launch/tpu_pod.sh) or SLURM_NTASKS > 1: `jax.distributed.initialize()`
  with cluster auto-detection. JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID: explicit.
  """
  explicit = os.environ.get("JAX_COORDINATOR_ADDRESS")
  if explicit:
    jax.distributed.initialize(coordinator_address=explicit,
                               num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                               process_id=int(os.environ["JAX_PROCESS_ID"]))
  elif os.environ.get("RFGEN_DISTRIBUTED") == "1" or int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()   # cluster auto-detection (SLURM, Cloud TPU)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging_setup.configure()   # short prefix, expected library messages dropped, no tqdm bars in a log file
  _maybe_initialize_distributed()
  config = FLAGS.config
  logging.info("Process %d/%d, %d local / %d global devices: %s", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(), jax.devices())
  logging.info("XLA_FLAGS=%r (rfgen_jax/xla_cpu_defaults.py adds its CPU default unless yours set it).",
               os.environ.get("XLA_FLAGS", ""))
  try:
    mesh = config_utils.setup_run(config)   # the config checked and the mesh made, once per run
  except ValueError as e:   # a config value the run cannot use: one line, exit 2 (cli.run)
    raise errors.BadInputError(str(e)) from None
  # Data, weight files and checkpoints are opened before anything is written; the folders a failed
  # start made are removed, so a run that could not start leaves nothing in --workdir.
  with cli.removing_new_empty_folders(FLAGS.workdir):
    if FLAGS.mode == "train":
      try:
        job.train_and_evaluate(config, FLAGS.workdir, mesh)
      except preemption.Preempted as e:
        logging.warning("%s", e)
        sys.exit(preemption.PREEMPTED_EXIT_STATUS)
    else:
      job.evaluate(config, FLAGS.workdir, mesh)


def parse_flags(argv):
  """absl flag parsing that turns a mistyped `--config.KEY` into one clear line instead of a traceback."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:   # raised by the locked ConfigDict for an unknown key
    message = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'").replace("\n", " ")
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    sys.stderr.write(f"{argv[0]}: unknown config key ({message}) in {' '.join(overrides)}. Every key "
                     "is listed in configs/common.py and in config.json of a run.\n")
    sys.exit(2)


if __name__ == "__main__":
  define_flags()
  cli.run(main, flags_parser=parse_flags)
