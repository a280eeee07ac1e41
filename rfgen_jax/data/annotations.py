"""Readers for the PATN/GFLA layout of Market-1501 and DeepFashion (and the synthetic set, which copies it).

Layout under a data root (`config.data.root`):

    Market-1501 (and synthetic)          DeepFashion (GFLA "resize" release)
    root/train/*.jpg|png                 root/train/fasion*.jpg
    root/test/*.jpg|png                  root/test/fasion*.jpg
    root/market-annotation-train.csv     root/fasion-annotation-train.csv
    root/market-annotation-test.csv      root/fasion-annotation-test.csv
    root/market-pairs-train.csv          root/fasion-resize-pairs-train.csv   (optional, not used for tuples)
    root/market-pairs-test.csv           root/fasion-resize-pairs-test.csv    (optional)

Annotation CSVs are `:`-separated with the header `name:keypoints_y:keypoints_x`; each keypoint column is a
JSON list of 18 numbers (OpenPose/COCO order), -1 where the joint is missing. Keypoints are `(y, x)` pixel
coordinates in the image file's own size. Pair CSVs are `,`-separated with the header `from,to`.

Identity rules (used to group images into multi-source tuples):
- Market-1501 / synthetic: the part of the file name before the first `_` (`0002_c1s1_000451_03.jpg` ->
  `0002`). The ids `-1` (junk) and `0000` (distractors) are dropped.
- DeepFashion: the clothing item id. GFLA/PATN names flatten `MEN/Denim/id_00000080/01_1_front.jpg` to
  `fasionMENDenimid0000008001_1front.jpg` (some copies spell the prefix `fashion`); the id is the text after
  the `fasion`/`fashion` prefix up to and including `id` + 8 digits: `MENDenimid00000080`.

Filtering (the rule of ABF, the multi-source baseline): an image missing a shoulder or a hip (any of
r_shoulder=2, l_shoulder=5, r_hip=8, l_hip=11 is -1) is dropped. Identities with fewer than 2 usable
images cannot form a tuple and are dropped. Every drop is counted in the log.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
from typing import Sequence

from absl import logging
import numpy as np

NUM_KEYPOINTS = 18
# r_shoulder, l_shoulder, r_hip, l_hip in the OpenPose/COCO-18 order.
REQUIRED_JOINTS = (2, 5, 8, 11)
MARKET_DISTRACTOR_IDS = ("-1", "0000")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

_DEEPFASHION_ID = re.compile(r"^(?:fashion|fasion)?(.+?id\d{8})")


@dataclasses.dataclass(frozen=True)
class Layout:
  """File names of one data set's layout, relative to the data root."""
  annotation: str   # format string with {split}
  pairs: str        # format string with {split}
  identity_rule: str  # "market" | "deepfashion"


LAYOUTS = {
    "market": Layout("market-annotation-{split}.csv", "market-pairs-{split}.csv", "market"),
    "synthetic": Layout("market-annotation-{split}.csv", "market-pairs-{split}.csv", "market"),
    "deepfashion": Layout("fasion-annotation-{split}.csv", "fasion-resize-pairs-{split}.csv", "deepfashion"),
}


@dataclasses.dataclass(frozen=True)
class Record:
  """One usable image.

  Attributes:
    name: file name, e.g. `0002_c1s1_000451_03.jpg`.
    path: absolute path of the image file.
    identity: the grouping key (person id or clothing item id).
    keypoints: (18, 2) float32, (y, x) pixels in the file's own size, -1 where missing.
  """
  name: str
  path: str
  identity: str
  keypoints: np.ndarray


def layout_for(dataset: str) -> Layout:
  if dataset not in LAYOUTS:
    raise ValueError(f"Unknown data set {dataset!r}; the PATN/GFLA readers know {sorted(LAYOUTS)}.")
  return LAYOUTS[dataset]


def identity_of(name: str, rule: str) -> str:
  """The identity of a file name under `rule` ("market" or "deepfashion"); see the module docstring."""
  if rule == "market":
    return name.split("_", 1)[0]
  if rule == "deepfashion":
    match = _DEEPFASHION_ID.match(name)
    if not match:
      raise ValueError(f"DeepFashion file name {name!r} has no clothing item id ('id' + 8 digits).")
    return match.group(1)
  raise ValueError(f"Unknown identity rule {rule!r}.")


def _parse_list(text: str, path: str, lineno: int, column: str, num_keypoints: int,
                unit: str) -> list[float]:
  try:
    values = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}, line {lineno}: column {column} is not a JSON list ({e}): {text[:80]!r}") from e
  if not isinstance(values, list) or len(values) != num_keypoints:
    got = len(values) if isinstance(values, list) else type(values).__name__
    raise ValueError(f"{path}, line {lineno}: expected {num_keypoints} {unit} in column {column}, got {got}.")
  return values


def read_annotations(path: str, num_keypoints: int = NUM_KEYPOINTS,
                     columns: tuple[str, str] = ("keypoints_y", "keypoints_x"), unit: str = "values",
                     what: str = "Annotation file") -> dict[str, np.ndarray]:
  """Reads a `name:keypoints_y:keypoints_x` annotation CSV (or the same format with other columns).

  Args:
    path: the CSV file.
    num_keypoints: keypoints per row (18).
    columns: names of the y and x columns (error messages; e.g. landmarks_y, landmarks_x).
    unit: what the values are called in error messages.
    what: what the file is called in the not-found error.

  Returns:
    {file name: (num_keypoints, 2) float32 array of (y, x) pixels, -1 where missing}, in file order.

  Raises:
    FileNotFoundError naming the file; ValueError naming the file and line for a malformed row.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} not found: {path}")
  result: dict[str, np.ndarray] = {}
  with open(path) as f:
    for lineno, line in enumerate(f, start=1):
      line = line.strip()
      if not line:
        continue
      parts = line.split(":")
      if lineno == 1 and parts[0].strip() == "name":
        continue
      if len(parts) != 3:
        raise ValueError(f"{path}, line {lineno}: expected 3 ':'-separated columns "
                         f"(name:{columns[0]}:{columns[1]}), got {len(parts)}.")
      name = parts[0].strip()
      ys = _parse_list(parts[1], path, lineno, columns[0], num_keypoints, unit)
      xs = _parse_list(parts[2], path, lineno, columns[1], num_keypoints, unit)
      kp = np.stack([np.asarray(ys, np.float32), np.asarray(xs, np.float32)], axis=-1)
      kp[(kp < 0).any(axis=-1)] = -1.0
      result[name] = kp
  return result


def read_pairs(path: str) -> list[tuple[str, str]]:
  """Reads a `from,to` pair CSV into a list of (source name, target name)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Pair file not found: {path}")
  pairs = []
  with open(path) as f:
    for lineno, line in enumerate(f, start=1):
      line = line.strip()
      if not line:
        continue
      parts = [p.strip() for p in line.split(",")]
      if lineno == 1 and parts[:2] == ["from", "to"]:
        continue
      if len(parts) < 2:
        raise ValueError(f"{path}, line {lineno}: expected 'from,to', got {line[:80]!r}.")
      pairs.append((parts[-2], parts[-1]))   # some copies carry a leading index column
  return pairs


def has_required_joints(keypoints: np.ndarray) -> bool:
  """ABF's rule: both shoulders and both hips are present."""
  return bool((keypoints[list(REQUIRED_JOINTS)] >= 0).all())


def load_split(root: str, dataset: str, split: str, num_keypoints: int = NUM_KEYPOINTS,
               skip_missing_images: bool = False) -> list[Record]:
  """Reads one split into usable records (filtered as the module docstring says), sorted by name.

  Args:
    root: the data root.
    dataset: "market", "deepfashion" or "synthetic".
    split: "train" or "test".
    num_keypoints: keypoints per annotation row.
    skip_missing_images: True: an annotated image absent from the folder is skipped and counted;
      False: it raises FileNotFoundError naming the file.

  Returns:
    The usable records, sorted by file name; every identity has at least 2 of them.
  """
  layout = layout_for(dataset)
  annotations = read_annotations(os.path.join(root, layout.annotation.format(split=split)), num_keypoints)
  image_dir = os.path.join(root, split)
  if not os.path.isdir(image_dir):
    raise FileNotFoundError(f"Image folder not found: {image_dir}")
  on_disk = set(os.listdir(image_dir))
  counts = collections.Counter()
  kept = []
  for name in sorted(annotations):
    kp = annotations[name]
    identity = identity_of(name, layout.identity_rule)
    if layout.identity_rule == "market" and identity in MARKET_DISTRACTOR_IDS:
      counts["distractor"] += 1
      continue
    if not has_required_joints(kp):
      counts["missing shoulder or hip"] += 1
      continue
    if name not in on_disk:
      if not skip_missing_images:
        raise FileNotFoundError(f"Image listed in the annotations is missing: {os.path.join(image_dir, name)}")
      counts["missing image file"] += 1
      logging.warning("Skipping missing image %s", os.path.join(image_dir, name))
      continue
    kept.append(Record(name, os.path.join(image_dir, name), identity, kp))
  per_identity = collections.Counter(r.identity for r in kept)
  lonely = {i for i, n in per_identity.items() if n < 2}
  if lonely:
    counts["identity with < 2 usable images"] = sum(per_identity[i] for i in lonely)
    kept = [r for r in kept if r.identity not in lonely]
  logging.info("%s/%s: %d usable images of %d identities (%d annotated); dropped: %s (%d identities "
               "with < 2 usable images).", dataset, split, len(kept), len(per_identity) - len(lonely),
               len(annotations), dict(counts) or "none", len(lonely))
  if not kept:
    raise ValueError(f"{dataset}/{split} under {root}: no usable images (dropped: {dict(counts)}).")
  return kept


def group_by_identity(identities: Sequence[str]) -> dict[str, np.ndarray]:
  """{identity: int64 array of the indices with that identity}, identities in first-seen order."""
  groups: dict[str, list[int]] = {}
  for i, identity in enumerate(identities):
    groups.setdefault(identity, []).append(i)
  return {k: np.asarray(v, np.int64) for k, v in groups.items()}
