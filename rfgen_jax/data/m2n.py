"""Readers for the Multi-view to Novel view (M2N; Sun et al., ECCV 2018) HDF5 data: ShapeNet objects, KITTI.

The paper's Table 2 uses M2N's files (github.com/shaohua0116/Multiview2Novelview, `datasets/`). Layout
under a data root (`config.data.root`):

    objects (kind = "chair", "car", "turntable")     KITTI (kind = "kitti")
    root/data_{kind}.hdf5                            root/data_kitti.hdf5
    root/id_{kind}_train.txt  root/id_{kind}_test.txt root/id_train.txt  root/id_test.txt

Each HDF5 group is one image: datasets `image` (H, W, 3) uint8 and `pose`. The id files list group names,
one per line.
- Objects: group `{model}_{azimuth index}_{elevation}`, e.g. `e8f20141696f143cdb77753d44aa25f6_4_10`;
  `pose` = `[azimuth index, elevation in degrees]` (M2N chairs: even azimuth indices 0..34 of 10-degree
  steps, elevations 0, 10, 20). Model ids never contain `_`. Identity = the model; view = azimuth index;
  stratum = the elevation.
- KITTI: group `{drive}_{frame}` with a 6-digit frame, e.g. `00_004166`; `pose` = a 6-DoF vector (M2N does
  not document its parametrisation; we treat it as an opaque 6-vector, see `camera_poses`). Identity =
  the drive; view = the frame number; stratum = 0.

Source selection (as M2N's loaders draw them):
- Objects (`datasets/object_loader.py`): other azimuths of the same model at the target's elevation. M2N
  adds a random even offset to the azimuth index modulo 36, which can land on the target itself; here
  the target is excluded, and the K sources are distinct while the candidates suffice.
- KITTI (`datasets/scene_loader.py`): frames of the same drive within a window around the target (M2N:
  `randint(-10, 10)`, i.e. offsets -10..9, retried until the frame exists, target and repeats allowed).
  Here: offsets in [-window, window] \\ {0}, window = `data.source_window` (10), distinct while possible.
- Sources come from the records the sampler is built on (the "pool"). M2N draws them from the whole
  HDF5 file, so a KITTI test target may get training frames as sources; build the sampler on
  `load_m2n(root, "kitti", "all")` for that protocol, or on the split itself (the default, no mixing).
- M2N's fixed test tuples (`testing_tuple_lists/id_chair_random_elevation.txt`, `id_kitti.txt`: rows
  `target source_1 ... source_4`) are read by `read_m2n_tuple_list`.

M2N maps object images to `1 - x / 127.5` (a sign flip); we use the project's `x / 127.5 - 1` everywhere.

Bad input raises errors naming the file and the entry: a missing file, an id absent from the HDF5 file,
a group without `image` or `pose`, a pose of the wrong length, an image that is not (H, W, 3).
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Iterator, Sequence

from absl import logging
import numpy as np

from rfgen_jax.data import tuples as tuples_lib

KINDS_HELP = "'chair', 'car', 'turntable' (objects) or 'kitti'"
OBJECT_POSE_DIM = 2
KITTI_POSE_DIM = 6
KITTI_WINDOW = 10


@dataclasses.dataclass(frozen=True)
class ViewRecord:
  """One image of an M2N file.

  Attributes:
    name: the HDF5 group name.
    identity: object model id, or KITTI drive.
    view: azimuth index (objects) or frame number (KITTI).
    stratum: sources share the target's stratum: the elevation in degrees (objects), 0 (KITTI).
    pose: the stored `pose` vector, float32 ((2,) objects, (6,) KITTI).
    path: the HDF5 file.
  """
  name: str
  identity: str
  view: int
  stratum: int
  pose: np.ndarray
  path: str


def is_kitti(kind: str) -> bool:
  return kind == "kitti"


def file_names(kind: str, split: str) -> tuple[str, str | None]:
  """(HDF5 file name, id list file name or None for split 'all') of a kind and split."""
  if not kind or "/" in kind:
    raise ValueError(f"Unknown M2N kind {kind!r}; use {KINDS_HELP}.")
  if split not in ("train", "test", "all"):
    raise ValueError(f"Unknown split {split!r}; use 'train', 'test' or 'all'.")
  h5 = f"data_{kind}.hdf5"
  if split == "all":
    return h5, None
  return h5, (f"id_{split}.txt" if is_kitti(kind) else f"id_{kind}_{split}.txt")


def parse_name(name: str, kind: str, where: str = "") -> tuple[str, int, int]:
  """(identity, view, stratum) from a group name (module docstring); ValueError naming `where`."""
  at = f" ({where})" if where else ""
  try:
    if is_kitti(kind):
      drive, frame = name.rsplit("_", 1)
      return drive, int(frame), 0
    model, az, elev = name.rsplit("_", 2)
    if not model:
      raise ValueError
    return model, int(az), int(round(float(elev)))
  except ValueError:
    pattern = "{drive}_{frame}" if is_kitti(kind) else "{model}_{azimuth index}_{elevation}"
    raise ValueError(f"M2N {kind} id {name!r} does not follow {pattern}{at}.") from None


def read_id_list(path: str) -> list[tuple[str, int]]:
  """[(id, line number)] of an id list file, blank lines skipped."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"M2N id list not found: {path}")
  with open(path) as f:
    return [(line.strip(), i) for i, line in enumerate(f, start=1) if line.strip()]


def _h5py():
  import h5py  # pylint: disable=g-import-not-at-top
  return h5py


def _read_pose(group, h5_path: str, name: str, pose_dim: int) -> np.ndarray:
  if "pose" not in group:
    raise KeyError(f"{h5_path}: group {name!r} has no 'pose' dataset (has {sorted(group.keys())}).")
  pose = np.asarray(group["pose"][()], np.float32).reshape(-1)
  if pose.shape[0] != pose_dim:
    raise ValueError(f"{h5_path}: group {name!r}: 'pose' has {pose.shape[0]} values, expected {pose_dim} "
                     f"({pose.tolist()}).")
  return pose


def _check_image_dataset(group, h5_path: str, name: str) -> None:
  if "image" not in group:
    raise KeyError(f"{h5_path}: group {name!r} has no 'image' dataset (has {sorted(group.keys())}).")
  shape = group["image"].shape
  if len(shape) != 3 or shape[-1] != 3:
    raise ValueError(f"{h5_path}: group {name!r}: 'image' has shape {shape}, expected (H, W, 3).")


def load_m2n(root: str, kind: str, split: str, pose_dim: int | None = None) -> list[ViewRecord]:
  """Reads the records of one split (image data stays in the file; see `read_image`).

  Args:
    root: folder holding the HDF5 file and id lists.
    kind: "chair", "car", "turntable" (objects) or "kitti".
    split: "train" | "test" (the ids of `id_*_{split}.txt`, in file order) | "all" (every group of the
      HDF5 file, sorted by name: the source pool of M2N's protocol).
    pose_dim: expected pose length (default 2 for objects, 6 for KITTI).

  Returns:
    The records. Raises FileNotFoundError / KeyError / ValueError naming the file and entry.
  """
  h5_name, ids_name = file_names(kind, split)
  h5_path = os.path.join(root, h5_name)
  if pose_dim is None:
    pose_dim = KITTI_POSE_DIM if is_kitti(kind) else OBJECT_POSE_DIM
  if not os.path.isfile(h5_path):
    raise FileNotFoundError(f"M2N data file not found: {h5_path} (expected layout: see rfgen_jax/data/m2n.py).")
  with _h5py().File(h5_path, "r") as f:
    if ids_name is None:
      entries = [(name, None) for name in sorted(f.keys())]
      where_list = h5_path
    else:
      where_list = os.path.join(root, ids_name)
      entries = read_id_list(where_list)
    records = []
    for name, lineno in entries:
      where = f"{where_list}, line {lineno}" if lineno else h5_path
      if name not in f:
        raise KeyError(f"{h5_path} has no group {name!r} (listed in {where}).")
      group = f[name]
      _check_image_dataset(group, h5_path, name)
      pose = _read_pose(group, h5_path, name, pose_dim)
      identity, view, stratum = parse_name(name, kind, where)
      records.append(ViewRecord(name, identity, view, stratum, pose, os.path.abspath(h5_path)))
  if not records:
    raise ValueError(f"No records for {kind}/{split} under {root}.")
  logging.info("M2N %s/%s: %d images of %d identities.", kind, split, len(records),
               len({r.identity for r in records}))
  return records


class ImageReader:
  """Reads record images from their HDF5 files, keeping files open; picklable (reopens after pickling)."""

  def __init__(self):
    self._files = {}

  def __getstate__(self):
    return {}

  def __setstate__(self, state):
    del state
    self._files = {}

  def read(self, record: ViewRecord) -> np.ndarray:
    """(H, W, 3) uint8 image of a record; KeyError naming the file and group when it is missing."""
    f = self._files.get(record.path)
    if f is None:
      f = self._files[record.path] = _h5py().File(record.path, "r")
    if record.name not in f:
      raise KeyError(f"{record.path} has no group {record.name!r}.")
    _check_image_dataset(f[record.name], record.path, record.name)
    return np.asarray(f[record.name]["image"][()], np.uint8)

  def close(self):
    for f in self._files.values():
      f.close()
    self._files = {}


def read_image(record: ViewRecord) -> np.ndarray:
  """(H, W, 3) uint8 image of one record (opens and closes the file; use ImageReader for many)."""
  reader = ImageReader()
  try:
    return reader.read(record)
  finally:
    reader.close()


def iter_examples(root: str, kind: str, split: str) -> Iterator[tuple[str, dict]]:
  """(key, example) pairs for a TFDS builder: example = image (H, W, 3) uint8, pose float32, identity,
  name, view (int64)."""
  reader = ImageReader()
  try:
    for r in load_m2n(root, kind, split):
      yield r.name, {"image": reader.read(r), "pose": r.pose, "identity": r.identity, "name": r.name,
                     "view": np.int64(r.view)}
  finally:
    reader.close()


def pose_statistics(records: Sequence[ViewRecord]) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std) float32 per pose component over records (for `VectorPoseEncoder` 'standardize')."""
  p = np.stack([r.pose for r in records]).astype(np.float64)
  return p.mean(axis=0).astype(np.float32), p.std(axis=0).astype(np.float32)


def group_by_identity(records: Sequence[ViewRecord]) -> dict[str, list[ViewRecord]]:
  """{identity: its records}, identities in first-seen order."""
  groups: dict[str, list[ViewRecord]] = collections.OrderedDict()
  for r in records:
    groups.setdefault(r.identity, []).append(r)
  return groups


def candidate_sources(records_of_identity: Sequence[ViewRecord], target: ViewRecord,
                      window: int | None) -> list[ViewRecord]:
  """The records a target may take sources from (module docstring), in view order.

  Args:
    records_of_identity: records of the target's identity (the pool).
    target: the target record.
    window: None for objects (same stratum, any other view); an int for KITTI (|frame offset| <= window).
  """
  out = [r for r in records_of_identity
         if r.name != target.name and r.identity == target.identity and r.stratum == target.stratum
         and (window is None or 0 < abs(r.view - target.view) <= window)]
  return sorted(out, key=lambda r: (r.view, r.name))


def _draw(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  if len(candidates) >= k:
    return rng.choice(candidates, size=k, replace=False)
  return rng.choice(candidates, size=k, replace=True)


def sample_sources(records_by_identity: dict[str, Sequence[ViewRecord]], target: ViewRecord, k: int,
                   rng: np.random.Generator, window: int | None = None) -> list[ViewRecord]:
  """K source records for `target`: distinct when the candidates suffice, else drawn with replacement.

  Args:
    records_by_identity: `group_by_identity(pool)`.
    target: the target record.
    k: number of sources.
    rng: numpy Generator.
    window: None for objects; the KITTI frame window (`KITTI_WINDOW`).

  Raises ValueError naming the target when it has no candidate at all.
  """
  candidates = candidate_sources(records_by_identity.get(target.identity, ()), target, window)
  if not candidates:
    raise ValueError(f"No source candidates for {target.name!r} in {target.path}.")
  return [candidates[i] for i in _draw(np.arange(len(candidates)), k, rng)]


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


def read_m2n_tuple_list(path: str) -> list[tuple[str, ...]]:
  """M2N's test tuple list (`target source_1 ... source_n` per line) as (sources..., target) tuples."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"M2N tuple list not found: {path}")
  rows = []
  with open(path) as f:
    for lineno, line in enumerate(f, start=1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) < 2:
        raise ValueError(f"{path}, line {lineno}: expected 'target source_1 ...', got {line.strip()!r}.")
      rows.append(tuple(parts[1:]) + (parts[0],))
  return rows


def write_m2n(root: str, kind: str, splits: dict[str, Sequence[tuple[str, np.ndarray, np.ndarray]]]) -> None:
  """Writes an M2N file: `splits` = {split: [(name, image uint8 (H, W, 3), pose)]} (tests, turntable)."""
  os.makedirs(root, exist_ok=True)
  h5_name, _ = file_names(kind, "all")
  with _h5py().File(os.path.join(root, h5_name), "w") as f:
    for split, items in splits.items():
      _, ids_name = file_names(kind, split)
      with open(os.path.join(root, ids_name), "w") as ids:
        for name, image, pose in items:
          g = f.create_group(name)
          g.create_dataset("image", data=np.asarray(image, np.uint8))
          g.create_dataset("pose", data=np.asarray(pose))
          ids.write(name + "\n")
