"""Entry point: `python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR [--mode=train|eval]`.

Any config value can be overridden with `--config.KEY=VALUE`; the config is locked, so a mistyped key is
an error, not a silent no-op.

`--mode=eval --pretrained=NAME --workdir=OUT` evaluates a released model (docs/pretrained.md) instead of
a checkpoint: the parameters come from the release, the results go to `OUT/eval/`, and the config is the
release's own (`configs/pretrained.py:NAME`, overridable with `--config.KEY=VALUE`) unless `--config`
names one that builds the same model.

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

from rfgen_jax import cli, config_utils, errors, job, logging_setup, multihost  # pylint: disable=g-import-not-at-top
from rfgen_jax.runtime import pretrained  # pylint: disable=g-import-not-at-top
from rfgen_jax.train import preemption  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The program's flags; defined only when it runs, so importing this module defines none."""
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/market.py[:runlocal].",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Folder for config.json, checkpoints, logs, samples and eval.")
  flags.DEFINE_enum("mode", "train", ["train", "eval"], "train (then eval if train.eval_at_end) or eval.")
  flags.DEFINE_string("pretrained", None, "--mode=eval only: evaluate this released model (a name from "
                      "`python -m rfgen_jax.tools.pretrained --list`, or a release folder) instead of "
                      "--workdir's checkpoint; --config defaults to the release's own.")
  flags.mark_flags_as_required(["workdir"])


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
  multihost.compile_everywhere_on_cpu()   # several CPU processes: no persistent compilation cache


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging_setup.configure()   # short prefix, expected library messages dropped, no tqdm bars in a log file
  _maybe_initialize_distributed()
  config = FLAGS.config
  if config is None:
    raise errors.BadInputError("--config is required: --config=configs/<name>.py[:arg] (or, with "
                               "--mode=eval, --pretrained=NAME to evaluate a released model).")
  release = None
  if FLAGS.pretrained:
    release = _released_model(config, FLAGS.pretrained, FLAGS.mode, FLAGS.workdir)
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
      job.evaluate(config, FLAGS.workdir, mesh, release=release)


def _released_model(config, name: str, mode: str, workdir: str) -> pretrained.Release:
  """The verified release of `--pretrained` for `--mode=eval`, checked against the config and workdir."""
  if mode != "eval":
    raise errors.BadInputError(
        f"--pretrained={name} is for --mode=eval (it evaluates a released model); training starts from "
        "a config (--config) and its own initialisation.")
  release = pretrained.load_release(name)
  differing = config_utils.differing_shape_keys(release.config.to_dict(), config)
  if differing:
    raise errors.BadInputError(
        f"--config builds another model than the release {release.name} ({'; '.join(differing)}; "
        "'checkpoint' is the release); leave --config out to use the release's own config.")
  checkpoints = os.path.join(workdir, "checkpoints")
  if os.path.isdir(checkpoints) and os.listdir(checkpoints):
    raise errors.BadInputError(
        f"--workdir={workdir} holds a training run's checkpoints; with --pretrained the parameters come "
        "from the release and eval/ of --workdir would mix the two: choose a new --workdir.")
  return release


def _flag_value(argv, name: str):
  """The value of `--name=V` or `--name V` in a command line (before any `--`), else None."""
  for i, arg in enumerate(argv[1:], start=1):
    if arg == "--":
      return None
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def with_release_config(argv):
  """With `--pretrained=NAME` and no `--config`, the command line with the release's config added
  (`--config=configs/pretrained.py:NAME`), so `--config.KEY=VALUE` overrides apply to it. The release is
  verified first: a missing or damaged file is one line and exit status 2 here, not a flag-parsing error."""
  name = _flag_value(argv, "pretrained")
  if not name or _flag_value(argv, "config") is not None or cli.asks_for_help(argv):
    return argv
  try:
    pretrained.verify(pretrained.resolve(name))
  except errors.UserError as e:
    sys.exit(cli.report(e, "rfgen_jax.main"))
  spec = os.path.join(pretrained.repository_root(), "configs", "pretrained.py") + ":" + name
  return [argv[0], f"--config={spec}", *argv[1:]]


def parse_flags(argv):
  """absl flag parsing that turns a mistyped `--config.KEY` into one clear line instead of a traceback."""
  argv = with_release_config(argv)
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
