"""The people data sets' TFDS copy (array_record): build, prepare once, open with the stored index.

Used by `market.py`, `deepfashion.py` and `synthetic_people.py` (`people_dataset`): each registers a
data set whose images are read from the PATN/GFLA layout (`rfgen_jax/data/annotations.py`) at
`data.root` and written, after ABF's filtering, with their keypoints and identity. Features: `image` (the
file's own bytes and size, JPEG or PNG), `keypoints` (18, 2) float32 (y, x) pixels in the file's size,
-1 missing, `identity` (text), `name` (file name, text). Splits: `train`, `test`. TensorFlow Datasets is
imported only when a data set is prepared or opened.

Where prepared data go (`tfds_data_dir(config)`): `config.data.tfds_data_dir`, or when that is "",
`$TFDS_DATA_DIR` or else `~/tensorflow_datasets` (TFDS's own default). Nothing is ever written into the
data root itself. Every prepared copy lives under a builder config named after a fingerprint of its source
(absolute root path, size and mtime of the annotation CSVs, file counts of the image folders), so
different roots, or a regenerated synthetic set, never collide or go stale.

The split index: preparing also writes `rfgen_index-{split}.json` next to the prepared files (names and
identities in record order, read once from the records); opening a split reads that file and never the
images. Preparation runs once (process 0 first, `rfgen_jax/data/prepare.py`); by hand:
    python -m rfgen_jax.data.datasets.people_tfds --config=configs/market.py
"""
from __future__ import annotations

import functools
import hashlib
import json
import os

from absl import logging
from etils import epath
import numpy as np

from rfgen_jax import errors
from rfgen_jax.data import annotations
from rfgen_jax.data import images
from rfgen_jax.data import prepare
from rfgen_jax.data import registry
from rfgen_jax.data.split_index import SplitIndex

INDEX_FILE = "rfgen_index-{split}.json"
SPLITS = ("train", "test")


@functools.lru_cache(maxsize=None)
def builder_class(tfds_name: str, layout: annotations.Layout, instructions: str):
  """The TFDS builder class (class name = `tfds_name` in CamelCase) reading `layout`; made on first use."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)

  class _PeopleBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Reads the layout from the manual dir (= data.root) and writes the usable images."""
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = instructions

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
      features = tfds.features.FeaturesDict({
          "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
          "keypoints": tfds.features.Tensor(shape=(annotations.NUM_KEYPOINTS, 2), dtype=np.float32),
          "identity": tfds.features.Text(),
          "name": tfds.features.Text(),
      })
      return self.dataset_info_from_configs(features=features, supervised_keys=None,
                                            description=f"Pose-transfer people ({layout.name} layout).")

    def _split_generators(self, dl_manager):
      root = os.fspath(dl_manager.manual_dir)
      return {split: self._generate_examples(root, split) for split in SPLITS}

    def _generate_examples(self, root, split):
      records = annotations.load_split(root, layout, split, skip_missing_images=self._skip_corrupt_images)
      skipped = 0
      for r in records:
        with open(r.path, "rb") as f:
          data = f.read()
        try:
          images.check_image_bytes(data, r.path)
        except ValueError:
          if not self._skip_corrupt_images:
            raise
          skipped += 1
          logging.warning("Skipping corrupt image %s (data.skip_corrupt_images=True).", r.path)
          continue
        yield r.name, {"image": data, "keypoints": r.keypoints, "identity": r.identity, "name": r.name}
      if skipped:
        logging.warning("%s/%s: skipped %d corrupt images.", self.name, split, skipped)

  camel = "".join(part[:1].upper() + part[1:] for part in tfds_name.split("_"))
  return type(camel, (_PeopleBuilder,), {"__doc__": f"{layout.name} in the PATN/GFLA layout.", "__module__": __name__})


def tfds_data_dir(config) -> str:
  """Where prepared data go (see the module docstring)."""
  if config.data.tfds_data_dir:
    return os.path.abspath(os.path.expanduser(config.data.tfds_data_dir))
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def fingerprint_files(root: str, layout: annotations.Layout) -> list[str]:
  """The annotation CSVs and image folders whose state the prepared copy is keyed on."""
  root = os.path.abspath(root)
  return [os.path.join(root, layout.annotation.format(split=s)) for s in SPLITS] + \
         [os.path.join(root, s) for s in SPLITS]


def source_fingerprint(root: str, layout: annotations.Layout, dataset: str) -> str:
  """A short hash of the source files (see the module docstring)."""
  root = os.path.abspath(root)
  parts = [root, dataset]
  for split in SPLITS:
    csv = os.path.join(root, layout.annotation.format(split=split))
    st = os.stat(csv) if os.path.exists(csv) else None
    parts.append(f"{csv}:{st.st_size}:{st.st_mtime_ns}" if st else f"{csv}:absent")
    folder = os.path.join(root, split)
    parts.append(f"{folder}:{len(os.listdir(folder)) if os.path.isdir(folder) else -1}")
  return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


_SPECS: dict[str, tuple[str, annotations.Layout, str]] = {}   # data.name -> (tfds name, layout, instructions)


def make_builder(config):
  """The builder of the people data set `config.data.name`, for `config.data.root` (not prepared yet)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
  tfds_name, layout, instructions = _SPECS[config.data.name]
  root = os.path.abspath(config.data.root)
  fingerprint = source_fingerprint(root, layout, config.data.name)
  builder_config = tfds.core.BuilderConfig(name=f"src_{fingerprint}", description=f"root={root}")
  cls = builder_class(tfds_name, layout, instructions)
  return cls(data_dir=tfds_data_dir(config), config=builder_config, file_format="array_record",
             skip_corrupt_images=config.data.skip_corrupt_images)


def _write_index(builder, split: str) -> None:
  """Reads the prepared split's records once and stores names and identities in record order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
  path = os.path.join(os.fspath(builder.data_dir), INDEX_FILE.format(split=split))
  if os.path.isfile(path):
    return
  source = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
  names, identities = [], []
  for i in range(len(source)):
    record = source[i]
    names.append(_text(record["name"]))
    identities.append(_text(record["identity"]))
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump({"names": names, "identities": identities}, f)
  os.replace(tmp, path)


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def prepare_copy(config):
  """Prepares the TFDS copy and its split index (a no-op when both exist); returns the builder."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
  builder = make_builder(config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.path.abspath(config.data.root), try_download_gcs=False,
      compute_stats=tfds.download.ComputeStatsMode.SKIP))
  for split in SPLITS:
    _write_index(builder, split)
  return builder


def open_copy(config, split: str) -> SplitIndex:
  """Opens a prepared split: the array_record source and the stored index (no record is read)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
  builder = make_builder(config)
  path = os.path.join(os.fspath(builder.data_dir), INDEX_FILE.format(split=split))
  if not os.path.isfile(path):   # prepared by hand with an older version, or never: prepare now
    builder = prepare_copy(config)
  with open(path) as f:
    index = json.load(f)
  source = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
  if len(index["names"]) != len(source):
    raise ValueError(f"{path} lists {len(index['names'])} records, the prepared split has {len(source)}; "
                     f"delete {builder.data_dir} to prepare it again.")
  return SplitIndex(_Source(os.fspath(builder.data_dir), split, source), index["names"], index["identities"],
                    f"{builder.name}/{split} in {builder.data_dir}")


class _Source:
  """A prepared split's records, each with its `keypoints` also under `pose` (the pipeline's raw-pose key).

  Picklable for grain's worker processes: it holds the prepared directory and the split, and (re)opens the
  array_record source on first use in each process with TFDS's read-only builder, so no builder class
  travels to a worker (the builders of `builder_class` are made at run time, which cloudpickle would
  have to copy by value, class properties included: it cannot).
  """

  def __init__(self, data_dir: str, split: str, source=None):
    self.data_dir, self.split = data_dir, split
    self._source = source

  @property
  def source(self):
    if self._source is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
      self._source = tfds.builder_from_directory(self.data_dir).as_data_source(
          self.split, decoders={"image": tfds.decode.SkipDecoding()})
    return self._source

  def __getstate__(self):
    return {"data_dir": self.data_dir, "split": self.split, "_source": None}

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int):
    record = self.source[int(index)]
    return {"image": record["image"], "pose": record["keypoints"]}


def people_dataset(name: str, tfds_name: str, layout: annotations.Layout, summary: str, help_text: str,
                   instructions: str, generate=None) -> registry.DataSet:
  """Registers a people data set stored through TFDS.

  Args:
    name: `config.data.name`.
    tfds_name: the TFDS builder name (prepared data go to `{tfds_data_dir}/{tfds_name}/`).
    layout: where the CSVs are and how identities are read.
    summary: one line.
    help_text: the layout help shown when `data.root` is missing or incomplete (`{root}` is filled in);
      None for generated sets.
    instructions: TFDS's manual download instructions.
    generate: `generate(config)` for a synthetic set that writes `data.root` when it is incomplete.
  """
  _SPECS[name] = (tfds_name, layout, instructions)

  def prepare(config) -> None:
    root = config.data.root
    if generate is not None:
      generate(config)
    else:
      # One sentence (a user error: exit status 2); the full layout help is `help_text` in the data
      # set's module.
      title = help_text.split(" was not found", 1)[0]
      expected = [f"{s}/" for s in SPLITS] + [layout.annotation.format(split=s) for s in SPLITS]
      fix = (f"set --config.data.root to a folder holding {', '.join(expected)} (where each comes from: "
             f"rfgen_jax/data/datasets/{name}.py), or try --config=configs/synthetic.py, which needs no download.")
      if not root or not os.path.isdir(root):
        raise errors.MissingFileError(
            f"{title} was not found at {os.path.abspath(root or '.')} (--config.data.root={root!r}); {fix}")
      missing = [p for p in expected if not os.path.exists(os.path.join(root, p))]
      if missing:
        raise errors.MissingFileError(f"{title} data root {os.path.abspath(root)} is incomplete, it lacks "
                                      f"{', '.join(missing)}; {fix}")
    prepare_copy(config)

  return registry.register(registry.DataSet(
      name=name, pose_kind="keypoints", summary=summary, prepare=prepare, open_split=open_copy,
      fingerprint_files=lambda config: fingerprint_files(config.data.root, layout)))


def _main(argv):
  del argv
  config = _CONFIG.value
  dataset = registry.lookup(config.data.name)   # the data set modules are imported with rfgen_jax.data
  prepare.run_once(lambda: dataset.prepare(config), f"prepare {dataset.name}")
  print(f"Prepared {config.data.name} in {tfds_data_dir(config)}.")


if __name__ == "__main__":
  from rfgen_jax import cli  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
  cli.run(_main)
