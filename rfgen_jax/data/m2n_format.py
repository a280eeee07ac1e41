"""The Multi-view to Novel view (M2N; Sun et al., ECCV 2018) HDF5 format: reading and writing its files.

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
  not document its parametrisation; we treat it as an opaque 6-vector, see `rfgen_jax/data/poses/camera.py`).
  Identity = the drive; view = the frame number; stratum = 0.

M2N maps object images to `1 - x / 127.5` (a sign flip); we use the project's `x / 127.5 - 1` everywhere.

Bad input raises errors naming the file and the entry: a missing file, an id absent from the HDF5 file,
a group without `image` or `pose`, a pose of the wrong length, an image that is not (H, W, 3). The data
sets built on this format (ShapeNet chairs and cars, KITTI, the synthetic turntable) and their source
rules are in `rfgen_jax/data/datasets/m2n.py`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from absl import logging
import numpy as np

from rfgen_jax import errors

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
    raise errors.MissingFileError(f"M2N id list not found: {path}")
  with open(path) as f:
    return [(line.strip(), i) for i, line in enumerate(f, start=1) if line.strip()]


def _h5py():
  import h5py  # pylint: disable=g-import-not-at-top  (only the camera-pose data sets need h5py)
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
    raise errors.MissingFileError(
        f"M2N data file not found: {h5_path} (expected layout: see rfgen_jax/data/m2n_format.py).")
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
