"""The ablation study's plan (`rfgen_jax/experiments/ablation.py`): its variants, its runs (a variant at a
seed, each with its own workdir), whether a run is finished, and the command line that trains and
evaluates one run (`python -m rfgen_jax.main ...`).

A run's `overrides` are config keys (`"model.attention"`) with their values; `run_command` writes them
as `--config.KEY=VALUE` flags after the study's own `--config=FILE[:arg]` and `--config.KEY=VALUE`
items. Steps are train steps (`train.total_steps`); K is the number of sources (`eval.num_sources`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from rfgen_jax import errors

VARIANTS = {   # name -> (Table 4's label, overrides)
    "baseline": ("Baseline", {"model.residual_flow": False, "model.occlusion": False,
                              "model.attention": False}),
    "wo_res": ("w/o res", {"model.residual_flow": False}),
    "wo_occ": ("w/o occ", {"model.occlusion": False}),
    "wo_attn": ("w/o attn", {"model.attention": False}),
    "full": ("Full", {}),
}
ORDER = tuple(VARIANTS)   # Table 4's row order, Full last


class UsageError(errors.UserError):
  """A bad flag or config value: reported in one line, exit status 2 (`cli.run`)."""


@dataclasses.dataclass
class Run:
  variant: str
  seed: int
  workdir: str
  overrides: Dict[str, object]

  @property
  def name(self) -> str:
    return f"{self.variant}_s{self.seed}"


def plan_runs(workdir: str, variants: Sequence[str], seeds: Sequence[int],
              seed_variants: Sequence[str]) -> List[Run]:
  """The runs in order: every variant at seeds[0], then the --seed_variants at the other seeds."""
  unknown = [v for v in list(variants) + list(seed_variants) if v not in VARIANTS]
  if unknown:
    raise UsageError(f"unknown variant(s) {unknown} in --variants/--seed_variants; accepted: {list(VARIANTS)}.")
  if not variants:
    raise UsageError("--variants is empty; give at least one of " + ", ".join(VARIANTS) + ".")
  if not seeds:
    raise UsageError("--seeds is empty; give at least one integer seed, e.g. --seeds=0.")
  if len(set(seeds)) != len(seeds):
    raise UsageError(f"--seeds has repeats: {list(seeds)}.")
  ordered = [v for v in ORDER if v in variants]
  runs = []
  for i, seed in enumerate(seeds):
    for v in ordered if i == 0 else [v for v in ORDER if v in seed_variants and v in variants]:
      overrides = dict(VARIANTS[v][1])
      overrides.update({"train.seed": int(seed), "data.shuffle_seed": int(seed)})
      runs.append(Run(v, int(seed), os.path.join(workdir, "runs", f"{v}_s{seed}"), overrides))
  return runs


def finished(run: Run, total_steps: int, ks: Sequence[int]) -> Optional[dict]:
  """The run's metrics.json if it is complete (at `total_steps`, every K), else None."""
  try:
    with open(os.path.join(run.workdir, "eval", "metrics.json")) as f:
      m = json.load(f)
    if int(m["step"]) == int(total_steps) and all(str(k) in m["results"] for k in ks):
      return m
  except (OSError, ValueError, KeyError, TypeError):
    pass
  return None


def latest_checkpoint(run: Run) -> int:
  """The latest saved step of the run (0 when none)."""
  try:
    return max([int(n) for n in os.listdir(os.path.join(run.workdir, "checkpoints")) if n.isdigit()] or [0])
  except OSError:
    return 0


def config_flag_args(argv: Sequence[str]) -> List[str]:
  """The `--config=FILE[:arg]` and `--config.KEY=VALUE` items of the command line, in their order."""
  out, i = [], 0
  while i < len(argv):
    a = argv[i]
    if a == "--config" or (a.startswith("--config.") and "=" not in a):
      out += [a + "=" + argv[i + 1]] if i + 1 < len(argv) else [a]
      i += 2
      continue
    if a.startswith("--config=") or a.startswith("--config."):
      out.append(a)
    i += 1
  return out


def flag_value(v) -> str:
  return str(v) if not isinstance(v, (tuple, list)) else "(" + ",".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"


def study_overrides(config, workdir: str) -> Dict[str, object]:
  """Overrides that every run of the study shares: data under the study's folder, eval at the end."""
  out = {"train.eval_at_end": True}
  if config.study.data_in_workdir:
    out["data.root"] = os.path.join(os.path.abspath(workdir), "data")
    out["data.tfds_data_dir"] = os.path.join(os.path.abspath(workdir), "tfds")
  return out


def run_command(config_args: Sequence[str], overrides: Dict[str, object], workdir: str) -> List[str]:
  return ([sys.executable, "-m", "rfgen_jax.main", *config_args] +
          [f"--config.{k}={flag_value(v)}" for k, v in overrides.items()] + [f"--workdir={workdir}"])
