r"""The paper's ablation (Lu et al., AAAI 2022, Table 4): Full against w/o res, w/o occ, w/o attn, Baseline.

    python -m rfgen_jax.experiments.ablation --config=configs/ablation.py --workdir=DIR \
        [--variants=full,wo_res,wo_occ,wo_attn,baseline] [--seeds=0,1 --seed_variants=full,baseline] \
        [--parallel=N] [--config.KEY=VALUE ...]

Every run (a variant at a seed) is `python -m rfgen_jax.main --config=<the same config and overrides>
--config.model.<switch>=False ... --workdir=DIR/runs/<variant>_s<seed>` in a subprocess: the project's own
train and eval entry points (`rfgen_jax/job.py: train_and_evaluate`, then
`rfgen_jax/evaluation/evaluator.py: evaluate` at K = `eval.num_sources`), on the same data, with the same
seed and steps. The switches (`configs/common.py`, `rfgen_jax/models/rf_block.py`):

| variant | overrides |
| --- | --- |
| `full` | none |
| `wo_res` | `model.residual_flow=False` (the estimator's flow is used unrefined) |
| `wo_occ` | `model.occlusion=False` (no occlusion mask: warped features only) |
| `wo_attn` | `model.attention=False` (sources averaged with equal weights) |
| `baseline` | all three False (warped features averaged) |

A seed `S` sets `train.seed` and `data.shuffle_seed` (initialisation and data order); the data set and
the evaluation tuples stay the same. `--seeds` lists the seeds; the first is used by every variant, the
others only by `--seed_variants`.

Resuming: each run has its own workdir. A run whose `eval/metrics.json` is at `train.total_steps` with
every K is skipped; any other resumes from its latest Orbax checkpoint (the trainer does that) and is
then evaluated. Interrupt the study at any time (Ctrl-C stops the runs) and rerun the same command.

Output in DIR: `table4.md`, `table4.json`, `table4.png` (`rfgen_jax/experiments/report.py`),
`study.json` (the plan), `runs/<run>/` (a normal workdir plus `log.txt`, the run's output, and
`command.txt`). One progress line on stderr: runs done, the active runs' steps, steps/s and the ETA of
the whole study.

Side by side (`--parallel N`): N runs at once, each pinned to its share of the local devices: GPUs by
`CUDA_VISIBLE_DEVICES` (several runs on one GPU split its memory by `XLA_PYTHON_CLIENT_MEM_FRACTION`),
CPU cores by `sched_setaffinity`. TPU is refused (see `study_devices._TPU_PARALLEL`). The data set is
generated and prepared once, before any run starts (`--prepare_only` does just that).

The parts, one job each (`rfgen_jax/experiments/`): `study_plan.py` (the variants, the runs, their
commands), `study_devices.py` (the slots of `--parallel`), `study_progress.py` (the status line and
ETA), `study_scheduler.py` (running the runs), `report.py` (Table 4: markdown, JSON, plot); this module
is the command line: flags, the data set, the plan written to study.json, the results handed to the report.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from absl import app, flags
from ml_collections import config_flags

from rfgen_jax import cli, data, errors
from rfgen_jax.experiments import report
from rfgen_jax.experiments.study_devices import device_slots
from rfgen_jax.experiments.study_devices import probe_devices
from rfgen_jax.experiments.study_plan import ORDER
from rfgen_jax.experiments.study_plan import VARIANTS
from rfgen_jax.experiments.study_plan import Run
from rfgen_jax.experiments.study_plan import UsageError
from rfgen_jax.experiments.study_plan import config_flag_args
from rfgen_jax.experiments.study_plan import finished
from rfgen_jax.experiments.study_plan import flag_value
from rfgen_jax.experiments.study_plan import plan_runs
from rfgen_jax.experiments.study_plan import study_overrides
from rfgen_jax.experiments.study_progress import Progress
from rfgen_jax.experiments.study_scheduler import run_study

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The study's flags; defined only when it runs, so importing the module defines none."""
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/ablation.py[:tiny].",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Folder of the study: runs/<variant>_s<seed>/, table4.{md,json,png}.")
  flags.DEFINE_list("variants", None, "Variants to run (default: study.variants of the config); any of "
                    "full, wo_res, wo_occ, wo_attn, baseline.")
  flags.DEFINE_list("seeds", None, "Seeds (default: study.seeds). The first is run by every variant, the "
                    "others by --seed_variants only.")
  flags.DEFINE_list("seed_variants", None, "Variants trained at every seed (default: study.seed_variants).")
  flags.DEFINE_integer("parallel", None, "Runs side by side, each on its share of the devices (default: "
                       "study.parallel).")
  flags.DEFINE_boolean("prepare_only", False, "Only generate and prepare the data set (used before the runs).")
  flags.DEFINE_boolean("report_only", False, "Only write the table and plot from the finished runs.")
  flags.mark_flags_as_required(["config", "workdir"])


def write_results(config, workdir: str, runs: List[Run], total: int, ks: Sequence[int]) -> Optional[dict]:
  by_variant: Dict[str, Dict[int, dict]] = {}
  for r in runs:
    m = finished(r, total, ks)
    if m is not None:
      by_variant.setdefault(r.variant, {})[r.seed] = m
  if not by_variant:
    return None
  s = config.study
  scored = sorted({int(n) for seeds in by_variant.values() for m in seeds.values()
                   for n in m.get("num_tuples", {}).values()})   # what was scored, not eval.max_tuples
  tuples_text = " or ".join(str(n) for n in scored) if scored else "?"
  notes = ["", f"{len([r for r in runs if r.variant in by_variant])} runs of {total} steps each "
           f"({config.train.flow_warmup_steps} of flow warm-up), model.width {config.model.width}, "
           f"image {tuple(config.data.image_size)}, batch {config.train.batch_size}, training K = "
           f"{config.data.num_sources}; data {config.data.name} with misalignment "
           f"{dict(config.data.synthetic_misalign) if config.data.name == 'synthetic' else 'n/a'}; "
           f"{tuples_text} test tuples scored per K (eval.max_tuples {config.eval.max_tuples or 'all'})."]
  labels = {v: VARIANTS[v][0] for v in VARIANTS}
  return report.write_report(workdir, by_variant, ORDER, labels, ks, tuple(s.metrics), "full",
                             tuple(s.plot_metrics), extra={"runs": {r.name: r.workdir for r in runs}},
                             notes=notes)


def _prepare(config_args: List[str], shared: Dict[str, object]) -> None:
  """Generates and prepares the data set once, in a subprocess (no device is held by this process)."""
  cmd = ([sys.executable, "-m", "rfgen_jax.experiments.ablation", *config_args] +
         [f"--config.{k}={flag_value(v)}" for k, v in shared.items()] + ["--workdir=.", "--prepare_only"])
  out = subprocess.run(cmd, capture_output=True, text=True)
  if out.returncode == 2:   # a user error (no data at data.root, ...): its one line is the message
    lines = out.stderr.strip().splitlines()
    raise errors.UserError(lines[-1].split(": ", 1)[-1] if lines else "preparing the data set failed.")
  if out.returncode != 0:
    raise RuntimeError("Preparing the data set failed:\n" + (out.stdout + out.stderr)[-3000:])


def main(argv) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = FLAGS.config
  if FLAGS.prepare_only:
    data.ensure_dataset(config)
    return 0
  if "study" not in config:
    raise UsageError(f"--config has no `study` section; use configs/ablation.py (or add its keys).")
  s = config.study
  try:
    seeds = [int(x) for x in (FLAGS.seeds if FLAGS.seeds is not None else s.seeds)]
  except ValueError:
    raise UsageError(f"--seeds must be integers, got {FLAGS.seeds}.") from None
  variants = list(FLAGS.variants if FLAGS.variants is not None else s.variants)
  seed_variants = list(FLAGS.seed_variants if FLAGS.seed_variants is not None else s.seed_variants)
  parallel = int(FLAGS.parallel if FLAGS.parallel is not None else s.parallel)
  if parallel < 1:
    raise UsageError(f"--parallel must be >= 1, got {parallel}.")
  workdir = os.path.abspath(FLAGS.workdir)
  runs = plan_runs(workdir, variants, seeds, seed_variants)
  total, ks = int(config.train.total_steps), tuple(int(k) for k in config.eval.num_sources)
  config_args = config_flag_args(sys.argv[1:])
  shared = study_overrides(config, workdir)
  failed = []
  if not FLAGS.report_only:
    slots = device_slots(parallel, *(probe_devices() if parallel > 1 else ("", 1)))
    progress = Progress(runs, total, len(slots))
    if any(finished(r, total, ks) is None for r in runs):   # the data are checked before anything is written
      progress.say(f"study: {len(runs)} runs in {workdir}; preparing the data set.")
      _prepare(config_args, shared)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "study.json"), "w") as f:
    json.dump({"config_args": config_args, "shared_overrides": shared, "total_steps": total, "ks": ks,
               "runs": [dataclasses.asdict(r) for r in runs]}, f, indent=2, default=str)
  if not FLAGS.report_only:
    failed = run_study(runs, config_args, shared, total, ks, slots, progress)
  result = write_results(config, workdir, runs, total, ks)
  if result is not None:
    with open(os.path.join(workdir, "table4.md")) as f:
      print(f.read())
    print(f"Wrote {workdir}/table4.md, table4.json and table4.png.")
  if failed:
    print(f"study: {len(failed)} run(s) failed: {', '.join(failed)} (see their log.txt); rerun to retry.",
          file=sys.stderr)
    return 1
  return 0


def _entry(argv):
  """main; a user error (`errors.UserError`) is one line and exit status 2 (`cli.run`)."""
  try:
    sys.exit(main(argv))
  except KeyboardInterrupt:
    sys.exit(130)


def _parse_flags(argv):
  """absl flag parsing; a mistyped `--config.KEY` is one line and exit status 2 (as `rfgen_jax.main`)."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:   # raised by the locked ConfigDict for an unknown key
    message = str(e).strip("'\"").replace("\\n", " ").replace("\n", " ")
    print(f"{argv[0]}: unknown config key ({message}). Every key is listed in configs/common.py and "
          "configs/ablation.py.", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  define_flags()
  cli.run(_entry, flags_parser=_parse_flags)
