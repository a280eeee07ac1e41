"""The PATN/GFLA keypoint annotation format, and reading one split of a folder laid out with it.

Annotation CSVs are `:`-separated with the header `name:keypoints_y:keypoints_x`; each keypoint column is a
JSON list of J numbers (18, OpenPose/COCO order, for Market-1501 and DeepFashion), -1 where the joint is
missing. Keypoints are `(y, x)` pixel coordinates in the image file's own size. An optional fourth
column `identity` (header `name:keypoints_y:keypoints_x:identity`) names each image's identity (the
`folder` data set, `rfgen_jax/data/datasets/image_folder.py`). `tools/pose_keypoints.py` writes this
format for a folder of photos.

A `Layout` says where a data set keeps its CSVs and how a file name maps to an identity (Market-1501:
`rfgen_jax/data/datasets/market.py`, DeepFashion: `deepfashion.py`). `load_split` reads one split and
filters it with the rule of ABF, the multi-source baseline: an image missing a shoulder or a hip (any of
r_shoulder=2, l_shoulder=5, r_hip=8, l_hip=11 is -1) is dropped (18 OpenPose joints only). Identities with
fewer than 2 usable images cannot form a tuple and are dropped. Every drop is counted in the log.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Callable

from absl import logging
import numpy as np

from rfgen_jax import errors

NUM_KEYPOINTS = 18
# r_shoulder, l_shoulder, r_hip, l_hip in the OpenPose/COCO-18 order.
REQUIRED_JOINTS = (2, 5, 8, 11)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where one data set keeps its annotation CSVs and how its images get identities.

  Attributes:
    name: the data set (messages).
    annotation: the annotation CSV relative to the data root, a format string with {split}.
    identity: `identity(file name) -> identity`; None = the CSV's `identity` column.
    distractors: identities to drop (Market-1501's junk `-1` and distractors `0000`).
    pairs: the optional pair CSV of the PATN/GFLA release (format string with {split}; not read).
  """
  name: str
  annotation: str
  identity: Callable[[str], str] | None
  distractors: tuple[str, ...] = ()
  pairs: str = ""


@dataclasses.dataclass(frozen=True)
class Record:
  """One usable image.

  Attributes:
    name: file name relative to the split folder, e.g. `0002_c1s1_000451_03.jpg`.
    path: absolute path of the image file.
    identity: the grouping key (person id or clothing item id).
    keypoints: (J, 2) float32, (y, x) pixels in the file's own size, -1 where missing.
  """
  name: str
  path: str
  identity: str
  keypoints: np.ndarray


def _parse_list(text: str, path: str, lineno: int, column: str, num_keypoints: int,
                unit: str) -> list[float]:
  try:
    values = json.loads(text)
  except json.JSONDecodeError as e:
    raise errors.BadInputError(f"{path}, line {lineno}: column {column} is not a JSON list ({e}): {text[:80]!r}") from e
  if not isinstance(values, list) or len(values) != num_keypoints:
    got = len(values) if isinstance(values, list) else type(values).__name__
    raise errors.BadInputError(f"{path}, line {lineno}: expected {num_keypoints} {unit} in column {column}, got {got}.")
  if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
    raise errors.BadInputError(f"{path}, line {lineno}: column {column} must hold numbers, got {text[:80]!r}.")
  return values


def read_annotation_table(path: str, num_keypoints: int = NUM_KEYPOINTS,
                          columns: tuple[str, str] = ("keypoints_y", "keypoints_x"), unit: str = "values",
                          what: str = "Annotation file") -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
  """Reads an annotation CSV: ({name: (J, 2) keypoints}, {name: identity} or None without the column).

  Args:
    path: the CSV file.
    num_keypoints: keypoints per row (18).
    columns: names of the y and x columns (error messages; e.g. landmarks_y, landmarks_x).
    unit: what the values are called in error messages.
    what: what the file is called in the not-found error.

  Raises:
    FileNotFoundError naming the file; ValueError naming the file and line for a malformed row.
  """
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"{what} not found: {path}")
  result: dict[str, np.ndarray] = {}
  identities: dict[str, str] | None = None
  width = 3
  try:
    with open(path) as f:
      text = f.read()
  except UnicodeDecodeError:
    raise errors.BadInputError(f"{path}: not a text file; {what.lower()}s are CSVs of "
                               f"name:{columns[0]}:{columns[1]} rows.") from None
  for lineno, line in enumerate(text.splitlines(), start=1):
    line = line.strip()
    if not line:
      continue
    parts = line.split(":")
    if lineno == 1 and parts[0].strip() == "name":
      if len(parts) == 4 and parts[3].strip() == "identity":
        width, identities = 4, {}
      continue
    if len(parts) != width:
      extra = ":identity" if width == 4 else ""
      raise errors.BadInputError(f"{path}, line {lineno}: expected {width} ':'-separated columns "
                                 f"(name:{columns[0]}:{columns[1]}{extra}), got {len(parts)}.")
    name = parts[0].strip()
    ys = _parse_list(parts[1], path, lineno, columns[0], num_keypoints, unit)
    xs = _parse_list(parts[2], path, lineno, columns[1], num_keypoints, unit)
    kp = np.stack([np.asarray(ys, np.float32), np.asarray(xs, np.float32)], axis=-1)
    kp[(kp < 0).any(axis=-1)] = -1.0
    result[name] = kp
    if identities is not None:
      identity = parts[3].strip()
      if not identity:
        raise errors.BadInputError(f"{path}, line {lineno}: empty identity for {name!r}.")
      identities[name] = identity
  return result, identities


def read_annotations(path: str, num_keypoints: int = NUM_KEYPOINTS,
                     columns: tuple[str, str] = ("keypoints_y", "keypoints_x"), unit: str = "values",
                     what: str = "Annotation file") -> dict[str, np.ndarray]:
  """{file name: (num_keypoints, 2) float32 (y, x) pixels, -1 missing}, in file order (see above)."""
  return read_annotation_table(path, num_keypoints, columns, unit, what)[0]


def has_required_joints(keypoints: np.ndarray) -> bool:
  """ABF's rule: both shoulders and both hips are present."""
  return bool((keypoints[list(REQUIRED_JOINTS)] >= 0).all())


def load_split(root: str, layout: Layout, split: str, num_keypoints: int = NUM_KEYPOINTS,
               skip_missing_images: bool = False) -> list[Record]:
  """Reads one split into usable records (filtered as the module docstring says), sorted by name.

  Args:
    root: the data root (images in `root/{split}/`, names relative to it).
    layout: the data set's layout.
    split: "train" or "test".
    num_keypoints: keypoints per annotation row.
    skip_missing_images: True: an annotated image absent from the folder is skipped and counted;
      False: it raises FileNotFoundError naming the file.

  Returns:
    The usable records, sorted by file name; every identity has at least 2 of them.
  """
  csv = os.path.join(root, layout.annotation.format(split=split))
  annotations, csv_identities = read_annotation_table(csv, num_keypoints)
  if layout.identity is None and csv_identities is None:
    raise errors.BadInputError(f"{csv}: no 'identity' column (header name:keypoints_y:keypoints_x:identity), and the "
                     f"{layout.name} data set takes identities from it.")
  image_dir = os.path.join(root, split)
  if not os.path.isdir(image_dir):
    raise errors.MissingFileError(f"Image folder not found: {image_dir}")
  counts = collections.Counter()
  kept = []
  for name in sorted(annotations):
    kp = annotations[name]
    identity = layout.identity(name) if layout.identity is not None else csv_identities[name]
    if identity in layout.distractors:
      counts["distractor"] += 1
      continue
    if num_keypoints == NUM_KEYPOINTS and not has_required_joints(kp):
      counts["missing shoulder or hip"] += 1
      continue
    path = os.path.join(image_dir, name)
    if not os.path.isfile(path):
      if not skip_missing_images:
        raise errors.MissingFileError(f"Image listed in the annotations is missing: {path}")
      counts["missing image file"] += 1
      logging.warning("Skipping missing image %s", path)
      continue
    kept.append(Record(name, path, identity, kp))
  per_identity = collections.Counter(r.identity for r in kept)
  lonely = {i for i, n in per_identity.items() if n < 2}
  if lonely:
    counts["identity with < 2 usable images"] = sum(per_identity[i] for i in lonely)
    kept = [r for r in kept if r.identity not in lonely]
  logging.info("%s/%s: %d usable images of %d identities (%d annotated); dropped: %s (%d identities "
               "with < 2 usable images).", layout.name, split, len(kept), len(per_identity) - len(lonely),
               len(annotations), dict(counts) or "none", len(lonely))
  if not kept:
    raise errors.BadInputError(f"{layout.name}/{split} under {root}: no usable images (dropped: {dict(counts)}).")
  return kept
