"""Random-access record sources of the non-TFDS formats, and the split index the grain pipeline reads.

The pipeline (`pipeline.py`) needs, per split, a random-access, picklable `source` (`len(source)`,
`source[i]` -> a record dict), the record names, a source sampler for training tuples and a rule for the
fixed test tuples. `open_split(config, split)` builds them for the three families of data, chosen by
`config.data.pose_kind`:

| pose_kind | format | source | record dict | sampler / test tuples |
| --- | --- | --- | --- | --- |
| keypoints | PATN/GFLA layout via TFDS array_record (`tfds_builders.py`) | TFDS data source | `image` (encoded bytes), `keypoints` (18, 2), `identity`, `name` | `tuples.TupleSampler` / `tuples.make_test_tuples` |
| camera | M2N HDF5 (`m2n.py`): ShapeNet chairs, KITTI, synthetic turntable | `M2NSource` (reads the HDF5 file) | `image` (H, W, 3) uint8, `pose` (D,) float32 | `m2n.ViewSampler` / `m2n.make_test_tuples` |
| landmarks | VoxCeleb2 frames + `landmarks.csv` (`voxceleb.py`) | `FrameSource` (reads the frame files) | `image` (encoded bytes), `pose` (68, 2) float32 | `voxceleb.FaceSourceSampler` / `voxceleb.make_test_tuples` |

The HDF5 and frame sources are read in place (no prepared copy): grain's `MapDataset` over their
indices gives the same shuffling, per-host slicing and checkpointable iterator state as the TFDS
sources. Metadata (names, identities, poses) is read once when a split is opened; bad input fails there
with the file and entry named (`m2n.load_m2n`, `voxceleb.load_split`).

Camera data (`m2n`): `data.m2n_kind` picks `data_{kind}.hdf5`; sources are drawn from the target's split
(`data.source_pool = "split"`) or from every group of the file (`"file"`, M2N's protocol); KITTI draws
them within +-`data.source_window` frames. With `data.pose_normalisation = "standardize"` and no
`data.pose_mean` / `data.pose_std` in the config, the statistics are those of the training split.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Callable

import numpy as np

from rfgen_jax.data import m2n
from rfgen_jax.data import voxceleb

# (num_sources, seed, num_tuples) -> (T, K + 1) int64 source indices (sources..., target).
TupleMaker = Callable[[int, int, int], np.ndarray]


@dataclasses.dataclass
class SplitIndex:
  """A prepared split: the grain-readable source and the per-record metadata read once at start-up.

  Attributes:
    source: random access (`len`, `[i]` -> record dict), picklable (grain workers get a copy).
    names: record names, indexed like `source`.
    identities: identity of every record (person, object model, KITTI drive, face identity).
    description: where the records come from (for error messages).
    targets: (N,) int64 indices of the records that are targets of this split (None = all records; the
      M2N "file" pool holds more records than the split's targets).
    sampler: object with `sample_sources(target, k, rng) -> (k,) int64` (None = `tuples.TupleSampler`
      over `identities`).
    make_test_tuples: the fixed evaluation tuples (None = `tuples.make_test_tuples` over the records
      sorted by name).
    pose_stats: (mean, std) of the training split's pose vectors, or None.
  """
  source: Any
  names: list[str]
  identities: list[str]
  description: str
  targets: np.ndarray | None = None
  sampler: Any = None
  make_test_tuples: TupleMaker | None = None
  pose_stats: tuple[np.ndarray, np.ndarray] | None = None


# ------------------------------------------------------------------------------------------ sources
class M2NSource:
  """Random access to the images and poses of M2N records (the HDF5 file is opened lazily, per process).

  `source[i]` = {"image": (H, W, 3) uint8, "pose": (D,) float32 as stored}.
  """

  def __init__(self, records: list[m2n.ViewRecord]):
    self.records = list(records)
    self._reader = m2n.ImageReader()
    self._lock = threading.Lock()

  def __getstate__(self):
    return {"records": self.records}

  def __setstate__(self, state):
    self.records = state["records"]
    self._reader = m2n.ImageReader()
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    r = self.records[int(index)]
    with self._lock:   # h5py serialises access anyway; the lock also guards the reader's open-file cache
      image = self._reader.read(r)
    return {"image": image, "pose": r.pose}


class FrameSource:
  """Random access to VoxCeleb2 frames: `source[i]` = {"image": file bytes, "pose": (68, 2) float32}."""

  def __init__(self, records: list[voxceleb.FaceRecord]):
    self.records = list(records)

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict[str, Any]:
    r = self.records[int(index)]
    try:
      with open(r.path, "rb") as f:
        data = f.read()
    except OSError as e:
      raise FileNotFoundError(f"Cannot read frame {r.path} ({e}).") from e
    return {"image": data, "pose": r.landmarks}


# ------------------------------------------------------------------------------------------ M2N (camera)
def m2n_pose_dim(config) -> int:
  """Length of the stored pose vector the config expects: 2 for one-hot views, `data.pose_dim` else."""
  return m2n.OBJECT_POSE_DIM if config.data.camera_encoding == "one_hot_view" else int(config.data.pose_dim)


def m2n_expected_files(config) -> list[str]:
  kind = config.data.m2n_kind
  h5, _ = m2n.file_names(kind, "all")
  return [h5] + [m2n.file_names(kind, s)[1] for s in ("train", "test")]


def open_m2n_split(config, split: str) -> SplitIndex:
  """The SplitIndex of an M2N split (module docstring); errors name the file and entry."""
  d = config.data
  root, kind = os.path.abspath(d.root), d.m2n_kind
  pose_dim = m2n_pose_dim(config)
  split_records = m2n.load_m2n(root, kind, split, pose_dim)
  if d.source_pool == "split":
    pool, targets = split_records, np.arange(len(split_records), dtype=np.int64)
  elif d.source_pool == "file":
    pool = m2n.load_m2n(root, kind, "all", pose_dim)
    position = {r.name: i for i, r in enumerate(pool)}
    targets = np.asarray([position[r.name] for r in split_records], np.int64)
  else:
    raise ValueError(f"Unknown data.source_pool={d.source_pool!r}; accepted: 'split', 'file'.")
  pose_stats = None
  if (d.pose_kind == "camera" and d.camera_encoding == "vector" and d.pose_normalisation == "standardize"
      and (d.pose_mean is None or d.pose_std is None)):
    train = split_records if split == "train" else m2n.load_m2n(root, kind, "train", pose_dim)
    pose_stats = m2n.pose_statistics(train)
  sampler = m2n.ViewSampler(pool, window=int(d.source_window) or None)

  def make_test_tuples(num_sources: int, seed: int, num_tuples: int) -> np.ndarray:
    return m2n.make_test_tuples(sampler, targets, num_sources, seed, num_tuples)

  h5 = os.path.join(root, m2n.file_names(kind, "all")[0])
  return SplitIndex(M2NSource(pool), [r.name for r in pool], [r.identity for r in pool],
                    f"{h5} ({split} split, source pool '{d.source_pool}')", targets=targets,
                    sampler=sampler, make_test_tuples=make_test_tuples, pose_stats=pose_stats)


# ------------------------------------------------------------------------------------------ VoxCeleb2
def open_voxceleb_split(config, split: str) -> SplitIndex:
  """The SplitIndex of a VoxCeleb2 split; errors name the landmark file and line."""
  root = os.path.abspath(config.data.root)
  records = voxceleb.load_split(root, split, int(config.data.num_landmarks))
  sampler = voxceleb.FaceSourceSampler([r.identity for r in records], [r.video for r in records])

  def make_test_tuples(num_sources: int, seed: int, num_tuples: int) -> np.ndarray:
    return voxceleb.make_test_tuples(sampler, num_sources, seed, num_tuples)

  return SplitIndex(FrameSource(records), [r.name for r in records], [r.identity for r in records],
                    f"{os.path.join(root, split)} (VoxCeleb2 layout)", sampler=sampler,
                    make_test_tuples=make_test_tuples)
