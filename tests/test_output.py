"""What the main job prints: the progress line and its ETA, the silenced library messages, a whole run's log.

The end-to-end test runs `python -m rfgen_jax.main` on the tiny synthetic config in a subprocess (data
generated and prepared for TFDS in fresh folders, stderr not a terminal, the eval at the end) and checks
the log a newcomer reads: no config dump, none of the expected library warnings, no progress-bar codes,
one progress line per log step, the final lines naming the outputs, and a short log overall.
"""
import json
import logging as std_logging
import os
import re
import subprocess
import sys

import pytest

from rfgen_jax import logging_setup
from rfgen_jax.train import progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------------- ETA
def test_eta_sums_each_stage_at_its_own_rate():
  # 100 steps of stage 1 at 0.1 s, 300 of stage 2 at 0.3 s: 10 s + 90 s from the start.
  rates = {1: 0.1, 2: 0.3}
  assert progress.eta_seconds(0, 400, 100, rates) == pytest.approx(100.0)
  assert progress.eta_seconds(50, 400, 100, rates) == pytest.approx(95.0)
  assert progress.eta_seconds(100, 400, 100, rates) == pytest.approx(90.0)
  assert progress.eta_seconds(250, 400, 100, rates) == pytest.approx(45.0)
  assert progress.eta_seconds(400, 400, 100, rates) == 0.0


def test_eta_estimates_the_stage_not_yet_run_from_the_timed_difference():
  # Only stage 1 measured (0.1 s per step in the loop); the timed steps differ by 0.2 s: stage 2 is
  # estimated at 0.3 s per step, not at stage 1's 0.1 s (what a single rate would assume).
  assert progress.eta_seconds(50, 400, 100, {1: 0.1}, stage2_minus_stage1=0.2) == pytest.approx(95.0)
  assert progress.eta_seconds(50, 400, 100, {1: 0.1}) == pytest.approx(35.0)   # no timing: equal cost
  # Once stage 2 has been measured, its measured rate is used, not the estimate.
  assert progress.eta_seconds(150, 400, 100, {1: 0.1, 2: 0.5}, stage2_minus_stage1=0.2) == pytest.approx(125.0)
  # A run resumed in stage 2 has no stage 1 left to estimate.
  assert progress.eta_seconds(150, 400, 100, {2: 0.5}, stage2_minus_stage1=0.2) == pytest.approx(125.0)
  assert progress.eta_seconds(0, 400, 100, {}) is None


def test_progress_measures_each_stage_on_its_own():
  now = [0.0]
  p = progress.Progress(total=40, warmup=10, clock=lambda: now[0])
  p.stage2_minus_stage1 = 0.2
  for step in range(10):                    # stage 1: 0.1 s per step
    p.step_started(step)
    now[0] += 0.1
  line, rate = p.line(10, {"loss/flow_total": 0.5, "grad_norm/flow_estimator": 1.0})
  assert rate == pytest.approx(10.0)
  assert p.eta(10) == pytest.approx(30 * 0.3)   # stage 2 estimated: 0.1 + 0.2 s per step
  assert line == "step 10/40 stage 1 | 10.00 steps/s | ETA 9s | flow_total 0.5"
  for step in range(10, 20):                # stage 2 runs at 0.5 s per step: measured, it replaces 0.3
    p.step_started(step)
    now[0] += 0.5
  line, rate = p.line(20, {"loss/gen_total": 3.0, "loss/l1": 0.25, "loss/disc": 1.25, "loss/style": 9.0})
  assert rate == pytest.approx(2.0)
  assert p.eta(20) == pytest.approx(20 * 0.5)
  assert line == "step 20/40 stage 2 | 2.00 steps/s | ETA 10s | gen_total 3 l1 0.25 disc 1.25"
  for step in range(20, 40):
    p.step_started(step)
    now[0] += 0.5
  assert p.line(40, {})[0] == "step 40/40 stage 2 | 2.00 steps/s | done"


def test_duration_format():
  assert [progress.format_duration(s) for s in (0, 59.4, 60, 785, 3600 + 240)] == [
      "0s", "59s", "1m 00s", "13m 05s", "1h 04m"]


def test_the_ablation_study_reads_the_progress_line():
  from rfgen_jax.experiments import study_progress  # pylint: disable=g-import-not-at-top
  p = progress.Progress(total=2400, warmup=200, clock=lambda: 0.0)
  p.step_started(0)
  line, _ = p.line(50, {"loss/flow_total": 0.4})
  match = study_progress._STEP.search(f"19:02:03 {line}")  # pylint: disable=protected-access
  assert match and int(match.group(1)) == 50


# ---------------------------------------------------------------------------------- library messages
def _record(pathname, message, level=std_logging.WARNING):
  return std_logging.LogRecord("absl", level, pathname, 1, message, (), None)


@pytest.mark.parametrize("pathname, message", [
    ("/x/site-packages/tensorflow_datasets/core/dataset_builder.py",
     "Using custom data configuration: BuilderConfig(name='src_7a1536d1a2d3')"),
    ("/x/site-packages/orbax/checkpoint/checkpoint_manager.py", "Given directory is read only=/w/checkpoints"),
    ("/x/site-packages/jax/_src/xla_bridge.py",
     "Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so"),
    ("/x/site-packages/orbax/checkpoint/checkpoint_manager.py", "Found 2 checkpoint steps"),   # an INFO
])
def test_expected_library_messages_are_dropped(pathname, message):
  level = std_logging.INFO if message.startswith("Found") or "tpu" in message else std_logging.WARNING
  assert not logging_setup.QuietLibraries().filter(_record(pathname, message, level))


@pytest.mark.parametrize("pathname, message", [
    ("/x/site-packages/orbax/checkpoint/checkpoint_manager.py", "Waiting for previous save to complete took 9 s"),
    ("/x/site-packages/tensorflow_datasets/core/dataset_builder.py", "Something else went wrong"),
    ("/x/site-packages/jax/_src/xla_bridge.py", "Unable to initialize backend 'cuda': no GPU"),
    ("/work/rfgen_jax/train/trainer.py", "Using custom data configuration"),   # only the library's own
])
def test_other_messages_are_kept(pathname, message):
  assert logging_setup.QuietLibraries().filter(_record(pathname, message))


def test_read_only_checkpoint_access_gives_orbax_nothing_to_warn_about(tmp_path, caplog):
  """The eval's and inference's read-only manager (every item's handler registered, options Orbax
  would otherwise correct): no "could not be restored", no "read_only=True, setting ..." warning."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from rfgen_jax import config_utils  # pylint: disable=g-import-not-at-top
  from rfgen_jax.runtime import checkpointing  # pylint: disable=g-import-not-at-top
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  writer = checkpointing.Checkpointer(str(tmp_path), config)
  writer.save(3, {"gen_params": {"w": jnp.ones(3)}, "ema_params": {"w": jnp.zeros(3)}}, None, config)
  writer.close()
  caplog.set_level(std_logging.WARNING)
  reader = checkpointing.Checkpointer(str(tmp_path), config, read_only=True)
  assert reader.all_steps() == [3]
  assert reader.saved_config(3)["model"]["width"] == config.model.width
  reader.close()
  manager = checkpointing.read_only_manager(reader.directory, state_handler=ocp.PyTreeCheckpointHandler())
  assert "ema_params" in manager.item_metadata(3)["state"]
  item = {"ema_params": {"w": jnp.zeros(3)}}
  sharding = jax.sharding.make_single_device_sharding(jax.local_devices()[0])
  restored = manager.restore(3, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item=item, restore_args=jax.tree.map(lambda _: ocp.ArrayRestoreArgs(sharding=sharding), item),
      partial_restore=True)))
  manager.close()
  assert float(restored["state"]["ema_params"]["w"].sum()) == 0.0
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= std_logging.WARNING]
  assert any(w.startswith("Given directory is read only") for w in warnings)   # (dropped by logging_setup)
  assert [w for w in warnings if not w.startswith("Given directory is read only")] == []


# ------------------------------------------------------------------------------------- a whole run
def test_a_tiny_runs_log_fits_a_screen(tmp_path):
  """A first run (data generated and prepared) as a user sees it, its log written to a pipe."""
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "rfgen_jax.main", "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
         f"--config.data.root={tmp_path / 'data'}", f"--config.data.tfds_data_dir={tmp_path / 'tfds'}",
         "--config.eval.num_sources=(1,)"]
  run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  log = run.stdout + run.stderr
  assert run.returncode == 0, log[-3000:]
  lines = log.splitlines()
  assert len(lines) < 50, log
  for unwanted in ("Traceback", "Using custom data configuration", "could not be restored", "read only",
                   "read_only=True", "libtpu", "\x1b[", "[A", "steps_per_sec=", "Config:\n"):
    assert unwanted not in log, (unwanted, log)
  assert not any(line.startswith(("checkpoint:", "data:", "model:")) for line in lines), log   # no dump
  assert f"Config (every key, overrides applied): {workdir}/config.json" in log
  assert json.loads((workdir / "config.json").read_text())["train"]["total_steps"] == 4
  progress_lines = [line for line in lines if re.search(r" step \d+/4 stage \d \| [\d.]+ steps/s \| ", line)]
  assert len(progress_lines) == 4, log           # log_every_steps = 1: one line per step, nothing else
  assert "ETA " in progress_lines[0] and progress_lines[-1].split(" | ")[2] == "done"
  assert "One step timed: stage 1" in log
  tail = "\n".join(lines[-7:])
  for where in (f"Outputs in {workdir}", "eval/table.md", "samples/", "checkpoints/ (steps 2, 4)",
                f"tensorboard --logdir {workdir}", f"data.root={tmp_path / 'data'}",
                f"TFDS copy in {tmp_path / 'tfds' / 'synthetic_people'}"):
    assert where in tail, (where, tail)
  # --mode=eval on the same run ends with the same lines: where the outputs and the data are.
  run = subprocess.run(cmd + ["--mode=eval"], cwd=ROOT, capture_output=True, text=True, timeout=900)
  log = run.stdout + run.stderr
  assert run.returncode == 0, log[-3000:]
  assert "Eval table:" in log and "Traceback" not in log
  tail = "\n".join(log.splitlines()[-7:])
  for where in (f"Outputs in {workdir}", "eval/table.md", "checkpoints/ (steps 2, 4)", f"data.root={tmp_path / 'data'}"):
    assert where in tail, (where, tail)
