"""Reading videos and finding people in them, for `rfgen_jax.tools.video_to_dataset`: frames decoded by
OpenCV, people detected by OpenCV's HOG detector, tracked by ByteTrack (`supervision`).

These are the parts that need the keypoints environment (OpenCV and supervision; requirements-keypoints.txt);
each imports its library when built, so the module itself imports in the main environment (the tests of
the pipeline pass stand-ins). Conventions as `rfgen_jax.tools.video_tracking`: frames are (H, W, 3) uint8
RGB, boxes (N, 4) float64 `(x0, y0, x1, y1)` pixels of the frame, scores (N,) in (0, 1), frame numbers
0-based indices into the video.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np

from rfgen_jax import errors

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]   # RGB frame -> boxes (N, 4), scores (N,)
FrameSource = Callable[[], Iterator[tuple[int, np.ndarray]]]        # () -> (frame number, RGB frame) ...


class InputError(errors.BadInputError):
  """A bad video or a video without usable people: reported in one line, exit status 2 (a user error)."""


def _import_cv2():
  try:
    import cv2  # pylint: disable=import-outside-toplevel  (optional: the keypoints environment only)
  except ImportError as e:
    raise errors.MissingDependencyError(
        "OpenCV is not installed in this environment; run the tool in the keypoints "
        "environment (requirements-keypoints.txt).") from e
  return cv2


def video_info(path: str) -> dict:
  """{"frames", "fps", "height", "width"} of a video; InputError if OpenCV cannot decode it."""
  cv2 = _import_cv2()
  if not os.path.isfile(path):
    raise InputError(f"Video not found: {path}")
  cap = cv2.VideoCapture(path)
  try:
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    if not ok or frame is None:
      raise InputError(f"Cannot read video {path}: OpenCV decodes no frame from it.")
    fps = cap.get(cv2.CAP_PROP_FPS)
    return {"frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), "fps": float(fps) if fps > 0 else 25.0,
            "height": frame.shape[0], "width": frame.shape[1]}
  finally:
    cap.release()


def video_frames(path: str, frame_step: int = 1, max_frames: int = 0) -> FrameSource:
  """A FrameSource over every `frame_step`-th of the first `max_frames` (0: all) frames, RGB."""
  cv2 = _import_cv2()

  def frames():
    cap = cv2.VideoCapture(path)
    try:
      index = 0
      while not max_frames or index < max_frames:
        ok, bgr = cap.read()
        if not ok:
          break
        if index % frame_step == 0:
          yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        index += 1
    finally:
      cap.release()
  return frames


class HogPeopleDetector:
  """OpenCV's default HOG + linear SVM pedestrian detector on a frame upscaled by `upscale`.

  Returns xyxy boxes in frame pixels and scores in (0, 1): `1 - exp(-w)` of the SVM margin w (ByteTrack
  thresholds scores; w = 0.7 -> 0.5). Detections with w < `min_weight` are discarded.
  """

  def __init__(self, upscale: float = 1.5, min_weight: float = 0.1, win_stride: int = 8,
               scale: float = 1.05):
    cv2 = _import_cv2()
    self.cv2, self.upscale, self.min_weight = cv2, upscale, min_weight
    self.win_stride, self.scale = win_stride, scale
    self.hog = cv2.HOGDescriptor()
    self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

  def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = rgb if self.upscale == 1 else self.cv2.resize(
        rgb, None, fx=self.upscale, fy=self.upscale, interpolation=self.cv2.INTER_LINEAR)
    rects, weights = self.hog.detectMultiScale(
        image, winStride=(self.win_stride, self.win_stride), padding=(8, 8), scale=self.scale)
    if len(rects) == 0:
      return np.zeros((0, 4)), np.zeros((0,))
    rects = np.asarray(rects, np.float64) / self.upscale
    weights = np.asarray(weights, np.float64).reshape(-1)
    keep = weights >= self.min_weight
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)[keep]
    return boxes, 1.0 - np.exp(-weights[keep])


class ByteTrackAdapter:
  """`supervision.ByteTrack` as a `video_tracking.TrackerFn` (boxes, scores) -> (boxes, ids)."""

  def __init__(self, fps: float, activation_threshold: float = 0.5, lost_track_seconds: float = 1.0,
               min_consecutive_frames: int = 3, matching_threshold: float = 0.8):
    try:
      import supervision as sv  # pylint: disable=import-outside-toplevel  (optional: keypoints environment)
    except ImportError as e:
      raise errors.MissingDependencyError(
          "supervision is not installed; run the tool in the keypoints environment "
          "(requirements-keypoints.txt).") from e
    if not hasattr(sv, "ByteTrack"):
      raise errors.MissingDependencyError(
          f"supervision {sv.__version__} has no ByteTrack; install the version pinned in "
          "requirements-keypoints.txt.")
    self.sv = sv
    # sv.ByteTrack keeps a lost track for lost_track_buffer * frame_rate / 30 frames.
    self.tracker = sv.ByteTrack(
        track_activation_threshold=activation_threshold,
        lost_track_buffer=max(1, int(round(lost_track_seconds * 30))),
        minimum_matching_threshold=matching_threshold, frame_rate=max(1, int(round(fps))),
        minimum_consecutive_frames=min_consecutive_frames)

  def __call__(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    detections = self.sv.Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                                     confidence=np.asarray(scores, np.float32).reshape(-1),
                                     class_id=np.zeros(len(boxes), int))
    tracked = self.tracker.update_with_detections(detections)
    if tracked.tracker_id is None or len(tracked) == 0:
      return np.zeros((0, 4)), np.zeros((0,), int)
    return np.asarray(tracked.xyxy, np.float64), np.asarray(tracked.tracker_id, int)
