r"""Input pipeline throughput: K-source tuples per second at 128x64 with heatmaps and augmentation.

By default it writes a Market-1501-layout set of random JPEGs (128x64, like Market's) into a temporary
folder, prepares it with the TFDS builder and times `create_train_iterator` with 0 and 2 grain workers:

  python -m benchmarks.input_pipeline [--num_workers=0,2] [--batches=150] [--config=configs/market.py]

With --config, the config's data set is used instead (its data.root must exist, or be synthetic).
"""
import json
import os
import tempfile
import time

from absl import flags
import numpy as np
from PIL import Image

from configs import market

_WORKERS = flags.DEFINE_list("num_workers", ["0", "2"], "grain worker counts to time.")
_BATCHES = flags.DEFINE_integer("batches", 150, "batches timed per setting (after 10 warm-up batches).")
_IDS = flags.DEFINE_integer("ids", 150, "identities of the generated set.")
_VIEWS = flags.DEFINE_integer("views", 6, "images per identity of the generated set.")
_CONFIG = flags.DEFINE_string("config", None, "a config file instead of the generated set.")


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
  from rfgen_jax import data  # pylint: disable=g-import-not-at-top
  it = data.create_train_iterator(config, 0, 1)
  for _ in range(10):   # warm-up, includes starting the worker processes
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * config.train.batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  from rfgen_jax import data  # pylint: disable=g-import-not-at-top
  tmp = tempfile.mkdtemp(prefix="rfgen_bench_")
  if _CONFIG.value:
    from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
    config = config_flags.load_config_file(_CONFIG.value)
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
  from rfgen_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
