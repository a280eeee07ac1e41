"""The data set registry: one `DataSet` per name; `config.data.name` picks one (docs/data.md).

A data set module (`rfgen_jax/data/datasets/*.py`) describes a data set with `DataSet(...)` and calls
`register`; `rfgen_jax.data.datasets` imports every built-in module, so `datasets.get(name)` knows them
all. Nothing outside the data set's own module names a data set: the pipeline asks the registry for the
pose kind, the preparation step and the split reader.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

POSE_KINDS = ("keypoints", "camera", "landmarks")


@dataclasses.dataclass(frozen=True)
class DataSet:
  """What the pipeline needs to know about one data set.

  Attributes:
    name: the value of `config.data.name`.
    pose_kind: "keypoints" (body keypoints -> heatmaps), "camera" (a camera pose vector) or "landmarks"
      (facial landmarks -> heatmaps); picks the pose encoder (`rfgen_jax.data.poses`).
    summary: one line for listings and errors.
    prepare: `prepare(config)`: generates a synthetic set or checks a real one's layout (FileNotFoundError
      naming the files and the layout expected), and writes any prepared copy (TFDS). Run once, by
      process 0 first (`rfgen_jax.data.prepare.run_once`).
    open_split: `open_split(config, split) -> SplitIndex` ("train" | "test"); reads metadata only.
    augment: whether `data.augment` may apply (False where a random affine contradicts the pose).
    m2n_kind: the M2N file kind (`data_{kind}.hdf5`) for camera data sets, else None.
    fingerprint_files: `fingerprint_files(config) -> [paths]` whose size and mtime key the per-process
      split cache (`rfgen_jax.data.split_index.cached_split`).
  """
  name: str
  pose_kind: str
  summary: str
  prepare: Callable[[Any], None]
  open_split: Callable[[Any, str], Any]
  augment: bool = True
  m2n_kind: str | None = None
  fingerprint_files: Callable[[Any], list[str]] | None = None

  def __post_init__(self):
    if self.pose_kind not in POSE_KINDS:
      raise ValueError(f"Data set {self.name!r}: unknown pose kind {self.pose_kind!r}; accepted: {POSE_KINDS}.")


_REGISTRY: dict[str, DataSet] = {}


def register(dataset: DataSet) -> DataSet:
  """Adds a data set under its name (a second registration of a name is an error)."""
  if dataset.name in _REGISTRY and _REGISTRY[dataset.name] is not dataset:
    raise ValueError(f"A data set named {dataset.name!r} is already registered.")
  _REGISTRY[dataset.name] = dataset
  return dataset


def lookup(name: str) -> DataSet:
  """The registered data set `name`; ValueError naming `--config.data.name` and the known names."""
  if name not in _REGISTRY:
    raise ValueError(f"Unknown --config.data.name={name!r}; registered data sets: {', '.join(sorted(_REGISTRY))}.")
  return _REGISTRY[name]


def registered() -> list[str]:
  return sorted(_REGISTRY)
