r"""Compares two runs step by step: their logged losses and gradient norms, and their eval metrics.

  python -m rfgen_jax.tools.compare_runs workdirs/demo workdirs/demo_again
  python -m rfgen_jax.tools.compare_runs RUN_A RUN_B --rtol=1e-6 --output diff.json

Reads every TensorBoard event file (`events.out.tfevents.*`) of each run's workdir, keeps the scalars whose
tag starts with one of `--prefixes` (default `loss/,grad_norm/`: what the trainer logs every
`train.log_every_steps`), and pairs them by (tag, step). For each logged step it prints the largest
relative difference |a - b| / max(|a|, tiny) over the tags and the tag where it is; then the first step
where a value differs by more than `--rtol`. If both runs hold `eval/metrics.json`, each metric of each K
is compared too. Use it to check that a run reproduces another (same code on another machine, a refactor
that must not change results, a resumed run against an uninterrupted one), or to see where two runs part.

Exit status 0 when every shared value agrees within `--rtol` (and both runs logged the same (tag, step)
pairs), 1 when they differ, 2 with one line naming the folder for bad input (a missing workdir, a workdir
without event files, no scalar with the given prefixes).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from typing import Optional, Sequence

from rfgen_jax import cli
from rfgen_jax import errors

DEFAULT_PREFIXES = ("loss/", "grad_norm/")
_TINY = 1e-12


class RunError(errors.BadInputError):
  """Bad input: a missing workdir or one without the scalars asked for (the message names it); a user
  error (`rfgen_jax/errors.py`)."""


def read_scalars(workdir: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> dict[str, dict[int, float]]:
  """{tag: {step: value}} of the scalars in every event file of `workdir` whose tag starts with one of
  `prefixes` (files in name order, so a later write of a (tag, step) wins, as TensorBoard shows it).

  Raises:
    RunError: `workdir` holds no event file.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (clu's writers need it already)
  paths = sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*")))
  if not paths:
    raise RunError(f"{workdir}: no TensorBoard event files (events.out.tfevents.*); is it a run's workdir?")
  out: dict[str, dict[int, float]] = {}
  for path in paths:
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag.startswith(tuple(prefixes)):
          scalar = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
          out.setdefault(value.tag, {})[int(event.step)] = scalar
  return out


def relative_difference(a: float, b: float) -> float:
  """|a - b| / max(|a|, |b|, 1e-12); 0 for two equal values (NaN == NaN included), inf for NaN vs a number."""
  if a == b or (math.isnan(a) and math.isnan(b)):
    return 0.0
  if math.isnan(a) or math.isnan(b):
    return math.inf
  return abs(a - b) / max(abs(a), abs(b), _TINY)


def compare_scalars(a: dict, b: dict, rtol: float) -> dict:
  """Step-by-step comparison of two `read_scalars` results.

  Returns:
    {"steps": [{"step", "max_relative_difference", "tag"}, ...] (the steps both runs logged, in order),
     "first_difference": that entry of the first step over `rtol`, or None,
     "only_in_a" / "only_in_b": ["tag@step", ...] logged by one run only}.
  """
  keys_a = {(tag, step) for tag, steps in a.items() for step in steps}
  keys_b = {(tag, step) for tag, steps in b.items() for step in steps}
  by_step: dict[int, tuple[float, str]] = {}
  for tag, step in sorted(keys_a & keys_b):
    diff = relative_difference(a[tag][step], b[tag][step])
    if step not in by_step or diff > by_step[step][0]:
      by_step[step] = (diff, tag)
  steps = [{"step": s, "max_relative_difference": d, "tag": t} for s, (d, t) in sorted(by_step.items())]
  first = next((row for row in steps if row["max_relative_difference"] > rtol), None)
  name = lambda keys: [f"{tag}@{step}" for tag, step in sorted(keys, key=lambda k: (k[1], k[0]))]
  return {"steps": steps, "first_difference": first, "only_in_a": name(keys_a - keys_b),
          "only_in_b": name(keys_b - keys_a)}


def compare_metrics(workdir_a: str, workdir_b: str) -> Optional[list[dict]]:
  """[{"k", "metric", "a", "b", "relative_difference"}] of the float metrics in both runs'
  `eval/metrics.json` (the K values both scored), or None if either run has none."""
  paths = [os.path.join(w, "eval", "metrics.json") for w in (workdir_a, workdir_b)]
  if not all(os.path.exists(p) for p in paths):
    return None
  results = []
  for path in paths:
    try:
      with open(path, encoding="utf-8") as f:
        results.append(json.load(f)["results"])
    except (OSError, ValueError, KeyError) as e:
      raise RunError(f"{path}: not an eval metrics file ({e}); rerun `--mode=eval` for that workdir") from e
  rows = []
  for k in sorted(set(results[0]) & set(results[1]), key=str):
    for metric, value in sorted(results[0][k].items()):
      other = results[1][k].get(metric)
      if isinstance(value, float) and isinstance(other, float):
        rows.append({"k": k, "metric": metric, "a": value, "b": other,
                     "relative_difference": relative_difference(value, other)})
  return rows


def compare(workdir_a: str, workdir_b: str, rtol: float = 0.0,
            prefixes: Sequence[str] = DEFAULT_PREFIXES) -> dict:
  """The report of `main` as a dict (scalars and, where both runs have them, eval metrics).

  Raises:
    RunError: a workdir is missing, has no event files, or logged no scalar with `prefixes`.
  """
  scalars = []
  for workdir in (workdir_a, workdir_b):
    if not os.path.isdir(workdir):
      raise RunError(f"{workdir}: no such workdir")
    found = read_scalars(workdir, prefixes)
    if not found:
      raise RunError(f"{workdir}: no logged scalar whose tag starts with {', '.join(prefixes)} "
                     "(--prefixes)")
    scalars.append(found)
  report = compare_scalars(*scalars, rtol=rtol)
  report["metrics"] = compare_metrics(workdir_a, workdir_b)
  worst_metric = max((row["relative_difference"] for row in report["metrics"] or []), default=0.0)
  report["equal"] = (report["first_difference"] is None and not report["only_in_a"]
                     and not report["only_in_b"] and worst_metric <= rtol)
  report["rtol"] = rtol
  return report


def format_report(report: dict, workdir_a: str, workdir_b: str) -> str:
  """A Markdown table of the per-step differences, the metrics' table and a one-line verdict."""
  lines = [f"A: {workdir_a}", f"B: {workdir_b}", "", "| step | max relative difference | tag |",
           "| --- | --- | --- |"]
  lines += [f"| {r['step']} | {r['max_relative_difference']:.3g} | {r['tag']} |" for r in report["steps"]]
  if report["metrics"] is not None:
    lines += ["", "| K | metric | A | B | relative difference |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['k']} | {r['metric']} | {r['a']:.6g} | {r['b']:.6g} | {r['relative_difference']:.3g} |"
              for r in report["metrics"]]
  for side in ("a", "b"):
    if report[f"only_in_{side}"]:
      only = report[f"only_in_{side}"]
      lines.append(f"\nLogged by {side.upper()} only ({len(only)}): {', '.join(only[:10])}"
                   + (" ..." if len(only) > 10 else ""))
  first = report["first_difference"]
  lines.append("")
  if report["equal"]:
    lines.append(f"Equal within rtol={report['rtol']:g} at all {len(report['steps'])} logged steps"
                 + (" and in every eval metric." if report["metrics"] else "."))
  elif first is not None:
    lines.append(f"First difference over rtol={report['rtol']:g}: step {first['step']} ({first['tag']}, "
                 f"{first['max_relative_difference']:.3g}).")
  else:
    lines.append(f"The runs differ (rtol={report['rtol']:g}): see the tables above.")
  return "\n".join(lines)


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.compare_runs",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("run_a", help="a run's workdir (its events.out.tfevents.* files)")
  parser.add_argument("run_b", help="the other run's workdir")
  parser.add_argument("--rtol", type=float, default=0.0,
                      help="largest relative difference still counted as equal (default 0: to the bit)")
  parser.add_argument("--prefixes", default=",".join(DEFAULT_PREFIXES),
                      help="comma-separated tag prefixes of the scalars compared (default %(default)s)")
  parser.add_argument("--output", help="also write the report as JSON to this file")
  args = parser.parse_args(argv)
  if args.rtol < 0 or math.isnan(args.rtol):
    raise errors.BadInputError(f"--rtol={args.rtol}: must be >= 0.")
  prefixes = tuple(p for p in args.prefixes.split(",") if p)
  if not prefixes:
    raise errors.BadInputError("--prefixes is empty: name at least one tag prefix (e.g. loss/).")
  report = compare(args.run_a, args.run_b, args.rtol, prefixes)
  print(format_report(report, args.run_a, args.run_b))
  if args.output:
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=2)
  return 0 if report["equal"] else 1


if __name__ == "__main__":
  sys.exit(main())
