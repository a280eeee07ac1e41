"""The numpy parts of `rfgen_jax.tools.video_to_dataset`: tracker glue, cropping, the Market-1501 writer.

Nothing here imports OpenCV, mediapipe or supervision, so it runs (and is tested) in the main
environment; the tool passes its detector, tracker and keypoint detector in as plain callables.

Conventions: boxes are `(x0, y0, x1, y1)` float pixels of the frame (x0, y0 the top-left corner of the
first pixel, x1, y1 one past the last), frames are (H, W, 3) uint8 RGB, keypoints are (18, 2) float32
`(y, x)` pixels with pixel centres at integers, -1 where missing (OpenPose/COCO-18 order; see
`rfgen_jax.tools.pose_keypoints`). Frame numbers are 0-based indices into the video.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw

from rfgen_jax.tools import pose_keypoints

# r_shoulder, l_shoulder, r_hip, l_hip (OpenPose/COCO-18): a crop missing one is dropped, as the readers
# (`rfgen_jax.data.annotations.REQUIRED_JOINTS`) would drop it.
REQUIRED_JOINTS = (2, 5, 8, 11)
# OpenPose's COCO-18 limbs (as `rfgen_jax.data.keypoints.LIMBS`), for the contact sheet.
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
         (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))

# A tracker: (boxes (N, 4) xyxy, scores (N,)) of one frame -> (boxes (M, 4), track ids (M,) int).
TrackerFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class TrackPoint:
  """One tracked box: frame number, (4,) float xyxy box in frame pixels."""
  frame: int
  box: np.ndarray


# ------------------------------------------------------------------------------------------ tracking
def update_tracks(tracks: dict[int, list[TrackPoint]], frame: int, boxes: np.ndarray,
                  ids: np.ndarray) -> None:
  """Appends one frame's tracker output to `tracks` ({track id: points in frame order})."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  ids = np.asarray(ids).reshape(-1)
  if len(boxes) != len(ids):
    raise ValueError(f"Tracker returned {len(boxes)} boxes but {len(ids)} ids at frame {frame}.")
  for box, track_id in zip(boxes, ids):
    points = tracks.setdefault(int(track_id), [])
    if points and points[-1].frame == frame:
      continue   # a tracker never reports one id twice in a frame; keep the first if one does
    points.append(TrackPoint(frame, box.copy()))


def run_tracker(detections: Iterable[tuple[int, np.ndarray, np.ndarray]],
                tracker: TrackerFn) -> dict[int, list[TrackPoint]]:
  """Feeds per-frame detections to a tracker and collects its tracks.

  Args:
    detections: (frame number, boxes (N, 4) xyxy, scores (N,)) in frame order; N may be 0.
    tracker: see `TrackerFn`; called once per frame, also for frames without detections (so that it
      ages its lost tracks).

  Returns:
    {track id: [TrackPoint] in frame order}.
  """
  tracks: dict[int, list[TrackPoint]] = {}
  for frame, boxes, scores in detections:
    out_boxes, ids = tracker(np.asarray(boxes, np.float64).reshape(-1, 4),
                             np.asarray(scores, np.float64).reshape(-1))
    update_tracks(tracks, frame, out_boxes, ids)
  return tracks


def track_motion(points: Sequence[TrackPoint]) -> float:
  """How far a track's box centre travels: the diagonal of the centres' bounding box, in median box
  heights (a static false detection stays near 0, a walking person moves several heights)."""
  boxes = np.stack([p.box for p in points])
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2
  extent = centres.max(axis=0) - centres.min(axis=0)
  return float(np.hypot(*extent) / max(np.median(boxes[:, 3] - boxes[:, 1]), 1e-9))


def select_crops(tracks: dict[int, list[TrackPoint]], min_track_frames: int, crop_every: int,
                 min_box_height: float, counts: collections.Counter | None = None,
                 min_motion: float = 0.0) -> dict[int, list[TrackPoint]]:
  """Which boxes of which tracks to crop.

  Tracks seen in fewer than `min_track_frames` frames are dropped (mostly false detections), and so are
  tracks whose `track_motion` is below `min_motion` box heights (static false detections: HOG fires on
  the same patch of background frame after frame; a person standing still is dropped too). Of the
  others every `crop_every`-th point is kept (consecutive frames of a walking person are near
  duplicates), and points whose box is lower than `min_box_height` pixels are dropped.
  Drops are counted in `counts` ("tracks shorter than N frames", "static tracks", "boxes lower than N px").

  Returns:
    {track id: [TrackPoint]} of the kept tracks, in ascending track id order.
  """
  counts = collections.Counter() if counts is None else counts
  if min_track_frames < 1 or crop_every < 1:
    raise ValueError("min_track_frames and crop_every must be >= 1.")
  kept = {}
  for track_id in sorted(tracks):
    points = tracks[track_id]
    if len(points) < min_track_frames:
      counts[f"tracks shorter than {min_track_frames} frames"] += 1
      continue
    if min_motion > 0 and track_motion(points) < min_motion:
      counts[f"static tracks (moving < {min_motion:g} box heights)"] += 1
      continue
    chosen = []
    for point in points[::crop_every]:
      if point.box[3] - point.box[1] < min_box_height:
        counts[f"boxes lower than {min_box_height:g} px"] += 1
        continue
      chosen.append(point)
    if chosen:
      kept[track_id] = chosen
  return kept


# ------------------------------------------------------------------------------------------ cropping
def crop_window(box: Sequence[float], aspect: float, margin: float) -> tuple[float, float, float, float]:
  """The crop around a box at the model's aspect ratio.

  Args:
    box: (x0, y0, x1, y1) pixels.
    aspect: height / width of the crop (Market-1501 128x64: 2.0).
    margin: added on each side, as a fraction of the box height.

  Returns:
    (x0, y0, x1, y1) float pixels of a window of height/width == aspect centred on the box, at least the
    box plus its margin in both directions (it may reach outside the frame).
  """
  x0, y0, x1, y1 = (float(v) for v in box)
  if not (x1 > x0 and y1 > y0):
    raise ValueError(f"Empty box {tuple(box)}.")
  if aspect <= 0 or margin < 0:
    raise ValueError(f"aspect must be > 0 and margin >= 0, got {aspect}, {margin}.")
  pad = margin * (y1 - y0)
  h = max(y1 - y0 + 2 * pad, (x1 - x0 + 2 * pad) * aspect)
  w = h / aspect
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def extract_crop(frame: np.ndarray, window: Sequence[float], size: tuple[int, int]) -> np.ndarray:
  """Resamples `window` of `frame` to `size` = (H, W), bilinear; parts outside the frame are black.

  Output pixel (i, j) samples the frame at x = x0 + (j + 0.5) * (x1 - x0) / W - 0.5 (pixel centres at
  integers), y likewise, the frame being zero outside [0, W_frame) x [0, H_frame) at half-pixel
  distance, i.e. bilinear with zero padding (as `torch.nn.functional.grid_sample` with
  align_corners=False over the window). Returns (H, W, 3) uint8.
  """
  frame = np.asarray(frame)
  fh, fw = frame.shape[:2]
  out_h, out_w = size
  x0, y0, x1, y1 = window
  xs = x0 + (np.arange(out_w) + 0.5) * (x1 - x0) / out_w - 0.5
  ys = y0 + (np.arange(out_h) + 0.5) * (y1 - y0) / out_h - 0.5
  # Outside the frame the image is zero; clamping to one pixel beyond the border keeps that exact.
  px = np.clip(xs, -1.0, float(fw))
  py = np.clip(ys, -1.0, float(fh))
  ix = np.minimum(np.floor(px).astype(np.int64), fw - 1)
  iy = np.minimum(np.floor(py).astype(np.int64), fh - 1)
  ax = (px - ix)[None, :, None]
  ay = (py - iy)[:, None, None]

  def taps(rows, cols):
    ok = ((rows >= 0) & (rows < fh))[:, None] & ((cols >= 0) & (cols < fw))[None, :]
    values = frame[np.clip(rows, 0, fh - 1)][:, np.clip(cols, 0, fw - 1)].astype(np.float64)
    return values * ok[..., None]

  top = taps(iy, ix) * (1 - ax) + taps(iy, ix + 1) * ax
  bottom = taps(iy + 1, ix) * (1 - ax) + taps(iy + 1, ix + 1) * ax
  out = top * (1 - ay) + bottom * ay
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def rescale_keypoints(keypoints: np.ndarray, from_size: tuple[int, int],
                      to_size: tuple[int, int]) -> np.ndarray:
  """(J, 2) (y, x) keypoints of an image of `from_size` (H, W) to one of `to_size`; -1 stays -1."""
  kp = np.asarray(keypoints, np.float32)
  scale = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]], np.float32)
  out = (kp + 0.5) * scale - 0.5
  missing = (kp < 0).any(axis=-1)
  out = np.clip(out, 0, np.array(to_size, np.float32) - 1)
  out[missing] = -1.0
  return out


def has_required_joints(keypoints: np.ndarray | None) -> bool:
  """Both shoulders and both hips are present (the readers' rule)."""
  return keypoints is not None and bool((np.asarray(keypoints)[list(REQUIRED_JOINTS)] >= 0).all())


def torso_fraction(keypoints: np.ndarray, height: int) -> float:
  """Shoulder-to-hip height (mean hip y - mean shoulder y) as a fraction of the image height; needs
  `has_required_joints`. About 0.3 for a person filling a Market crop; near 0 for a pose BlazePose
  "finds" in a patch of background."""
  kp = np.asarray(keypoints, np.float64)
  return float((kp[[8, 11], 0].mean() - kp[[2, 5], 0].mean()) / height)


# ------------------------------------------------------------------------------------------ layout
@dataclasses.dataclass
class Crop:
  """One kept crop: identity (1-based track number over all videos), camera (1-based video number),
  frame number, (H, W, 3) uint8 image at the model's size, (18, 2) keypoints in its pixels."""
  identity: int
  camera: int
  frame: int
  image: np.ndarray
  keypoints: np.ndarray

  @property
  def name(self) -> str:
    return market_name(self.identity, self.camera, self.frame)


def market_name(identity: int, camera: int, frame: int, index: int = 0) -> str:
  """Market-1501 file name `IIII_cCs1_FFFFFF_BB.jpg` (identity, camera, sequence 1, frame, box index)."""
  if identity < 1:
    raise ValueError(f"Identity must be >= 1 (0000 and -1 are Market's distractor/junk ids), got {identity}.")
  return f"{identity:04d}_c{camera}s1_{frame:06d}_{index:02d}.jpg"


def split_identities(identities: Sequence[int], test_fraction: float, seed: int) -> tuple[set, set]:
  """Seeded split of identities into (train, test); both non-empty when there are >= 2 identities."""
  ids = sorted(set(identities))
  if not 0 <= test_fraction < 1:
    raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
  order = np.random.default_rng(seed).permutation(len(ids))
  num_test = int(round(test_fraction * len(ids)))
  if test_fraction > 0 and len(ids) >= 2:
    num_test = min(max(num_test, 1), len(ids) - 1)
  test = {ids[i] for i in order[:num_test]}
  return set(ids) - test, test


def _write_csv(path: str, crops: Sequence[Crop]) -> None:
  pose_keypoints.write_annotation_csv(path, [(c.name, c.keypoints) for c in crops])


def write_market_layout(out_dir: str, crops: Sequence[Crop], test_fraction: float = 0.25,
                        seed: int = 0, quality: int = 95) -> dict:
  """Writes the Market-1501 layout that `rfgen_jax.data.annotations` reads (data.name "market").

      out_dir/train/IIII_cCs1_FFFFFF_00.jpg   out_dir/market-annotation-train.csv
      out_dir/test/...                          out_dir/market-annotation-test.csv

  Identities with fewer than 2 crops are not written (no tuple can be formed from them). Train and test
  identities are disjoint (`split_identities`).

  Returns:
    {"train": {"identities", "images"}, "test": {...}, "dropped_lonely_crops": n}.
  """
  per_identity = collections.Counter(c.identity for c in crops)
  usable = [c for c in crops if per_identity[c.identity] >= 2]
  train_ids, test_ids = split_identities([c.identity for c in usable], test_fraction, seed)
  summary = {"dropped_lonely_crops": len(crops) - len(usable)}
  for split, ids in (("train", train_ids), ("test", test_ids)):
    chosen = sorted((c for c in usable if c.identity in ids), key=lambda c: c.name)
    folder = os.path.join(out_dir, split)
    os.makedirs(folder, exist_ok=True)
    for crop in chosen:
      Image.fromarray(crop.image).save(os.path.join(folder, crop.name), quality=quality)
    _write_csv(os.path.join(out_dir, f"market-annotation-{split}.csv"), chosen)
    summary[split] = {"identities": len(ids), "images": len(chosen)}
  return summary


# ------------------------------------------------------------------------------------------ contact sheet
def draw_pose(image: np.ndarray, keypoints: np.ndarray, scale: int = 1) -> np.ndarray:
  """The image scaled up `scale` times (nearest) with the 18-joint skeleton drawn over it."""
  image = np.repeat(np.repeat(np.asarray(image, np.uint8), scale, axis=0), scale, axis=1)
  canvas = Image.fromarray(image)
  draw = ImageDraw.Draw(canvas)
  kp = (np.asarray(keypoints, np.float32) + 0.5) * scale - 0.5
  present = (np.asarray(keypoints) >= 0).all(axis=-1)
  for a, b in LIMBS:
    if present[a] and present[b]:
      draw.line([(kp[a, 1], kp[a, 0]), (kp[b, 1], kp[b, 0])], fill=(0, 255, 0), width=max(1, scale))
  r = max(1, scale)
  for (y, x), ok in zip(kp, present):
    if ok:
      draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 0))
  return np.asarray(canvas)


def contact_sheet(crops: Sequence[Crop], max_tracks: int = 12, per_track: int = 8,
                  scale: int = 1) -> np.ndarray:
  """(rows, cols, 3) uint8: one row per identity (the first `max_tracks`), up to `per_track` of its
  crops spread over the track, each with its skeleton; a 2-pixel white gap between cells."""
  by_id: dict[int, list[Crop]] = {}
  for crop in crops:
    by_id.setdefault(crop.identity, []).append(crop)
  if not by_id:
    raise ValueError("No crops for a contact sheet.")
  rows = []
  h, w = crops[0].image.shape[:2]
  h, w = h * scale, w * scale
  gap = 2
  width = per_track * (w + gap) - gap
  for identity in sorted(by_id)[:max_tracks]:
    items = by_id[identity]
    picks = np.unique(np.linspace(0, len(items) - 1, min(per_track, len(items))).round().astype(int))
    row = np.full((h, width, 3), 255, np.uint8)
    for col, i in enumerate(picks):
      row[:, col * (w + gap):col * (w + gap) + w] = draw_pose(items[i].image, items[i].keypoints, scale)
    rows.append(row)
    rows.append(np.full((gap, width, 3), 255, np.uint8))
  return np.concatenate(rows[:-1], axis=0)
