r"""Input pipeline throughput: K-source tuples per second at 128x64 with heatmaps and augmentation.

By default it writes a Market-1501-layout set of random JPEGs (128x64, like Market's) into a temporary
folder, prepares it with the TFDS builder and times `create_train_iterator` with 0 and 2 grain workers:

  python -m benchmarks.input_pipeline [--num_workers=0,2] [--batches=150] [--config=configs/market.py]

With --config, the config's data set is used instead (its data.root must exist, or be synthetic).

Evaluation start-up (--startup): seconds to prepare the data set and to open the test split for
K = 1, 2, 3 (`create_eval_batches`), each in a fresh process, e.g. on the synthetic demo:

  python -m benchmarks.input_pipeline --startup --config=configs/synthetic.py
"""
import json
import os
import tempfile
import time

from absl import flags
import numpy as np
from PIL import Image

from configs import market
from rfgen_jax import cli, config_utils, data

_WORKERS = flags.DEFINE_list("num_workers", ["0", "2"], "grain worker counts to time.")
_BATCHES = flags.DEFINE_integer("batches", 150, "batches timed per setting (after 10 warm-up batches).")
_IDS = flags.DEFINE_integer("ids", 150, "identities of the generated set.")
_VIEWS = flags.DEFINE_integer("views", 6, "images per identity of the generated set.")
_CONFIG = flags.DEFINE_string("config", None, "a config file instead of the generated set.")
_STARTUP = flags.DEFINE_bool("startup", False, "time evaluation start-up instead of throughput.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "--startup: fresh processes timed (after one that prepares).")


def write_random_market(root: str, ids: int, views: int, seed: int = 0) -> None:
  """Photo-like 128x64 JPEGs with random keypoints, in the Market layout (train = test)."""
  rng = np.random.default_rng(seed)
  for split in ("train", "test"):
    os.makedirs(os.path.join(root, split), exist_ok=True)
    rows = ["name:keypoints_y:keypoints_x"]
    for i in range(1, ids + 1):
      for v in range(views):
        name = f"{i:04d}_c{v + 1}s1_{v * 451:06d}_01.jpg"
        # Photo-like content (smooth colour fields plus mild noise) so JPEG decoding costs what a real
        # Market-1501 image costs; pure noise would make it several times slower.
        low = Image.fromarray(rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)).resize((64, 128), Image.BICUBIC)
        img = np.clip(np.asarray(low, np.int16) + rng.integers(-12, 13, (128, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(root, split, name), quality=90)
        ys = rng.integers(0, 128, 18).tolist()
        xs = rng.integers(0, 64, 18).tolist()
        rows.append(f"{name}: {json.dumps(ys)}: {json.dumps(xs)}")
    with open(os.path.join(root, f"market-annotation-{split}.csv"), "w") as f:
      f.write("\n".join(rows) + "\n")


def time_iterator(config, batches: int) -> float:
  it = data.create_train_iterator(config, 0, 1)
  for _ in range(10):   # warm-up, includes starting the worker processes
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * config.train.batch_size / (time.perf_counter() - start)


_STARTUP_SCRIPT = r"""
import sys, time
t0 = time.perf_counter()
from rfgen_jax import config_utils, data
config = config_utils.load_config(sys.argv[1])
config.data.tfds_data_dir = sys.argv[2] or config.data.tfds_data_dir
t1 = time.perf_counter(); data.ensure_dataset(config); t2 = time.perf_counter()
times = []
for k in (1, 2, 3):
  s = time.perf_counter(); data.create_eval_batches(config, k, 0, 1); times.append(time.perf_counter() - s)
print(f"{t1 - t0:.3f} {t2 - t1:.3f} " + " ".join(f"{x:.3f}" for x in times))
"""


def startup(config_file: str, tfds_dir: str) -> None:
  """Times data preparation and opening the test split for K = 1, 2, 3 in fresh processes."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  cmd = [sys.executable, "-c", _STARTUP_SCRIPT, config_file, tfds_dir]
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  first = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env)   # generates / prepares once
  if first.returncode:
    raise SystemExit(first.stderr[-3000:])
  print(f"{config_file}: seconds per fresh process (import, ensure_dataset, open test split K=1, K=2, K=3)")
  for _ in range(_REPEATS.value):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root, env=env).stdout
    imp, prep, *ks = (float(v) for v in out.split()[-5:])
    print(f"  import {imp:.2f}  ensure_dataset {prep:.2f}  open K=1,2,3: {ks[0]:.3f} {ks[1]:.3f} {ks[2]:.3f} "
          f"(ensure + opens {prep + sum(ks):.2f})")


def main(argv):
  del argv
  if _STARTUP.value:
    startup(_CONFIG.value or "configs/synthetic.py", os.path.join(tempfile.gettempdir(), "rfgen_bench_tfds"))
    return
  tmp = tempfile.mkdtemp(prefix="rfgen_bench_")
  if _CONFIG.value:
    config = config_utils.load_config(_CONFIG.value)
    if not config.data.tfds_data_dir:
      config.data.tfds_data_dir = os.path.join(tmp, "tfds")
  else:
    config = market.get_config()
    config.data.root = os.path.join(tmp, "market")
    config.data.tfds_data_dir = os.path.join(tmp, "tfds")
    write_random_market(config.data.root, _IDS.value, _VIEWS.value)
  config.data.augment = True
  data.ensure_dataset(config)
  h, w = config.data.image_size
  print(f"{config.data.name} at {h}x{w}, K={config.data.num_sources}, batch {config.train.batch_size}, "
        f"P={config.data.pose_channels} heatmaps, augmentation on, {os.cpu_count()} CPUs")
  for workers in _WORKERS.value:
    config.data.num_workers = int(workers)
    rate = time_iterator(config, _BATCHES.value)
    print(f"num_workers={workers}: {rate:.0f} tuples/s")


if __name__ == "__main__":
  cli.run(main)
