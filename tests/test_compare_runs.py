"""`rfgen_jax.tools.compare_runs`: two runs compared step by step from their TensorBoard scalars and metrics."""
import json
import math
import os

from clu import metric_writers
import pytest

from rfgen_jax.tools import compare_runs

LOGGED = {1: {"loss/l1": 0.5, "grad_norm/generator": 2.0, "lr/generator": 1e-3},
          2: {"loss/l1": 0.4, "grad_norm/generator": 1.5, "lr/generator": 1e-3},
          3: {"loss/l1": 0.3, "grad_norm/generator": 1.25, "lr/generator": 1e-3}}


def write_run(workdir, logged=LOGGED, metrics=None):
  """A workdir as the trainer leaves it: clu's summary writer's event file (+ eval/metrics.json)."""
  os.makedirs(workdir, exist_ok=True)
  writer = metric_writers.SummaryWriter(str(workdir))
  for step, scalars in logged.items():
    writer.write_scalars(step, scalars)
  writer.close()
  if metrics is not None:
    os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
    with open(os.path.join(workdir, "eval", "metrics.json"), "w") as f:
      json.dump({"step": max(logged), "results": metrics}, f)
  return str(workdir)


def changed(step, tag, value):
  return {s: dict(v, **({tag: value} if s == step else {})) for s, v in LOGGED.items()}


def test_reads_the_logged_losses_and_gradient_norms(tmp_path):
  scalars = compare_runs.read_scalars(write_run(tmp_path / "a"))
  assert set(scalars) == {"loss/l1", "grad_norm/generator"}          # lr/ is not compared by default
  assert scalars["loss/l1"] == pytest.approx({1: 0.5, 2: 0.4, 3: 0.3}, rel=1e-7)
  assert set(compare_runs.read_scalars(str(tmp_path / "a"), ("lr/",))) == {"lr/generator"}


def test_equal_runs_and_the_first_step_that_differs(tmp_path):
  a = write_run(tmp_path / "a", metrics={"2": {"ssim": 0.31, "psnr": 14.0}})
  same = write_run(tmp_path / "same", metrics={"2": {"ssim": 0.31, "psnr": 14.0}})
  report = compare_runs.compare(a, same)
  assert report["equal"] and report["first_difference"] is None
  assert [row["step"] for row in report["steps"]] == [1, 2, 3]
  assert all(row["max_relative_difference"] == 0 for row in report["steps"])
  assert [(r["metric"], r["relative_difference"]) for r in report["metrics"]] == [("psnr", 0), ("ssim", 0)]

  b = write_run(tmp_path / "b", changed(2, "grad_norm/generator", 1.5 * (1 + 1e-3)),
                metrics={"2": {"ssim": 0.31, "psnr": 14.0}})
  report = compare_runs.compare(a, b)
  assert not report["equal"]
  first = report["first_difference"]
  assert (first["step"], first["tag"]) == (2, "grad_norm/generator")
  assert first["max_relative_difference"] == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-4)
  assert compare_runs.compare(a, b, rtol=2e-3)["equal"]                # within the tolerance

  c = write_run(tmp_path / "c", metrics={"2": {"ssim": 0.32, "psnr": 14.0}})
  report = compare_runs.compare(a, c)
  assert report["first_difference"] is None and not report["equal"]   # equal losses, another metric
  assert {r["metric"]: r["relative_difference"] for r in report["metrics"]} == pytest.approx(
      {"ssim": 0.01 / 0.32, "psnr": 0.0})


def test_a_step_logged_by_one_run_only_is_a_difference(tmp_path):
  a = write_run(tmp_path / "a")
  shorter = write_run(tmp_path / "short", {s: v for s, v in LOGGED.items() if s < 3})
  report = compare_runs.compare(a, shorter)
  assert not report["equal"] and report["first_difference"] is None
  assert report["only_in_a"] == ["grad_norm/generator@3", "loss/l1@3"] and report["only_in_b"] == []


def test_relative_difference():
  assert compare_runs.relative_difference(2.0, 2.0) == 0
  assert compare_runs.relative_difference(1.0, 1.5) == pytest.approx(1 / 3)
  assert compare_runs.relative_difference(math.nan, math.nan) == 0
  assert compare_runs.relative_difference(math.nan, 1.0) == math.inf
  assert compare_runs.relative_difference(0.0, 1e-30) == pytest.approx(1e-18)   # |a - b| / 1e-12 near 0


def test_cli_exit_status_and_report(tmp_path, capsys):
  a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b", changed(3, "loss/l1", 0.31))
  out = str(tmp_path / "report.json")
  assert compare_runs.main([a, a]) == 0
  assert "Equal within rtol=0 at all 3 logged steps." in capsys.readouterr().out
  assert compare_runs.main([a, b, "--output", out]) == 1
  printed = capsys.readouterr().out
  assert "First difference over rtol=0: step 3 (loss/l1," in printed and "| 2 | 0 |" in printed
  assert json.load(open(out))["first_difference"]["step"] == 3


@pytest.mark.parametrize("case", ["missing", "no_events", "no_scalars", "bad_rtol"])
def test_bad_input_exits_2_naming_it(tmp_path, capsys, case):
  a = write_run(tmp_path / "a")
  empty = tmp_path / "empty"
  empty.mkdir()
  argv, named = {"missing": ([a, str(tmp_path / "nope")], "nope: no such workdir"),
                 "no_events": ([str(empty), a], "empty: no TensorBoard event files"),
                 "no_scalars": ([a, a, "--prefixes=disc/"], "no logged scalar whose tag starts with disc/"),
                 "bad_rtol": ([a, a, "--rtol=-1"], "--rtol=-1.0: must be >= 0")}[case]
  assert compare_runs.main(argv) == 2
  assert named in capsys.readouterr().err
