"""The main job end to end on tiny synthetic data: train, checkpoint, resume, crash, non-finite loss."""
import collections
import functools
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
from PIL import Image
import pytest

from rfgen_jax import config_utils, job, models
from rfgen_jax.train import steps, trainer
from rfgen_jax.runtime import checkpointing, sharding, state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("synthetic_data"))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_root):
  """A tiny run of 4 steps with checkpoints at steps 2 and 4, trained once for the tests below.

  Tests that write into a run work on a copy (`copy_run`)."""
  workdir = str(tmp_path_factory.mktemp("straight") / "run")
  job.train_and_evaluate(tiny(data_root, train__total_steps=4), workdir)
  return workdir


def copy_run(run, tmp_path, name="run"):
  return shutil.copytree(run, str(tmp_path / name))


def tiny(data_root, **overrides):
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root = data_root
  config.train.eval_at_end = False   # checkpoint.async_save stays True: the default path is the tested one
  for key, value in overrides.items():
    section, name = key.split("__")
    config[section][name] = value
  return config


def restore_params(config, workdir, step):
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  abstract = state_lib.abstract_state(config, gen, disc)
  ckpt = checkpointing.Checkpointer(workdir, config)
  try:
    return jax.device_get(ckpt.restore(step, abstract, config))
  finally:
    ckpt.close()


def test_train_resume_is_identical(tmp_path, data_root, straight_run, monkeypatch):
  """2N steps straight == N steps, stop, resume to 2N (parameters, optimizer states, data stream).

  The first run stays in the flow warm-up and the resumed one in stage 2: each prepares only the step it
  trains, and neither traces the model again: their configs differ from the straight run's only in what
  the steps do not read (train.total_steps), so they reuse its traces (`steps.StepSpec`)."""
  straight = straight_run
  resumed = str(tmp_path / "resumed")
  prepared, model_traces = [], []
  init_health = trainer.Trainer._init_health  # pylint: disable=protected-access
  monkeypatch.setattr(trainer.Trainer, "_init_health",
                      lambda self, batch, stages: (prepared.append(list(stages)), init_health(self, batch, stages)))
  # Called only while a program is traced (they run under jit): the steps, and the state's init (whose
  # trace calls `dummy_inputs`).
  for module, name in ((steps, "flow_step"), (steps, "full_step"), (state_lib, "dummy_inputs")):
    monkeypatch.setattr(module, name, functools.partial(
        lambda original, name, *a, **k: (model_traces.append(name), original(*a, **k))[1],
        getattr(module, name), name))
  job.train_and_evaluate(tiny(data_root, train__total_steps=2), resumed)
  job.train_and_evaluate(tiny(data_root, train__total_steps=4), resumed)
  assert prepared == [[1], [2]]
  assert model_traces == []
  for name in ("config.json", "samples"):
    assert os.path.exists(os.path.join(straight, name)), name
  assert glob.glob(os.path.join(straight, "events.out.tfevents*"))
  a = restore_params(tiny(data_root), straight, 4)
  b = restore_params(tiny(data_root), resumed, 4)
  assert int(a.step) == int(b.step) == 4
  # One program per stage (the shared trace and executable checked above) on the same batches and state
  # in this process: equal to the bit on any host (measured: equal), so 1e-6 is no allowance for another
  # CPU's rounding; anything above it is a resume that lost state, RNG or the data position.
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=0, atol=1e-6)


def test_incompatible_checkpoint_is_refused(tmp_path, data_root, straight_run):
  workdir = copy_run(straight_run, tmp_path)
  with pytest.raises(checkpointing.IncompatibleCheckpointError, match="model.width"):
    job.train_and_evaluate(tiny(data_root, train__total_steps=6, model__width=0.25), workdir)


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path, data_root, monkeypatch):
  workdir = str(tmp_path / "nan")
  config = tiny(data_root)      # the straight run's config: its compiled steps come from the cache
  calls = []

  def poisoned_batch(self):     # from step 3 (the first of stage 2) the targets hold NaN
    calls.append(1)
    host = next(self.train_iter)
    if len(calls) >= 3:
      host = dict(host, target_image=np.full_like(host["target_image"], np.nan))
    return self.device_batch(host)

  monkeypatch.setattr(trainer.Trainer, "next_batch", poisoned_batch)
  with pytest.raises(trainer.NonFiniteLossError, match=r"step 3.*loss/gen_total"):
    job.train_and_evaluate(config, workdir)
  steps = checkpointing.Checkpointer(workdir, config).all_steps()
  assert steps == [2]


def test_sigterm_saves_at_the_next_step_and_resumes_identically(tmp_path, data_root, straight_run):
  """SIGTERM during stage 2 (delivered to this process while the batch of step 3 is read): the loop saves
  a checkpoint of step 3, waits for it and raises `Preempted` (which `rfgen_jax.main` turns into exit
  status 75); rerunning resumes from step 3 and ends with the parameters of the uninterrupted run.
  In-process and on the straight run's compiled steps, so it runs by default; the same path in a real
  subprocess (exit status, log line) is `tests/test_preemption.py` (slow), and across two processes, where
  they agree on the step through JAX's preemption sync, `tests/test_multiprocess.py` (stage 1 by default,
  both stages slow)."""
  from rfgen_jax.train import preemption  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "preempted")
  reads = []
  next_batch = trainer.Trainer.next_batch

  def next_batch_then_sigterm(self):
    reads.append(1)
    if len(reads) == 3:                  # the batch of step 3, the first of stage 2
      os.kill(os.getpid(), signal.SIGTERM)
    return next_batch(self)

  previous_handler = signal.getsignal(signal.SIGTERM)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(trainer.Trainer, "next_batch", next_batch_then_sigterm)
    with pytest.raises(preemption.Preempted, match="step 3") as preempted:
      job.train_and_evaluate(tiny(data_root), workdir)
  assert preempted.value.step == 3
  assert signal.getsignal(signal.SIGTERM) == previous_handler      # the run's handler is removed again
  assert checkpointing.Checkpointer(workdir, tiny(data_root), read_only=True).all_steps() == [2, 3]
  job.train_and_evaluate(tiny(data_root), workdir)
  a, b = restore_params(tiny(data_root), straight_run, 4), restore_params(tiny(data_root), workdir, 4)
  assert int(b.step) == 4
  # The straight run's compiled steps again (same process, same shapes): equal to the bit on any host
  # (measured: equal), as in test_train_resume_is_identical.
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=0, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow   # two training subprocesses (~2.5 min); the resume itself is checked by test_train_resume_is_identical
@pytest.mark.parametrize("seed", [0])
def test_sigkill_then_resume(tmp_path, data_root, seed):
  """A process killed with SIGKILL (possibly mid-save) restarts from the last complete checkpoint."""
  workdir = str(tmp_path / "killed")
  total = 40
  cmd = [sys.executable, "-m", "rfgen_jax.main", "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
         f"--config.data.root={data_root}", f"--config.train.total_steps={total}",
         "--config.checkpoint.every_steps=1", "--config.checkpoint.async_save=True",
         "--config.train.eval_at_end=False", "--config.train.sample_every_steps=1000"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  deadline = time.time() + 400
  while time.time() < deadline and proc.poll() is None:
    done = [d for d in glob.glob(os.path.join(ckpt_dir, "*")) if os.path.basename(d).isdigit()]
    if len(done) >= 2:
      break
    time.sleep(0.05)
  assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-3000:]
  time.sleep(random.Random(seed).uniform(0.0, 0.5))
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-5000:]
  assert "Resuming from step" in second.stderr
  config = tiny(data_root)
  assert checkpointing.Checkpointer(workdir, config).latest_step() == total


def test_eval_writes_metrics_for_every_k(tmp_path, data_root, straight_run):
  """An eval of a briefly trained checkpoint writes one metrics entry per K (K=3 > training K=2; K = 2
  is left out only to save its compiles: every K runs the same code)."""
  from rfgen_jax.evaluation import evaluator  # pylint: disable=g-import-not-at-top
  workdir = copy_run(straight_run, tmp_path)
  config = tiny(data_root, train__total_steps=4)
  config.eval.num_sources = (1, 3)
  config.eval.inner_maps = True
  report = evaluator.evaluate(config, workdir)
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(report))
  assert sorted(saved["results"]) == ["1", "3"] and saved["step"] == 4
  for row in saved["results"].values():
    for name in ("l1", "psnr", "ssim", "l1_person", "ssim_person"):
      assert np.isfinite(row[name]), name
  skipped = {s["metric"] for s in saved["skipped"]}
  assert {"fid", "lpips"} <= skipped        # no weight files configured in tests
  table = open(os.path.join(workdir, "eval", "table.md")).read()
  assert "| 3 |" in table and "SSIM" in table and "convert_inception" in table
  assert os.path.exists(os.path.join(workdir, "eval", "samples_K3.png"))
  # eval.inner_maps: + flow, occlusion, attention of every source per level, one cell each
  h, w = config.data.image_size
  for k in (1, 3):
    grid = np.asarray(Image.open(os.path.join(workdir, "eval", f"samples_maps_K{k}.png")))
    assert grid.shape[1] == (k + 3 + 3 * len(config.model.levels) * k) * w and grid.shape[0] % h == 0


def test_the_flows_length_is_logged_at_every_sample_step(straight_run):
  """flow/estimator_px_i and flow/residual_px_i (rfgen_jax/train/flow_scalars.py) go to TensorBoard at
  the sample steps (tiny: 2 and 4), finite and >= 0, for every level."""
  from rfgen_jax.tools import compare_runs   # pylint: disable=g-import-not-at-top
  scalars = compare_runs.read_scalars(straight_run, ("flow/",))
  config = tiny("unused")
  names = {f"flow/{kind}_px_{i}" for kind in ("estimator", "residual") for i in range(len(config.model.levels))}
  assert set(scalars) == names
  for steps in scalars.values():
    assert sorted(steps) == [2, 4] and all(np.isfinite(v) and v >= 0 for v in steps.values())
  assert scalars["flow/estimator_px_0"][4] > 0


def test_a_run_checks_its_config_and_makes_its_mesh_once(tmp_path, data_root, straight_run, monkeypatch):
  """`config_utils.setup_run` checks the config and makes the mesh; the trainer and the evaluation at the
  end reuse them (before, `validate_config` and `make_mesh` ran again in the trainer and the evaluator)."""
  calls = collections.Counter()
  for module, name in ((config_utils, "validate_config"), (sharding, "make_mesh")):
    def counted(*args, _real=getattr(module, name), _name=name, **kwargs):
      calls[_name] += 1
      return _real(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
  workdir = copy_run(straight_run, tmp_path)   # trained to 4 steps: the trainer starts, then evaluates
  config = tiny(data_root, train__total_steps=4, train__eval_at_end=True)
  config.eval.num_sources = (1,)
  job.train_and_evaluate(config, workdir)
  assert os.path.exists(os.path.join(workdir, "eval", "metrics.json"))
  assert calls == {"validate_config": 1, "make_mesh": 1}


def test_eval_without_checkpoint_is_a_clear_error(tmp_path, data_root):
  from rfgen_jax.evaluation import evaluator  # pylint: disable=g-import-not-at-top
  with pytest.raises(evaluator.NoCheckpointError, match="No checkpoint in"):
    evaluator.evaluate(tiny(data_root), str(tmp_path / "empty"))
