"""VoxCeleb2 faces (data set `voxceleb2`, paper Table 3): frames with 68 facial landmarks, by identity and video.

Layout under a data root (`config.data.root`); VoxCeleb2's `dev` set is the `train` split here:

    root/{split}/{identity}/{video}/{frame}.png|jpg      split = train | test, e.g.
    root/{split}/{identity}/{video}/landmarks.csv        root/train/id00012/21Uxsk56VDQ/00001.png

`landmarks.csv` is `:`-separated with the header `name:landmarks_y:landmarks_x` (the PATN/GFLA keypoint
CSV convention of `annotations.py`): `name` is the frame's file name in that folder, and each landmark
column a JSON list of 68 numbers (iBUG 300-W order, as dlib / face_alignment give), (y, x) pixels in the
frame file's own size, -1 where missing. `write_landmarks_csv` writes one from (F, 68, 2) arrays.

Records: one per frame listed in a `landmarks.csv` (frames without a row are not used; a row whose frame
file is missing is an error naming the file). Identity = the identity folder; `name` =
`{identity}/{video}/{frame}`. Identities with fewer than 2 frames are dropped (counted in the log).

Sources (`FaceSourceSampler`): other frames of the target's identity, other videos first: the K sources
are drawn without replacement from the frames of the identity's other videos; when those are fewer than
K, all of them are taken and the rest are drawn from the target's own video (never the target itself),
and only when all candidates are fewer than K are they drawn with replacement.

Bad input raises errors naming the file and line: a missing folder or CSV, a malformed row, a landmark
list of the wrong length. Frames are read in place (no prepared copy); opening a split reads the CSVs only.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Sequence

from absl import logging
import numpy as np

from rfgen_jax import errors
from rfgen_jax.data import annotations
from rfgen_jax.data import registry
from rfgen_jax.data import tuples as tuples_lib
from rfgen_jax.data.split_index import FileSource
from rfgen_jax.data.split_index import SplitIndex

NUM_LANDMARKS = 68
LANDMARKS_FILE = "landmarks.csv"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

_HELP = """\
VoxCeleb2 frames were not found at {root}.
The videos come from the VoxCeleb2 authors (Chung et al., Interspeech 2018:
https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html); extract frames and 68 facial landmarks per
frame (e.g. with face_alignment) into this layout (rfgen_jax/data/datasets/voxceleb.py):
  {root}/
    train/{{identity}}/{{video}}/{{frame}}.png|jpg     e.g. train/id00012/21Uxsk56VDQ/00001.png
    train/{{identity}}/{{video}}/landmarks.csv        name:landmarks_y:landmarks_x, JSON lists of 68
    test/...                                       (y, x) pixels in the frame's size, -1 missing
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR   (camera poses)
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR   (body keypoints)"""


@dataclasses.dataclass(frozen=True)
class FaceRecord:
  """One frame.

  Attributes:
    name: `{identity}/{video}/{frame file}`.
    identity: the identity folder, e.g. `id00012`.
    video: the video folder.
    path: absolute path of the frame file.
    landmarks: (68, 2) float32, (y, x) pixels in the file's own size, -1 missing.
  """
  name: str
  identity: str
  video: str
  path: str
  landmarks: np.ndarray


def read_landmarks_csv(path: str, num_landmarks: int = NUM_LANDMARKS) -> dict[str, np.ndarray]:
  """{frame file name: (num_landmarks, 2) float32 (y, x), -1 missing}, in file order.

  The format of the PATN annotation CSVs with landmark columns; errors name the file and line.
  """
  return annotations.read_annotations(path, num_landmarks, columns=("landmarks_y", "landmarks_x"),
                                      unit="landmarks", what="Landmark file")


def write_landmarks_csv(path: str, names: Sequence[str], landmarks: np.ndarray, xy: bool = False) -> None:
  """Writes `landmarks.csv` for frames `names` from (F, 68, 2) landmarks ((y, x); (x, y) with xy=True)."""
  lm = np.asarray(landmarks, np.float64)
  if lm.ndim != 3 or lm.shape[0] != len(names) or lm.shape[2] != 2:
    raise ValueError(f"Expected ({len(names)}, L, 2) landmarks, got {lm.shape}.")
  if xy:
    lm = lm[..., ::-1]
  with open(path, "w") as f:
    f.write("name:landmarks_y:landmarks_x\n")
    for name, row in zip(names, lm):
      ys = json.dumps([round(float(v), 2) for v in row[:, 0]])
      xs = json.dumps([round(float(v), 2) for v in row[:, 1]])
      f.write(f"{name}:{ys}:{xs}\n")


def load_split(root: str, split: str, num_landmarks: int = NUM_LANDMARKS) -> list[FaceRecord]:
  """All usable frames of a split, sorted by name (see the module docstring)."""
  split_dir = os.path.join(root, split)
  if not os.path.isdir(split_dir):
    raise errors.MissingFileError(
        f"VoxCeleb2 split folder not found: {split_dir} (layout: rfgen_jax/data/datasets/voxceleb.py).")
  records = []
  for identity in sorted(os.listdir(split_dir)):
    id_dir = os.path.join(split_dir, identity)
    if not os.path.isdir(id_dir):
      continue
    for video in sorted(os.listdir(id_dir)):
      video_dir = os.path.join(id_dir, video)
      if not os.path.isdir(video_dir):
        continue
      csv_path = os.path.join(video_dir, LANDMARKS_FILE)
      if not os.path.isfile(csv_path):
        logging.warning("No %s in %s; skipping the video.", LANDMARKS_FILE, video_dir)
        continue
      on_disk = set(os.listdir(video_dir))
      for frame, lm in read_landmarks_csv(csv_path, num_landmarks).items():
        if frame not in on_disk:
          raise errors.MissingFileError(f"Frame listed in {csv_path} is missing: {os.path.join(video_dir, frame)}")
        records.append(FaceRecord(f"{identity}/{video}/{frame}", identity, video,
                                  os.path.abspath(os.path.join(video_dir, frame)), lm))
  counts = collections.Counter(r.identity for r in records)
  lonely = {i for i, n in counts.items() if n < 2}
  if lonely:
    logging.info("VoxCeleb2/%s: dropping %d identities with fewer than 2 frames.", split, len(lonely))
    records = [r for r in records if r.identity not in lonely]
  if not records:
    raise ValueError(f"VoxCeleb2/{split} under {root}: no usable frames.")
  logging.info("VoxCeleb2/%s: %d frames of %d identities.", split, len(records), len(counts) - len(lonely))
  return sorted(records, key=lambda r: r.name)


class FaceSourceSampler:
  """Index-based source sampling (the interface of `tuples.TupleSampler`): other videos preferred.

  Args:
    identities, videos: identity and video of every frame, indexed like the data source.
  """

  def __init__(self, identities: Sequence[str], videos: Sequence[str]):
    self.identities = [str(i) for i in identities]
    self.videos = [str(v) for v in videos]
    self.num_images = len(self.identities)
    groups: dict[str, list[int]] = {}
    for i, identity in enumerate(self.identities):
      groups.setdefault(identity, []).append(i)
    self._groups = {k: np.asarray(v, np.int64) for k, v in groups.items()}
    lonely = [k for k, v in self._groups.items() if len(v) < 2]
    if lonely:
      raise ValueError(f"Identities with fewer than 2 frames cannot form tuples: {lonely[:5]} ...")

  def split_others(self, target: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames of the identity's other videos, other frames of the target's video), ascending."""
    members = self._groups[self.identities[target]]
    members = members[members != target]
    same = np.asarray([self.videos[i] == self.videos[target] for i in members], bool)
    return members[~same], members[same]

  def others(self, target: int) -> np.ndarray:
    """All candidates, other videos first."""
    other_videos, same_video = self.split_others(int(target))
    return np.concatenate([other_videos, same_video])

  def sample_sources(self, target: int, num_sources: int, rng: np.random.Generator) -> np.ndarray:
    """(num_sources,) int64 frame indices (module docstring), never the target."""
    other_videos, same_video = self.split_others(int(target))
    if len(other_videos) >= num_sources:
      return rng.choice(other_videos, size=num_sources, replace=False)
    rest = num_sources - len(other_videos)
    if len(same_video) >= rest:
      return np.concatenate([rng.permutation(other_videos), rng.choice(same_video, size=rest, replace=False)])
    return rng.choice(np.concatenate([other_videos, same_video]), size=num_sources, replace=True)


def make_test_tuples(sampler: FaceSourceSampler, num_sources: int, seed: int, num_tuples: int = 0) -> np.ndarray:
  """Fixed evaluation tuples (T, K + 1) (sources..., target), other videos first, nested in K.

  Tuple i draws with a generator seeded by (seed, i): a permutation of the other videos' frames followed
  by a permutation of the target video's other frames, filled with seeded draws with replacement when
  there are fewer than K. num_tuples: 0 = one per frame in index order; > 0 = that many, targets a
  seeded permutation (cycled).
  """
  def candidates(target, rng):
    other_videos, same_video = sampler.split_others(target)
    return np.concatenate([rng.permutation(other_videos), rng.permutation(same_video)])

  return tuples_lib.seeded_test_tuples(np.arange(sampler.num_images), candidates, num_sources, seed,
                                       num_tuples)


# ------------------------------------------------------------------------------------------ data set
def _prepare(config) -> None:
  """Checks the root and its split folders; FileNotFoundError with the expected layout otherwise."""
  root = config.data.root
  text = _HELP.format(root=os.path.abspath(root or "."))
  if not root or not os.path.isdir(root):
    raise errors.MissingFileError(text)
  missing = [os.path.join(root, s) for s in ("train", "test") if not os.path.isdir(os.path.join(root, s))]
  if missing:
    raise errors.MissingFileError(f"{config.data.name} data root {root} is incomplete; missing: "
                                  f"{', '.join(missing)}.\n" + text.split("\n", 1)[1])


def _open_split(config, split: str) -> SplitIndex:
  """The SplitIndex of a VoxCeleb2 split; errors name the landmark file and line."""
  root = os.path.abspath(config.data.root)
  records = load_split(root, split, int(config.data.num_landmarks))
  sampler = FaceSourceSampler([r.identity for r in records], [r.video for r in records])

  def make_tuples(num_sources: int, seed: int, num_tuples: int) -> np.ndarray:
    return make_test_tuples(sampler, num_sources, seed, num_tuples)

  return SplitIndex(FileSource([r.path for r in records], [r.landmarks for r in records]),
                    [r.name for r in records], [r.identity for r in records],
                    f"{os.path.join(root, split)} (VoxCeleb2 layout)", sampler=sampler,
                    make_test_tuples=make_tuples)


VOXCELEB2 = registry.register(registry.DataSet(
    name="voxceleb2", pose_kind="landmarks", summary="VoxCeleb2 face frames with 68 landmarks (paper Table 3)",
    prepare=_prepare, open_split=_open_split,
    fingerprint_files=lambda config: [os.path.join(config.data.root, s) for s in ("train", "test")]))
