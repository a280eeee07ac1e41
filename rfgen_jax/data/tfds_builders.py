"""TFDS builders (array_record) for the people data sets: `market1501`, `deepfashion`, `synthetic_people`.

Each builder reads the PATN/GFLA layout (see `annotations.py`) from its `manual_dir` (= `config.data.root`)
and writes the usable images (after ABF's filtering) with their keypoints and identity. Features:
`image` (the file's own bytes and size, JPEG or PNG), `keypoints` (18, 2) float32 (y, x) pixels in the
file's size, -1 missing, `identity` (text), `name` (file name, text). Splits: `train`, `test`.
`synthetic_people` generates its files with `rfgen_jax.data.synthetic.generate` when its manual_dir is
absent or incomplete.

Where prepared data go (`tfds_data_dir(config)`): `config.data.tfds_data_dir`, or when that is "",
`$TFDS_DATA_DIR` or else `~/tensorflow_datasets` (TFDS's own default). Nothing is ever written into the
data root itself. Every prepared copy lives under a builder config named after a fingerprint of its source
(absolute root path, size and mtime of the annotation CSVs, file counts of the image folders), so
different roots, or a regenerated synthetic set, never collide or go stale.

Preparing once by hand (e.g. before a multi-host job with a shared data dir, where concurrent preparation
from several hosts would race):
    python -m rfgen_jax.data.tfds_builders --config=configs/market.py
"""
from __future__ import annotations

import hashlib
import io
import os

from absl import logging
from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from rfgen_jax.data import annotations

_VERSION = tfds.core.Version("1.0.0")

_MARKET_INSTRUCTIONS = """\
Market-1501 comes from its authors (Zheng et al., ICCV 2015; https://zheng-lab-anu.github.io/Project/
project_reid.html). The pose-transfer layout with keypoints comes from PATN/GFLA
(https://github.com/tengteng95/Pose-Transfer, https://github.com/RenYurui/Global-Flow-Local-Attention):
put under the manual dir (config.data.root):
  train/*.jpg  test/*.jpg  market-annotation-train.csv  market-annotation-test.csv
  market-pairs-train.csv  market-pairs-test.csv
"""

_DEEPFASHION_INSTRUCTIONS = """\
DeepFashion In-shop Clothes Retrieval comes from its authors (Liu et al., CVPR 2016;
http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html); the 256x176 "resize" images, keypoint annotations
and pairs from GFLA (https://github.com/RenYurui/Global-Flow-Local-Attention). Put under the manual dir:
  train/fasion*.jpg  test/fasion*.jpg  fasion-annotation-train.csv  fasion-annotation-test.csv
  fasion-resize-pairs-train.csv  fasion-resize-pairs-test.csv
"""


def _features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
      "keypoints": tfds.features.Tensor(shape=(annotations.NUM_KEYPOINTS, 2), dtype=np.float32),
      "identity": tfds.features.Text(),
      "name": tfds.features.Text(),
  })


def check_image_bytes(data: bytes, path: str) -> tuple[int, int]:
  """Fully decodes image bytes; returns (H, W) or raises ValueError naming `path`."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      im.load()
      return im.size[1], im.size[0]
  except Exception as e:  # PIL raises several types for broken files
    raise ValueError(f"Corrupt or unreadable image: {path} ({type(e).__name__}: {e})") from e


class _PeopleBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared reader; subclasses set LAYOUT (a key of annotations.LAYOUTS)."""

  VERSION = _VERSION
  LAYOUT = "market"

  # TFDS 4.9.10 finds a builder's source file with `importlib_resources`, which it only declares as a
  # dependency for Python < 3.9; naming the file here avoids that import (and any checksum lookup).
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def __init__(self, *, skip_corrupt_images: bool = False, **kwargs):
    self._skip_corrupt_images = skip_corrupt_images
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(features=_features(), supervised_keys=None,
                                          description=f"Pose-transfer people ({self.LAYOUT} layout).")

  def _source_root(self, dl_manager) -> str:
    return os.fspath(dl_manager.manual_dir)

  def _split_generators(self, dl_manager):
    root = self._source_root(dl_manager)
    return {split: self._generate_examples(root, split) for split in ("train", "test")}

  def _generate_examples(self, root, split):
    records = annotations.load_split(root, self.LAYOUT, split,
                                     skip_missing_images=self._skip_corrupt_images)
    skipped = 0
    for r in records:
      with open(r.path, "rb") as f:
        data = f.read()
      try:
        check_image_bytes(data, r.path)
      except ValueError:
        if not self._skip_corrupt_images:
          raise
        skipped += 1
        logging.warning("Skipping corrupt image %s (data.skip_corrupt_images=True).", r.path)
        continue
      yield r.name, {"image": data, "keypoints": r.keypoints, "identity": r.identity, "name": r.name}
    if skipped:
      logging.warning("%s/%s: skipped %d corrupt images.", self.name, split, skipped)


class Market1501(_PeopleBuilder):
  """Market-1501 in the PATN/GFLA layout (manual download)."""
  LAYOUT = "market"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _MARKET_INSTRUCTIONS


class Deepfashion(_PeopleBuilder):
  """DeepFashion In-shop in the GFLA layout (manual download)."""
  LAYOUT = "deepfashion"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _DEEPFASHION_INSTRUCTIONS


class SyntheticPeopleConfig(tfds.core.BuilderConfig):
  """Generation parameters of the synthetic set (used when the manual dir is absent or incomplete)."""

  def __init__(self, *, height=64, width=32, train_ids=200, test_ids=20, views_per_id=8, seed=0, **kwargs):
    super().__init__(**kwargs)
    self.height, self.width = height, width
    self.train_ids, self.test_ids, self.views_per_id, self.seed = train_ids, test_ids, views_per_id, seed


class SyntheticPeople(_PeopleBuilder):
  """The project's synthetic multi-view people in the Market-1501 layout (generated, no download)."""
  LAYOUT = "synthetic"
  BUILDER_CONFIG_CLASS = SyntheticPeopleConfig
  # TFDS only exposes `manual_dir` to builders that declare instructions; here the "manual" folder is
  # `data.root`, generated by `rfgen_jax.data.synthetic` when absent.
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Nothing to download: `python -m rfgen_jax.data.synthetic --out DIR` "
                                  "generates the set (done automatically for configs/synthetic.py).")

  def _source_root(self, dl_manager) -> str:
    from rfgen_jax.data import synthetic  # pylint: disable=g-import-not-at-top
    try:
      root = os.fspath(dl_manager.manual_dir)
    except (AssertionError, ValueError):  # no manual dir given (TFDS asserts / raises)
      root = os.path.join(os.fspath(dl_manager.download_dir), "synthetic_people_src")
    if not synthetic.is_complete(root):
      c = self.builder_config
      logging.info("Generating the synthetic people set into %s.", root)
      synthetic.generate(root, c.height, c.width, c.train_ids, c.test_ids, c.views_per_id, c.seed)
    return root


BUILDERS = {"market": Market1501, "deepfashion": Deepfashion, "synthetic": SyntheticPeople}


def tfds_data_dir(config) -> str:
  """Where prepared data go (see the module docstring)."""
  if config.data.tfds_data_dir:
    return os.path.abspath(os.path.expanduser(config.data.tfds_data_dir))
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def source_fingerprint(root: str, dataset: str) -> str:
  """A short hash of the source files (see the module docstring)."""
  root = os.path.abspath(root)
  layout = annotations.layout_for(dataset)
  parts = [root, dataset]
  for split in ("train", "test"):
    csv = os.path.join(root, layout.annotation.format(split=split))
    st = os.stat(csv) if os.path.exists(csv) else None
    parts.append(f"{csv}:{st.st_size}:{st.st_mtime_ns}" if st else f"{csv}:absent")
    folder = os.path.join(root, split)
    parts.append(f"{folder}:{len(os.listdir(folder)) if os.path.isdir(folder) else -1}")
  return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def make_builder(config) -> tfds.core.GeneratorBasedBuilder:
  """The builder for `config.data.name`, configured for `config.data.root` (not prepared yet)."""
  name = config.data.name
  if name not in BUILDERS:
    raise ValueError(f"No TFDS builder for data.name={name!r}; known: {sorted(BUILDERS)}.")
  cls = BUILDERS[name]
  root = os.path.abspath(config.data.root)
  fingerprint = source_fingerprint(root, name)
  if name == "synthetic":
    h, w = config.data.image_size
    builder_config = SyntheticPeopleConfig(
        name=f"src_{fingerprint}", description=f"root={root}", height=h, width=w,
        train_ids=config.data.synthetic_train_ids, test_ids=config.data.synthetic_test_ids,
        views_per_id=config.data.synthetic_views_per_id, seed=config.data.synthetic_seed)
  else:
    builder_config = tfds.core.BuilderConfig(name=f"src_{fingerprint}", description=f"root={root}")
  return cls(data_dir=tfds_data_dir(config), config=builder_config, file_format="array_record",
             skip_corrupt_images=config.data.skip_corrupt_images)


def prepare(config) -> tfds.core.GeneratorBasedBuilder:
  """Makes the builder and prepares it (once; later calls reuse the prepared files)."""
  builder = make_builder(config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.path.abspath(config.data.root), try_download_gcs=False,
      compute_stats=tfds.download.ComputeStatsMode.SKIP))
  return builder


def _main(argv):
  del argv
  from rfgen_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  pipeline.ensure_dataset(config)
  builder = prepare(config)
  print(f"Prepared {builder.name} at {builder.data_dir}: "
        f"{ {k: v.num_examples for k, v in builder.info.splits.items()} }")


if __name__ == "__main__":
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from rfgen_jax import cli  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
  cli.run(_main)
