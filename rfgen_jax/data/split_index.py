"""What a data set's reader hands the pipeline for one split, and the per-process cache of it.

A `SplitIndex` holds a random-access, picklable `source` (`len(source)`, `source[i]` -> a record dict
with `image` (encoded bytes or an (H, W, 3) uint8 array) and `pose` (the raw pose: (J, 2) points or a
camera vector)), and the metadata read once when the split is opened: names, identities, optionally
the training targets, the source sampler, the fixed test-tuple rule and pose statistics. Metadata comes
from the annotation files (or, for TFDS, from the index stored with the prepared split), never from
decoding the images.

`cached_split(config, split, open_fn, files)` opens a split once per process: the index is kept under
the data section of the config, the split and the size and mtime of the data set's index files, so
evaluating K = 1, 2, 3 (or sampling during training) reuses it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any, Callable, Sequence

import numpy as np

# (num_sources, seed, num_tuples) -> (T, K + 1) int64 source indices (sources..., target).
TupleMaker = Callable[[int, int, int], np.ndarray]


@dataclasses.dataclass
class SplitIndex:
  """A prepared split: the grain-readable source and the per-record metadata read once at start-up.

  Attributes:
    source: random access (`len`, `[i]` -> {"image": bytes or (H, W, 3) uint8, "pose": raw pose}),
      picklable (grain workers get a copy).
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


class FileSource:
  """Random access to image files with their points: `source[i]` = {"image": file bytes, "pose": (J, 2)}.

  Args:
    paths: the image files.
    points: (J, 2) float32 (y, x) pixels in each file's own size, -1 missing, one per path.
  """

  def __init__(self, paths: Sequence[str], points: Sequence[np.ndarray]):
    self.paths = list(paths)
    self.points = list(points)

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, Any]:
    path = self.paths[int(index)]
    try:
      with open(path, "rb") as f:
        data = f.read()
    except OSError as e:
      raise FileNotFoundError(f"Cannot read image {path} ({e}).") from e
    return {"image": data, "pose": self.points[int(index)]}


# ------------------------------------------------------------------------------------------ cache
_CACHE: dict[tuple, SplitIndex] = {}
_LOCK = threading.Lock()


def _stat(path: str) -> tuple:
  try:
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns
  except OSError:
    return path, None, None


def cache_key(config, split: str, files: Sequence[str]) -> tuple:
  """The cache key of a split: the data section (as JSON), the split, and (path, size, mtime) of files."""
  section = json.dumps(config.data.to_dict(), sort_keys=True, default=str)
  return section, split, tuple(_stat(os.path.abspath(f)) for f in files)


def cached_split(config, split: str, open_fn: Callable[[Any, str], SplitIndex],
                 files: Callable[[], Sequence[str]] = lambda: ()) -> SplitIndex:
  """`open_fn(config, split)` once per process for the same config data section, split and files.

  `files()` lists the data set's index files; it is called before and after `open_fn` (which may
  generate or prepare them), and the index is kept under both keys.
  """
  key = cache_key(config, split, files())
  with _LOCK:
    index = _CACHE.get(key)
  if index is None:
    index = open_fn(config, split)
    with _LOCK:
      _CACHE[key] = index
      _CACHE[cache_key(config, split, files())] = index
  return index


def clear_cache() -> None:
  """Forgets every opened split (tests; a long-lived process whose data changed in place)."""
  with _LOCK:
    _CACHE.clear()
