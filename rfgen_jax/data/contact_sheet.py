r"""A PNG grid of a few K-source tuples, to check the data by eye.

  python -m rfgen_jax.data.contact_sheet --config=configs/synthetic.py --out sheet.png [--num 4] \
      [--split train|test] [--scale 2]

One row per tuple: the K sources, the target (each with its skeleton drawn from the batch's keypoints,
i.e. after resizing and, for --split=train, augmentation), and the target's pose map (the maximum over
channels, in grey). The data set is generated / prepared first if needed.
"""
from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags
import numpy as np
from PIL import Image

from rfgen_jax import cli, data
from rfgen_jax.data import config_check, keypoints
from rfgen_jax.visualize import hstack_with_separator, to_uint8


def define_flags() -> None:
  """The program's flags; defined only when it runs, so importing `make_sheet` defines none."""
  config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=False)
  flags.DEFINE_string("out", "contact_sheet.png", "Output PNG.")
  flags.DEFINE_integer("num", 4, "Number of tuples (rows).")
  flags.DEFINE_enum("split", "train", ["train", "test"],
                    "train: random tuples with augmentation; test: the fixed evaluation tuples.")
  flags.DEFINE_integer("scale", 2, "Integer upscaling of every cell (nearest).")
  flags.mark_flag_as_required("config")


def tuple_row(batch: dict, i: int, draw_skeleton) -> np.ndarray:
  """One row of the sheet for example i of a batch: sources, target, target pose map; (H, (K+2)*W, 3)."""
  cells = []
  for img, kp in zip(batch["source_images"][i], batch["source_keypoints"][i]):
    cells.append(draw_skeleton(to_uint8(img), kp))
  cells.append(draw_skeleton(to_uint8(batch["target_image"][i]), batch["target_keypoints"][i]))
  pose = batch["target_pose"][i].max(axis=-1)
  cells.append(np.repeat((np.clip(pose, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1))
  return hstack_with_separator(cells, 2)


def make_sheet(config, num: int, split: str = "train", scale: int = 2) -> np.ndarray:
  """(rows, cols, 3) uint8 grid of `num` tuples of the config's data set (its `data.*` checked first:
  the pipeline itself no longer checks them, `data/config_check.py`)."""
  config_check.validate_data_config(config)
  config.data.num_workers = 0
  data.ensure_dataset(config)
  rows = []
  if split == "train":
    config.train.batch_size = num
    batch = next(data.create_train_iterator(config, 0, 1))
  else:
    config.eval.batch_size = num
    batch = next(iter(data.create_eval_batches(config, config.data.num_sources, 0, 1)))
  for i in range(num):
    if not batch["valid"][i]:
      continue
    rows.append(tuple_row(batch, i, keypoints.draw_skeleton))
    rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
  sheet = np.concatenate(rows[:-1], axis=0)
  return np.repeat(np.repeat(sheet, scale, axis=0), scale, axis=1)


def main(argv):
  del argv
  f = flags.FLAGS
  sheet = make_sheet(f.config, f.num, f.split, f.scale)
  os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
  Image.fromarray(sheet).save(f.out)
  print(f"Wrote {f.out} ({sheet.shape[1]}x{sheet.shape[0]}).")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
