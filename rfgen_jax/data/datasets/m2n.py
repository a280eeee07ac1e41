"""Camera-pose data sets in the M2N HDF5 format: ShapeNet chairs and cars, KITTI, the synthetic turntable.

| data.name | M2N kind (`data_{kind}.hdf5`) | pose (`data.camera_encoding`) | sources |
| --- | --- | --- | --- |
| `shapenet_chair` | chair | one-hot view (`one_hot_view`) | other azimuths of the model at the target's elevation |
| `shapenet_car` | car | one-hot view | as chairs |
| `kitti` | kitti | 6-vector (`vector`) | frames of the drive within +-`data.source_window` |
| `turntable` | turntable (generated at `data.root`, `rfgen_jax/data/synthetic/turntable.py`) | one-hot view | as chairs |

File layout and reading: `rfgen_jax/data/m2n_format.py`. The images stay in the HDF5 file and are read in place (no
prepared copy); opening a split reads the id lists and each group's `pose` only.

Source selection (as M2N's loaders draw them):
- Objects (`datasets/object_loader.py`): other azimuths of the same model at the target's elevation. M2N
  adds a random even offset to the azimuth index modulo 36, which can land on the target itself; here
  the target is excluded, and the K sources are distinct while the candidates suffice.
- KITTI (`datasets/scene_loader.py`): frames of the same drive within a window around the target (M2N:
  `randint(-10, 10)`, i.e. offsets -10..9, retried until the frame exists, target and repeats allowed).
  Here: offsets in [-window, window] \\ {0}, window = `data.source_window` (10), distinct while possible.
- Sources come from the records the sampler is built on (the "pool"): the target's split
  (`data.source_pool = "split"`, no mixing) or every group of the HDF5 file (`"file"`, M2N's protocol,
  where a KITTI test target may get training frames as sources).
With `data.pose_normalisation = "standardize"` and no `data.pose_mean` / `data.pose_std` in the config,
the pose statistics are those of the training split.
"""
from __future__ import annotations

import os
import threading
from typing import Sequence

from absl import logging
import numpy as np

from rfgen_jax import errors
from rfgen_jax.data import registry
from rfgen_jax.data import tuples as tuples_lib
from rfgen_jax.data import m2n_format
from rfgen_jax.data.m2n_format import ViewRecord
from rfgen_jax.data.synthetic import turntable
from rfgen_jax.data.split_index import SplitIndex

_TRY_TURNTABLE = """\
Point --config.data.root at that folder, or try the camera-pose path without downloads (a synthetic
turntable in the same format, generated on first use):
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR"""

_OBJECT_HELP = """\
ShapeNet {what} (M2N format) were not found at {root}.
The rendered {what} come with Multi-view to Novel View (Sun et al., ECCV 2018:
https://github.com/shaohua0116/Multiview2Novelview, datasets/shapenet). Expected layout:
  {root}/
    data_{kind}.hdf5        one group per image, '{{model}}_{{azimuth index}}_{{elevation}}', e.g.
                            e8f20141696f143cdb77753d44aa25f6_4_10, holding 'image' (H, W, 3) uint8 and
                            'pose' [azimuth index, elevation in degrees]
    id_{kind}_train.txt     id_{kind}_test.txt     (one group name per line)
""" + _TRY_TURNTABLE

_KITTI_HELP = """\
KITTI (M2N format) was not found at {root}.
The KITTI odometry frames come with Multi-view to Novel View (Sun et al., ECCV 2018:
https://github.com/shaohua0116/Multiview2Novelview, datasets/kitti). Expected layout:
  {root}/
    data_kitti.hdf5         one group per frame, '{{drive}}_{{frame}}', e.g. 00_004166, holding
                            'image' (H, W, 3) uint8 and 'pose' (a {pose_dim}-vector)
    id_train.txt            id_test.txt            (one group name per line)
Point --config.data.root at that folder, or try the camera-pose path without downloads (a synthetic
turntable in the M2N format, generated on first use):
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR"""


# ------------------------------------------------------------------------------------------ sources
def _draw(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  if len(candidates) >= k:
    return rng.choice(candidates, size=k, replace=False)
  return rng.choice(candidates, size=k, replace=True)


class ViewSampler:
  """Index-based source sampling over a pool of records (the interface of `tuples.TupleSampler`).

  Args:
    pool: the records sources are drawn from (indexes refer to this list).
    window: None for objects, the frame window for KITTI.
  """

  def __init__(self, pool: Sequence[ViewRecord], window: int | None = None):
    self.pool = list(pool)
    self.window = window
    self.num_images = len(self.pool)
    self._index = {r.name: i for i, r in enumerate(self.pool)}
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(self.pool):
      groups.setdefault((r.identity, r.stratum), []).append(i)
    self._groups = {}
    for key, idx in groups.items():
      idx = np.asarray(idx, np.int64)
      views = np.asarray([self.pool[i].view for i in idx], np.int64)
      order = np.lexsort((idx, views))
      self._groups[key] = (idx[order], views[order])

  def index_of(self, name: str) -> int:
    if name not in self._index:
      raise KeyError(f"{name!r} is not in the sampler's pool.")
    return self._index[name]

  def others_of(self, target: ViewRecord) -> np.ndarray:
    """Pool indices of the candidates for a target record, in view order."""
    idx, views = self._groups.get((target.identity, target.stratum), (np.zeros(0, np.int64),) * 2)
    if self.window is not None:
      lo = np.searchsorted(views, target.view - self.window, side="left")
      hi = np.searchsorted(views, target.view + self.window, side="right")
      idx, views = idx[lo:hi], views[lo:hi]
      idx = idx[views != target.view]
    return np.asarray([i for i in idx if self.pool[i].name != target.name], np.int64)

  def others(self, target: int) -> np.ndarray:
    """Candidates of the pool record `target` (an index)."""
    return self.others_of(self.pool[int(target)])

  def sample_sources(self, target: int, num_sources: int, rng: np.random.Generator) -> np.ndarray:
    """(num_sources,) int64 pool indices for the pool record `target`, never the target itself."""
    others = self.others(target)
    if not len(others):
      r = self.pool[int(target)]
      raise ValueError(f"No source candidates for {r.name!r} in {r.path}.")
    return _draw(others, num_sources, rng)


def make_test_tuples(sampler: ViewSampler, targets: Sequence[int], num_sources: int, seed: int,
                     num_tuples: int = 0) -> np.ndarray:
  """The fixed evaluation tuples over pool indices (the rules of `tuples.make_test_tuples`).

  Sources of tuple i are a permutation of the candidates drawn with a generator seeded by (seed, i),
  filled with seeded draws with replacement when there are fewer than K, so the sources for K are a
  prefix of those for K + 1.

  Args:
    sampler: the ViewSampler over the pool.
    targets: pool indices of the possible targets (e.g. the test split).
    num_sources: K.
    seed: `config.data.test_tuples_seed`.
    num_tuples: 0 = one tuple per target in the given order; > 0 = that many, targets a seeded
      permutation (cycled).

  Returns:
    (T, K + 1) int64 pool indices: sources..., target.
  """
  def candidates(target, rng):
    others = sampler.others(target)
    if not len(others):
      r = sampler.pool[target]
      raise ValueError(f"No source candidates for {r.name!r} in {r.path}.")
    return rng.permutation(others)

  return tuples_lib.seeded_test_tuples(targets, candidates, num_sources, seed, num_tuples)





def pose_statistics(records: Sequence[ViewRecord]) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std) float32 per pose component over records (for `VectorPoseEncoder` 'standardize')."""
  p = np.stack([r.pose for r in records]).astype(np.float64)
  return p.mean(axis=0).astype(np.float32), p.std(axis=0).astype(np.float32)


class M2NSource:
  """Random access to the images and poses of M2N records (the HDF5 file is opened lazily, per process).

  `source[i]` = {"image": (H, W, 3) uint8, "pose": (D,) float32 as stored}.
  """

  def __init__(self, records: Sequence[ViewRecord]):
    self.records = list(records)
    self._reader = m2n_format.ImageReader()
    self._lock = threading.Lock()

  def __getstate__(self):
    return {"records": self.records}

  def __setstate__(self, state):
    self.records = state["records"]
    self._reader = m2n_format.ImageReader()
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    r = self.records[int(index)]
    with self._lock:   # h5py serialises access anyway; the lock also guards the reader's open-file cache
      image = self._reader.read(r)
    return {"image": image, "pose": r.pose}


# ------------------------------------------------------------------------------------------ data sets
def _pose_dim(config) -> int:
  """Length of the stored pose vector the config expects: 2 for one-hot views, `data.pose_dim` else."""
  return m2n_format.OBJECT_POSE_DIM if config.data.camera_encoding == "one_hot_view" else int(config.data.pose_dim)


def _expected_files(kind: str) -> list[str]:
  h5, _ = m2n_format.file_names(kind, "all")
  return [h5] + [m2n_format.file_names(kind, s)[1] for s in ("train", "test")]


def _open_split(kind: str):
  def open_split(config, split: str) -> SplitIndex:
    """The SplitIndex of an M2N split (module docstring); errors name the file and entry."""
    d = config.data
    root = os.path.abspath(d.root)
    pose_dim = _pose_dim(config)
    split_records = m2n_format.load_m2n(root, kind, split, pose_dim)
    if d.source_pool == "split":
      pool, targets = split_records, np.arange(len(split_records), dtype=np.int64)
    elif d.source_pool == "file":
      pool = m2n_format.load_m2n(root, kind, "all", pose_dim)
      position = {r.name: i for i, r in enumerate(pool)}
      targets = np.asarray([position[r.name] for r in split_records], np.int64)
    else:
      raise ValueError(f"Unknown --config.data.source_pool={d.source_pool!r}; accepted: 'split', 'file'.")
    pose_stats = None
    if (d.camera_encoding == "vector" and d.pose_normalisation == "standardize"
        and (d.pose_mean is None or d.pose_std is None)):
      train = split_records if split == "train" else m2n_format.load_m2n(root, kind, "train", pose_dim)
      pose_stats = pose_statistics(train)
    sampler = ViewSampler(pool, window=int(d.source_window) or None)

    def make_tuples(num_sources: int, seed: int, num_tuples: int) -> np.ndarray:
      return make_test_tuples(sampler, targets, num_sources, seed, num_tuples)

    h5 = os.path.join(root, m2n_format.file_names(kind, "all")[0])
    return SplitIndex(M2NSource(pool), [r.name for r in pool], [r.identity for r in pool],
                      f"{h5} ({split} split, source pool '{d.source_pool}')", targets=targets,
                      sampler=sampler, make_test_tuples=make_tuples, pose_stats=pose_stats)
  return open_split


def _check_files(name: str, kind: str, help_text: str):
  def prepare(config) -> None:
    """Checks the root and its files; FileNotFoundError with the expected layout otherwise."""
    d = config.data
    root = d.root
    text = help_text.format(root=os.path.abspath(root or "."), kind=kind, pose_dim=d.pose_dim,
                            what="cars" if kind == "car" else "chairs")
    if not root or not os.path.isdir(root):
      raise errors.MissingFileError(text)
    missing = [os.path.join(root, n) for n in _expected_files(kind) if not os.path.isfile(os.path.join(root, n))]
    if missing:
      raise errors.MissingFileError(f"{name} data root {root} is incomplete; missing: {', '.join(missing)}.\n" +
                                    text.split("\n", 1)[1])
  return prepare


def _generate_turntable(config) -> None:
  """Generates the synthetic turntable at `data.root` unless a complete one is there."""
  d = config.data
  if not turntable.is_complete(d.root):
    h, w = d.image_size
    logging.info("Generating the synthetic turntable data set into %s.", d.root)
    turntable.generate(d.root, size=max(h, w), train_objects=d.turntable_train_objects,
                       test_objects=d.turntable_test_objects, seed=d.turntable_seed,
                       num_azimuths=d.num_azimuths,
                       elevations=tuple(int(d.elevation_min + d.elevation_step * i)
                                        for i in range(d.num_elevations)))


def _files(kind: str):
  return lambda config: [os.path.join(config.data.root, n) for n in _expected_files(kind)]


def _camera(name: str, kind: str, summary: str, prepare) -> registry.DataSet:
  return registry.register(registry.DataSet(
      name=name, pose_kind="camera", summary=summary, prepare=prepare, open_split=_open_split(kind),
      augment=False, m2n_kind=kind, fingerprint_files=_files(kind)))


SHAPENET_CHAIR = _camera("shapenet_chair", "chair", "ShapeNet chairs rendered by M2N (paper Table 2)",
                         _check_files("shapenet_chair", "chair", _OBJECT_HELP))
SHAPENET_CAR = _camera("shapenet_car", "car", "ShapeNet cars rendered by M2N",
                       _check_files("shapenet_car", "car", _OBJECT_HELP))
KITTI = _camera("kitti", "kitti", "KITTI odometry frames in M2N's format (paper Table 2)",
                _check_files("kitti", "kitti", _KITTI_HELP))
TURNTABLE = _camera("turntable", "turntable", "synthetic textured objects on a turntable (generated)",
                    _generate_turntable)
