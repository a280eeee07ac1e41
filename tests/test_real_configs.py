"""The real data sets' own configs (Market-1501, DeepFashion) with their default grain worker processes.

Grain's workers receive the training dataset by (cloud)pickle. A source that drags a TFDS builder made at
run time along cannot be pickled, which made `configs/market.py` crash at its first batch (issue 33);
`people_tfds._Source` pickles as its prepared directory and split and reopens there. These tests run in
subprocesses so that absl flags are parsed as in a user's run (grain needs them to start workers; without
them the pipeline falls back to the main process, `tests/test_data_pipeline.py`).
"""
import json
import os
import subprocess
import sys

import pytest

from rfgen_jax import config_utils
from tests.data_fixtures import write_deepfashion_fixture
from tests.data_fixtures import write_market_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = {"market": write_market_fixture, "deepfashion": write_deepfashion_fixture}

# The smallest run of a real config: 32x16 images, width 0.125, one flow warm-up step and one end-to-end
# step, two evaluation tuples; everything else (workers included) as the config has it.
SMALL = {"data.image_size": "(32,16)", "model.width": 0.125, "model.disc_downsampling": 2,
         "train.batch_size": 2, "train.total_steps": 2, "train.flow_warmup_steps": 1,
         "train.log_every_steps": 1, "train.sample_every_steps": 2, "checkpoint.every_steps": 2,
         "eval.max_tuples": 2, "eval.batch_size": 2, "eval.num_sources": "(1,)",
         "eval.evaluators": "('ssim_psnr_l1',)", "losses.allow_random_vgg": True}
# DeepFashion's affine windows (3x3 at H/8, 5x5 at H/4) need more than 4x2 and 8x4 pixels: Market's here.
SMALL_FOR = {"market": {}, "deepfashion": {"losses.affine_kernel_sizes": "(0,3,0)"}}

# Run under absl.app.run: the iterator with the config's own workers against the same stream read in the
# main process (num_workers = 0). The workers run the same numpy code on the same records, so the batches
# are equal to the bit on any host.
COMPARE_BATCHES = """
import multiprocessing, sys
import numpy as np
from absl import app
sys.path.insert(0, {root!r})
from rfgen_jax import config_utils, data

def main(_):
  config = config_utils.load_config({config!r})
  config.data.root, config.data.tfds_data_dir = {data_root!r}, {tfds!r}
  config.data.image_size, config.train.batch_size = (32, 16), 2
  assert config.data.num_workers >= 1, config.data.num_workers
  with_workers = data.create_train_iterator(config, 0, 1)
  first = next(with_workers)
  workers = len(multiprocessing.active_children())
  config.data.num_workers = 0
  in_process = data.create_train_iterator(config, 0, 1)
  for i in range(3):
    a, b = (first if i == 0 else next(with_workers)), next(in_process)
    assert set(a) == set(b), (set(a), set(b))
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=f"batch {{i}}, {{key}}")
  print("workers", workers)

app.run(main)
"""


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
  """name -> (data root, TFDS folder) of that data set's layout fixture, written on first use."""
  made = {}

  def get(name):
    if name not in made:
      base = tmp_path_factory.mktemp(name)
      FIXTURES[name](str(base / "root"))
      made[name] = (str(base / "root"), str(base / "tfds"))
    return made[name]
  return get


def _env():
  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_default_workers_give_the_in_process_batches(layouts, name):
  data_root, tfds = layouts(name)
  config = os.path.join(ROOT, f"configs/{name}.py")
  assert config_utils.load_config(config).data.num_workers == 2   # what this test is about
  script = COMPARE_BATCHES.format(root=ROOT, config=config, data_root=data_root, tfds=tfds)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(),
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  workers = int(proc.stdout.split("workers")[-1])
  assert workers >= 2, f"grain started {workers} worker processes (expected the config's 2)"


@pytest.mark.parametrize("name", ["market", pytest.param("deepfashion", marks=pytest.mark.slow)])
def test_main_trains_and_evaluates_with_default_workers(layouts, name, tmp_path):
  """`python -m rfgen_jax.main` with the config's workers: trains both stages, evaluates, exits 0.

  Market-1501 in the default run (~45 s on an idle 2-core VM); DeepFashion shares its data path
  (`people_tfds`) and has its own batch test above, so its end-to-end run is marked slow."""
  data_root, tfds = layouts(name)
  workdir = str(tmp_path / "run")
  flags = [f"--config={os.path.join(ROOT, f'configs/{name}.py')}", f"--workdir={workdir}",
           f"--config.data.root={data_root}", f"--config.data.tfds_data_dir={tfds}"]
  flags += [f"--config.{k}={v}" for k, v in {**SMALL, **SMALL_FOR[name]}.items()]
  proc = subprocess.run([sys.executable, "-m", "rfgen_jax.main", *flags], capture_output=True, text=True,
                        env=_env(), cwd=str(tmp_path), timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["data"]["num_workers"] == 2
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:
    metrics = json.load(f)
  assert metrics, "no evaluation metrics written"
