"""The benchmarks run: each part of `benchmarks/torch_twin.py` (ours and the torch twin) on a small
config, called once; `benchmarks/train_loop.py` and `benchmarks/train_step.py` for stage 1 on the tiny
config."""
import os
import subprocess
import sys

import pytest

from benchmarks import torch_twin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow    # three compilations at 64x64 (~80 s cold); run with `-m slow`
def test_torch_twin_parts_run():
  config = torch_twin._config(os.path.join(ROOT, "configs/synthetic.py:tiny"), "auto")  # pylint: disable=protected-access
  config.data.image_size = (64, 64)     # torch's InstanceNorm needs > 1 position at the deepest level (H/32)
  config.train.batch_size = 2
  parts = torch_twin.make_parts(config, ["flow", "generator", "step"])
  assert sorted(parts) == ["flow", "generator", "step"]
  for ours, theirs in parts.values():
    ours()
    theirs()


@pytest.mark.slow    # builds a trainer and compiles the stage-1 step in a subprocess (~1 min cold)
def test_train_loop_benchmark_stage1_prints_the_ratio(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.train_loop", "--config=configs/synthetic.py:tiny",
       f"--data_root={tmp_path / 'data'}", "--steps=2", "--repeats=1", "--stage=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "stage 1" in result.stdout and "| ratio loop / step |" in result.stdout, result.stdout


@pytest.mark.slow    # compiles the stage-1 step of the tiny config in a subprocess (~1 min cold)
def test_train_step_benchmark_names_the_config():
  """The table's config column is the config's name (the spec as given), not a dump of the config."""
  spec = "configs/synthetic.py:tiny"
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.train_step", f"--configs={spec}", "--steps=1", "--stages=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
  assert len(rows) == 2, result.stdout     # the header and one row: stage 1, float32, auto
  assert rows[1].split(" | ")[0] == f"| {spec}", rows[1]
