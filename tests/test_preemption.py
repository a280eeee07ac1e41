"""SIGTERM in stage 2: the run saves a checkpoint at the next step, exits with status 75, and the
resumed run ends with the parameters of an uninterrupted one (one process; the two-process case, where
the processes agree on the step through JAX's preemption sync, is in test_multiprocess.py).

Run: `python -m pytest -q -m slow tests/test_preemption.py`."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from rfgen_jax import config_utils, job, models
from rfgen_jax.train import preemption
from rfgen_jax.runtime import checkpointing, state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL = 12


def _config(data_root):
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root = data_root
  config.train.total_steps = TOTAL
  config.train.eval_at_end = False
  config.checkpoint.every_steps = 100       # only the preemption and the final checkpoint
  config.train.sample_every_steps = 100
  return config


def _restore(config, workdir, step):
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  abstract = state_lib.abstract_state(config, gen, disc)
  one_device = jax.sharding.make_single_device_sharding(jax.devices()[0])   # saved on 8 devices: a target is needed
  abstract = checkpointing.abstract_with_sharding(abstract, jax.tree.map(lambda _: one_device, abstract))
  ckpt = checkpointing.Checkpointer(workdir, config, read_only=True)
  try:
    return jax.device_get(ckpt.restore(step, abstract, config))
  finally:
    ckpt.close()


@pytest.mark.slow   # three tiny runs (one in a fresh interpreter twice): ~2 min idle, 17 min on a loaded 2-core VM
def test_sigterm_in_stage2_saves_exits_75_and_resumes_identically(tmp_path):
  data_root = str(tmp_path / "data")
  straight = str(tmp_path / "straight")
  job.train_and_evaluate(_config(data_root), straight)     # also generates the data

  workdir = str(tmp_path / "preempted")
  cmd = [sys.executable, "-m", "rfgen_jax.main", "--config=configs/synthetic.py:tiny",
         f"--workdir={workdir}", f"--config.data.root={data_root}", f"--config.train.total_steps={TOTAL}",
         "--config.train.eval_at_end=False", "--config.checkpoint.every_steps=100",
         "--config.train.sample_every_steps=100"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  log = str(tmp_path / "first.log")
  with open(log, "w") as f:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
  deadline = time.time() + 600
  while time.time() < deadline and "stage 2" not in open(log).read():
    assert proc.poll() is None, open(log).read()[-4000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=600) == preemption.PREEMPTED_EXIT_STATUS, open(log).read()[-4000:]
  assert "Preempted (SIGTERM): saved a checkpoint of step" in open(log).read()
  saved = checkpointing.Checkpointer(workdir, _config(data_root), read_only=True).all_steps()
  assert len(saved) == 1 and 2 < saved[0] < TOTAL, saved     # one checkpoint, in stage 2

  second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-4000:]
  assert f"Resuming from step {saved[0]}" in second.stderr
  a, b = _restore(_config(data_root), straight, TOTAL), _restore(_config(data_root), workdir, TOTAL)
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=0, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
