"""A trained generator and its test set, for the app (`tools/app.py`) and the animator (`tools/animate.py`).

`ModelSession(workdir)` restores the generator of a training run (`rfgen_jax.inference.restore_generator`,
config from `<workdir>/config.json` unless one is given), or with `release=` takes a released model's
(`rfgen_jax.runtime.pretrained.load_release`, `--pretrained=NAME`), opens its test split lazily and answers:

- `test_names()`, `test_example(name)`: a test record as (image uint8 (H, W, 3), pose), where the pose
  is (J, 2) (y, x) keypoints / landmarks at the model's size, or a camera pose vector;
- `test_tuple(i, k)`: the i-th fixed evaluation tuple with K sources (the evaluator's tuples);
- `encode_pose(pose)`: the pose map (H, W, P) of a test pose or of edited keypoints;
- `run(source_images, source_poses, target_poses)`: the generator's full output (image and the inner
  maps per level, see `rfgen_jax.models.generator.Generator.__call__`) for one set of K sources and a
  batch of T target poses, computed in batches of `batch_size` on the default device.

The generator's inputs and outputs are described in docs/design.md, "## 2. Generator"; images are
float32 in [-1, 1] NHWC, flows in pixels of their level's map.
"""
from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax.data import pipeline
from rfgen_jax.data import poses as poses_lib
from rfgen_jax.tools import generate as generate_tool

class ModelSession:
  """A restored generator, its config, and lazy access to its test split.

  Raises at construction (messages name the file or flag): FileNotFoundError (no config.json and no
  config given), `inference.NoCheckpointError`, `checkpointing.IncompatibleCheckpointError`, ValueError.
  """

  def __init__(self, workdir: str | None, config=None, step: int | None = None, batch_size: int = 8,
               release=None):
    """`workdir`: a training run (its latest checkpoint, or `step`); `release`: a
    `pretrained.Release` instead (then `workdir` is None and `config` defaults to the release's)."""
    self.workdir = workdir
    self.release = release
    if release is not None:
      self.config = config if config is not None else release.config
      self.generator, self.params, self.step = inference.released_generator(release)
      self.description = f"the released model {release.name} (step {self.step})"
    else:
      self.config = config if config is not None else generate_tool.load_config(None, workdir)
      self.generator, self.params, self.step = inference.restore_generator(self.config, workdir, step)
      self.description = f"the checkpoint of step {self.step}"
    self.image_size = tuple(int(s) for s in self.config.data.image_size)
    self.pose_kind = pipeline.pose_kind(self.config)
    self.batch_size = int(batch_size)
    self._index = None
    self._loader = None
    self._encoder = None
    self._tuples: dict[int, np.ndarray] = {}

  # -------------------------------------------------------------- test split
  def _split(self):
    if self._index is None:
      pipeline.ensure_dataset(self.config)   # generates a synthetic set if absent; names what a real one lacks
      self._index = pipeline.open_split(self.config, "test")
      # The evaluator's loader (no augmentation): the same resize and pose encoding as evaluation.
      self._loader = pipeline._TupleLoader(self.config, self._index, train=False)  # pylint: disable=protected-access
      self._encoder = self._loader.encoder
    return self._index

  @property
  def encoder(self) -> poses_lib.PoseEncoder:
    if self._encoder is None:
      if self.pose_kind == "keypoints":
        self._encoder = poses_lib.make_pose_encoder(self.config)
      else:   # camera encoders may need the training split's statistics: take the test loader's
        self._split()
    return self._encoder

  def test_names(self) -> list[str]:
    return list(self._split().names)

  def _record_index(self, name: str) -> int:
    names = self._split().names
    try:
      return names.index(name)
    except ValueError:
      raise errors.MissingEntryError(f"No test record named {name!r} in {self._index.description}.") from None

  def test_example(self, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 at the model's size, raw pose) of a test record.

    The raw pose is (J, 2) (y, x) keypoints or landmarks at the model's size (-1 missing), or the
    camera pose vector of the record (what `encode_pose` takes).
    """
    i = self._record_index(name)
    image, _, points = self._loader.load_image(i, None)
    if points is None:
      pose = np.asarray(self._index.source[i]["pose"], np.float32)
    else:
      pose = np.asarray(points, np.float32)
    return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8), pose

  def test_tuple(self, i: int, k: int) -> tuple[list[str], str]:
    """(K source names, target name) of the i-th fixed evaluation tuple with K sources."""
    if k < 1:
      raise errors.BadInputError(f"K must be >= 1, got {k}.")
    if k not in self._tuples:
      index = self._split()
      batches = pipeline.EvalBatches(self.config, k, 0, 1, index)
      self._tuples[k] = batches.tuples
    rows = self._tuples[k]
    if not 0 <= i < len(rows):
      raise errors.BadInputError(f"Test tuple {i} does not exist; there are {len(rows)} (0 to {len(rows) - 1}).")
    names = self._index.names
    return [names[j] for j in rows[i][:-1]], names[rows[i][-1]]

  # -------------------------------------------------------------- poses and generation
  def encode_pose(self, pose: np.ndarray) -> np.ndarray:
    """(H, W, P) float32 pose map of a raw pose (keypoints at the model's size or a camera pose)."""
    return np.asarray(self.encoder.encode(np.asarray(pose, np.float32), self.image_size), np.float32)

  def run(self, source_images: Sequence[np.ndarray], source_poses: Sequence[np.ndarray],
          target_poses: Sequence[np.ndarray]) -> dict:
    """The generator's outputs for K sources and T target poses.

    Args:
      source_images: K images (H, W, 3), uint8 or float in [-1, 1], at the model's size.
      source_poses: K raw poses (for `encode_pose`) or pose maps (H, W, P).
      target_poses: T raw poses or pose maps.

    Returns:
      dict of numpy arrays with a leading T axis: `image` (T, H, W, 3) in [-1, 1], and per level
      (lists) `flows`, `initial_flows` (T, K, h, w, 2), `occlusion`, `attention` (T, K, h, w, 1).
      Generated in batches of `batch_size` targets (the last batch padded to the same shape, so one
      compilation serves every batch).
    """
    k = len(source_images)
    if k == 0:
      raise errors.BadInputError("No source images given (K = 0); choose at least one source.")
    if len(source_poses) != k:
      raise errors.BadInputError(f"{k} source images but {len(source_poses)} source poses.")
    if len(target_poses) == 0:
      raise errors.BadInputError("No target pose given.")
    images = np.stack([self._as_float_image(im) for im in source_images])
    maps = np.stack([self._as_pose_map(p) for p in source_poses])
    targets = np.stack([self._as_pose_map(p) for p in target_poses])
    t, b = len(targets), max(1, min(self.batch_size, len(targets)))
    chunks = []
    for start in range(0, t, b):
      target = targets[start:start + b]
      n = len(target)
      if n < b:
        target = np.concatenate([target, np.repeat(target[-1:], b - n, axis=0)])
      batch = {"source_images": np.broadcast_to(images, (b,) + images.shape),
               "source_poses": np.broadcast_to(maps, (b,) + maps.shape), "target_pose": target}
      chunks.append(jax.tree.map(lambda a, n=n: a[:n], inference.generator_outputs(self.generator, self.params, batch)))
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *chunks)

  def _as_float_image(self, image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.shape != self.image_size + (3,):
      raise errors.BadInputError(f"Source image of shape {image.shape}; the model takes {self.image_size + (3,)} "
                       "(use inference.fit_image to bring a photo to that size).")
    if image.dtype == np.uint8:
      return image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return image.astype(np.float32)

  def _as_pose_map(self, pose: np.ndarray) -> np.ndarray:
    pose = np.asarray(pose, np.float32)
    if pose.ndim == 3:
      expected = self.image_size + (int(self.config.data.pose_channels),)
      if pose.shape != expected:
        raise errors.BadInputError(f"Pose map of shape {pose.shape}; the model takes {expected}.")
      return pose
    return self.encode_pose(pose)


def to_uint8(image: np.ndarray) -> np.ndarray:
  """[-1, 1] float (..., H, W, 3) -> uint8."""
  return np.clip(np.round((np.asarray(image, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def default_keypoints_python() -> str | None:
  """The keypoints environment's python (requirements-keypoints.txt), if installed: $RFGEN_KEYPOINTS_PYTHON
  or ~/.venvs/rfgen-keypoints/bin/python."""
  for candidate in (os.environ.get("RFGEN_KEYPOINTS_PYTHON"),
                    os.path.expanduser("~/.venvs/rfgen-keypoints/bin/python")):
    if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
      return candidate
  return None
