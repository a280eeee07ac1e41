"""Two real processes on 127.0.0.1 (`jax.distributed`, 4 CPU devices each) against one process with 8.

The two-process run trains both stages, is preempted in stage 2 (SIGTERM to one process only: both agree
on a step through JAX's preemption sync, save there and exit with status 75), resumes, evaluates and writes
samples. Its final parameters equal those of an uninterrupted one-process, 8-device run to 1e-6, and so
do its evaluation metrics.

Run: `python -m pytest -q -m slow tests/test_multiprocess.py` (marked slow: ~4 compilations per process).
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from rfgen_jax import config_utils, data, models
from rfgen_jax.train import checkpointing, preemption, state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL = 12         # steps: 2 of flow warm-up (stage 1), then stage 2
TIMEOUT = 1500     # seconds for one run of the job


def _flags(workdir, data_root):
  return ["--config=configs/synthetic.py:tiny", f"--workdir={workdir}", f"--config.data.root={data_root}",
          "--config.train.batch_size=8", f"--config.train.total_steps={TOTAL}",
          "--config.checkpoint.every_steps=4", "--config.train.sample_every_steps=6",
          "--config.eval.batch_size=8", "--config.eval.max_tuples=8", "--config.eval.num_sources=(2,)"]


def _config(data_root):
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root = data_root
  config.train.batch_size = 8
  config.eval.batch_size = 8
  return config


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(workdir, data_root, num_processes, devices_each, log_dir):
  """Starts the job as `num_processes` processes; returns [(Popen, stderr path)]."""
  port = _free_port()
  procs = []
  for i in range(num_processes):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_each}")
    if num_processes > 1:
      env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(num_processes),
                 JAX_PROCESS_ID=str(i))
    log = os.path.join(log_dir, f"process{i}_{time.time_ns()}.log")
    with open(log, "w") as f:
      proc = subprocess.Popen([sys.executable, "-m", "rfgen_jax.main"] + _flags(workdir, data_root),
                              cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    procs.append((proc, log))
  return procs


def _wait(procs, timeout=TIMEOUT):
  deadline = time.time() + timeout
  codes = []
  for proc, log in procs:
    try:
      codes.append(proc.wait(timeout=max(1, deadline - time.time())))
    except subprocess.TimeoutExpired:
      for p, _ in procs:
        p.kill()
      pytest.fail(f"timed out; {log}:\n" + open(log).read()[-4000:])
  return codes


def _tails(procs):
  return "\n".join(f"--- {log}\n" + open(log).read()[-3000:] for _, log in procs)


def _restore(config, workdir, step):
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  abstract = jax.eval_shape(lambda r: state_lib.init_state(config, r, gen, disc), jax.random.PRNGKey(0))
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])   # saved on 8 devices: a target is needed
  abstract = checkpointing.abstract_with_sharding(abstract, jax.tree.map(lambda _: one_device, abstract))
  ckpt = checkpointing.Checkpointer(workdir, config, read_only=True)
  try:
    return jax.device_get(ckpt.restore(step, abstract, config))
  finally:
    ckpt.close()


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
  data_root = str(tmp_path / "data")
  config = _config(data_root)
  data.ensure_dataset(config)          # generated once here, before the processes start

  # One process, 8 devices, uninterrupted.
  single = str(tmp_path / "single")
  procs = _start(single, data_root, 1, 8, str(tmp_path))
  assert _wait(procs) == [0], _tails(procs)

  # Two processes, 4 devices each: SIGTERM to process 1 once stage 2 runs.
  multi = str(tmp_path / "multi")
  procs = _start(multi, data_root, 2, 4, str(tmp_path))
  deadline = time.time() + TIMEOUT
  while time.time() < deadline and "stage 2" not in open(procs[0][1]).read():
    assert all(p.poll() is None for p, _ in procs), _tails(procs)
    time.sleep(0.1)
  os.kill(procs[1][0].pid, signal.SIGTERM)
  codes = _wait(procs)
  assert codes == [preemption.PREEMPTED_EXIT_STATUS] * 2, _tails(procs)
  saved = checkpointing.Checkpointer(multi, config, read_only=True).latest_step()
  assert 2 < saved < TOTAL, saved       # a stage-2 step both processes agreed on
  assert not os.path.exists(os.path.join(multi, "eval"))

  procs = _start(multi, data_root, 2, 4, str(tmp_path))          # resume, finish, evaluate
  assert _wait(procs) == [0, 0], _tails(procs)
  assert "Resuming from step" in open(procs[0][1]).read()

  a, b = _restore(config, single, TOTAL), _restore(config, multi, TOTAL)
  assert int(a.step) == int(b.step) == TOTAL
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=0, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
  for workdir in (single, multi):
    assert glob.glob(os.path.join(workdir, "samples", "step_*.png")), workdir
  one, two = (json.load(open(os.path.join(w, "eval", "metrics.json"))) for w in (single, multi))
  assert one["step"] == two["step"] == TOTAL
  for name, value in one["results"]["2"].items():
    if isinstance(value, float):
      np.testing.assert_allclose(two["results"]["2"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
