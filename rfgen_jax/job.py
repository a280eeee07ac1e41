"""The main job: train (resuming), evaluate during and after training, say where everything is.

The one module that joins the two sibling layers `rfgen_jax/train/` and `rfgen_jax/evaluation/`
(docs/design.md, "Layers"): the trainer gets the periodic evaluation as a callback. `python -m
rfgen_jax.main` calls `train_and_evaluate` (`--mode=train`) or `evaluation.evaluator.evaluate` (`--mode=eval`).
"""
from __future__ import annotations

import functools
import glob
import os

import jax
from absl import logging

from rfgen_jax import config_utils, evaluation
from rfgen_jax.data.datasets import people_tfds
from rfgen_jax.evaluation import evaluator
from rfgen_jax.train import trainer as trainer_lib


def _evaluate_during_training(config, workdir: str, step: int, generate, params, writer, mesh) -> None:
  """`eval.train_evaluators` on the test tuples every `eval.every_steps` (every process; the trainer's
  `evaluate_during_training` callback): scalars to TensorBoard, `eval/step_<step>/metrics.json`."""
  evaluation.run_evaluators(config, generate, params, step, writer, workdir, mesh)


def train_and_evaluate(config, workdir: str, mesh: jax.sharding.Mesh | None = None) -> None:
  """Trains (resuming if `workdir` holds a checkpoint) and, if `train.eval_at_end`, evaluates.

  `mesh`: the run's mesh from `config_utils.setup_run` (which also checked the config); without it,
  `setup_run` is called here."""
  mesh = mesh if mesh is not None else config_utils.setup_run(config)
  periodic = functools.partial(_evaluate_during_training, config, workdir)
  trainer = trainer_lib.Trainer(config, workdir, mesh, evaluate_during_training=periodic)
  try:
    trainer.run()
  finally:
    trainer.close()
  if config.train.eval_at_end:
    evaluator.evaluate(config, workdir, mesh)
  log_output_summary(config, workdir)


def evaluate(config, workdir: str, mesh: jax.sharding.Mesh | None = None, release=None) -> dict:
  """`--mode=eval`: `evaluator.evaluate`, then the same closing lines as training (where things are).

  `release`: a released model (`rfgen_jax.runtime.pretrained.Release`, `--pretrained=NAME`) evaluated
  instead of `workdir`'s checkpoint; its results go to `<workdir>/eval/` all the same."""
  report = evaluator.evaluate(config, workdir, mesh, release=release)
  log_output_summary(config, workdir)
  return report


def log_output_summary(config, workdir: str) -> None:
  """Logs `output_summary` on process 0."""
  if jax.process_index() == 0:
    for line in output_summary(config, workdir):
      logging.info("%s", line)


def output_summary(config, workdir: str) -> list[str]:
  """The run's last log lines: where its outputs are (and the data it read, which live outside it)."""
  workdir = os.path.abspath(workdir)
  # The step folders on disk, not an Orbax manager: opening one is a collective (it syncs the processes),
  # and only process 0 writes this summary.
  folder = os.path.join(workdir, "checkpoints")
  saved = sorted(int(d) for d in (os.listdir(folder) if os.path.isdir(folder) else []) if d.isdigit())
  samples = sorted(glob.glob(os.path.join(workdir, "samples", "*.png")))
  lines = [f"Outputs in {workdir}:",
           f"  samples      samples/ ({len(samples)} grids" +
           (f", the last {os.path.basename(samples[-1])})" if samples else ")"),
           f"  checkpoints  checkpoints/ (steps {', '.join(map(str, saved)) or 'none'})",
           "  TensorBoard  tensorboard --logdir " + workdir]
  table = os.path.join(workdir, "eval", "table.md")
  if os.path.exists(table):
    lines.insert(1, "  eval table   eval/table.md (all metrics: eval/metrics.json; sample grids: "
                    "eval/samples_K*.png)")
  lines.append("Data (outside the workdir): " + data_locations(config))
  return lines


def data_locations(config) -> str:
  """Where the run's data are: `data.root` and, for the data sets stored through TFDS, the prepared copy."""
  where = f"data.root={os.path.abspath(config.data.root)}"
  spec = people_tfds._SPECS.get(config.data.name)  # pylint: disable=protected-access
  if spec is not None:
    where += f", its TFDS copy in {os.path.join(people_tfds.tfds_data_dir(config), spec[0])}"
  return where
