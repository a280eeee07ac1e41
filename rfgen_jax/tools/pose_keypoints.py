r"""Detects OpenPose-18 keypoints in one's own photos with MediaPipe and writes an annotation CSV.

    python -m rfgen_jax.tools.pose_keypoints --images DIR --out DIR/annotations.csv \
        [--min_visibility 0.5] [--model_complexity 1]

turns a folder of photos into the PATN/GFLA annotation format (`name:keypoints_y:keypoints_x`, JSON lists
of 18 integers in OpenPose/COCO-18 order, `(y, x)` pixels of the file's own size, -1 where missing; see
`rfgen_jax.data.annotations`), so the folder can be used with `python -m rfgen_jax.tools.generate
--keypoints DIR/annotations.csv` or, laid out as a data set, for training.

MediaPipe is an optional extra with dependencies that conflict with the main environment (it pins
numpy < 2 and protobuf < 5, which TensorFlow and JAX here do not accept), so it lives in its own venv,
and this module imports nothing but the standard library, numpy, PIL and (when detecting) mediapipe:

    python3.11 -m venv ~/.venvs/rfgen-keypoints
    ~/.venvs/rfgen-keypoints/bin/pip install -r requirements-keypoints.txt
    cd /path/to/rfgen_jax && ~/.venvs/rfgen-keypoints/bin/python -m rfgen_jax.tools.pose_keypoints \
        --images my_photos --out my_photos/annotations.csv

The detector is MediaPipe's legacy `mediapipe.solutions.pose` (BlazePose: a person detector, then 33
landmarks). Its wheel ships the detector and the `full` landmark model (`--model_complexity 1`, the
default); complexities 0 ("lite") and 2 ("heavy") download a model on first use and need internet.
One person per image: BlazePose reports the most prominent one. In Python, `PoseDetector` runs on RGB
arrays (`rfgen_jax.tools.video_to_dataset` uses it on its crops).

Mapping of the 33 BlazePose landmarks to the 18 OpenPose joints (`blazepose_to_openpose`): nose, eyes,
ears, shoulders, elbows, wrists, hips, knees and ankles are taken one to one ("right" is the subject's
right in both conventions; BlazePose's eye = the eye centre landmark); the neck, which BlazePose lacks, is
the midpoint of the shoulders and is missing unless both shoulders are present. A landmark with a
visibility below `--min_visibility`, or outside the image, is missing (-1). MediaPipe's normalised
coordinates (0 = left/top edge, 1 = right/bottom edge) become pixel coordinates with pixel centres at
integers (`x_px = x * W - 0.5`), rounded to integers as in the PATN/GFLA files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from rfgen_jax import cli
from rfgen_jax import errors

NUM_JOINTS = 18
NUM_LANDMARKS = 33
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# OpenPose/COCO-18 joint j -> BlazePose landmark index (None: derived; the neck, see NECK_FROM).
#   0 nose, 1 neck, 2 r_shoulder, 3 r_elbow, 4 r_wrist, 5 l_shoulder, 6 l_elbow, 7 l_wrist, 8 r_hip,
#   9 r_knee, 10 r_ankle, 11 l_hip, 12 l_knee, 13 l_ankle, 14 r_eye, 15 l_eye, 16 r_ear, 17 l_ear.
# BlazePose: 0 nose, 2 left_eye, 5 right_eye, 7 left_ear, 8 right_ear, 11/12 left/right_shoulder,
#   13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles (left first).
OPENPOSE_FROM_BLAZEPOSE: tuple[int | None, ...] = (
    0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
NECK_FROM = (11, 12)   # BlazePose left and right shoulder


def blazepose_to_openpose(landmarks: np.ndarray, image_size: tuple[int, int],
                          min_visibility: float = 0.5) -> np.ndarray:
  """Maps BlazePose's 33 landmarks to the 18 OpenPose joints in pixels.

  Pure numpy; no mediapipe needed.

  Args:
    landmarks: (33, 3) float array of (x, y, visibility) per BlazePose landmark, x and y normalised to
      the image (0 = left/top edge, 1 = right/bottom edge), visibility in [0, 1]; or (33, 2) (x, y), all
      taken as visible.
    image_size: (H, W) of the image in pixels.
    min_visibility: landmarks with a lower visibility are missing.

  Returns:
    (18, 2) float32 (y, x) pixel coordinates (pixel centres at integers), -1 for a missing joint (low
    visibility, outside the image, or for the neck: either shoulder missing).

  Raises:
    ValueError: if `landmarks` is not (33, 2) or (33, 3).
  """
  lm = np.asarray(landmarks, np.float64)
  if lm.ndim != 2 or lm.shape[0] != NUM_LANDMARKS or lm.shape[1] not in (2, 3):
    raise ValueError(f"Expected BlazePose landmarks of shape (33, 3) (x, y, visibility), got {lm.shape}.")
  h, w = image_size
  x = lm[:, 0] * w - 0.5
  y = lm[:, 1] * h - 0.5
  visible = lm[:, 2] >= min_visibility if lm.shape[1] == 3 else np.ones(NUM_LANDMARKS, bool)
  inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5) & np.isfinite(x) & np.isfinite(y)
  ok = visible & inside
  out = np.full((NUM_JOINTS, 2), -1.0, np.float32)
  found = np.zeros(NUM_JOINTS, bool)
  for joint, index in enumerate(OPENPOSE_FROM_BLAZEPOSE):
    if index is None:
      a, b = NECK_FROM
      if ok[a] and ok[b]:
        out[joint], found[joint] = ((y[a] + y[b]) / 2, (x[a] + x[b]) / 2), True
    elif ok[index]:
      out[joint], found[joint] = (y[index], x[index]), True
  # The half-pixel band at the border maps onto the first/last pixel centre (never below 0: -1 = missing).
  out[found, 0] = np.clip(out[found, 0], 0, h - 1)
  out[found, 1] = np.clip(out[found, 1], 0, w - 1)
  return out


def format_csv_row(name: str, keypoints: np.ndarray) -> str:
  """One `name:keypoints_y:keypoints_x` line (integers, -1 missing) for (18, 2) (y, x) keypoints."""
  if ":" in name:
    raise errors.BadInputError(f"Image name {name!r} contains ':', the annotation CSV's separator; rename the file.")
  kp = np.asarray(keypoints, np.float64)
  missing = (kp < 0).any(axis=-1)
  ys = [-1 if m else int(round(v)) for v, m in zip(kp[:, 0], missing)]
  xs = [-1 if m else int(round(v)) for v, m in zip(kp[:, 1], missing)]
  return f"{name}:{json.dumps(ys)}:{json.dumps(xs)}"


def write_annotation_csv(path: str, rows: Iterable[tuple[str, np.ndarray]]) -> None:
  """Writes `(name, (18, 2) keypoints)` rows with the PATN header `name:keypoints_y:keypoints_x`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  with open(path, "w") as f:
    f.write("name:keypoints_y:keypoints_x\n")
    for name, kp in rows:
      f.write(format_csv_row(name, kp) + "\n")


def list_images(folder: str) -> list[str]:
  """Sorted image file names (by extension) directly inside `folder`."""
  if not os.path.isdir(folder):
    raise errors.MissingFileError(f"Image folder not found: {folder} (--images).")
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
  if not names:
    raise errors.MissingFileError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {folder} (--images).")
  return names


def _import_mediapipe():
  try:
    import mediapipe as mp  # pylint: disable=import-outside-toplevel  (optional: the keypoints environment only)
    return mp.solutions.pose
  except ImportError as e:
    raise errors.MissingDependencyError(
        "mediapipe is not installed in this environment. It is an optional extra with its own venv "
        "(its numpy<2/protobuf<5 pins conflict with TensorFlow/JAX):\n"
        "  python3.11 -m venv ~/.venvs/rfgen-keypoints\n"
        "  ~/.venvs/rfgen-keypoints/bin/pip install -r requirements-keypoints.txt\n"
        "  ~/.venvs/rfgen-keypoints/bin/python -m rfgen_jax.tools.pose_keypoints --images DIR --out CSV"
    ) from e
  except AttributeError as e:
    raise errors.MissingDependencyError(
        "This mediapipe build has no legacy `mediapipe.solutions.pose`; install the version "
        "pinned in requirements-keypoints.txt.") from e


class PoseDetector:
  """BlazePose on one RGB array at a time; a context manager holding one `mp.solutions.pose.Pose`.

      with PoseDetector(min_visibility=0.5) as detect:
        keypoints = detect(rgb)   # (18, 2) float32 (y, x) pixels of rgb, -1 missing; None: no person

  `static_image_mode=True`: every image is detected on its own (no tracking between calls).
  """

  def __init__(self, min_visibility: float = 0.5, model_complexity: int = 1,
               min_detection_confidence: float = 0.5):
    self.min_visibility = min_visibility
    self._pose = _import_mediapipe().Pose(
        static_image_mode=True, model_complexity=model_complexity, enable_segmentation=False,
        min_detection_confidence=min_detection_confidence)

  def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
    rgb = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    found = self._pose.process(rgb)
    if found.pose_landmarks is None:
      return None
    lm = np.array([(p.x, p.y, p.visibility) for p in found.pose_landmarks.landmark], np.float64)
    return blazepose_to_openpose(lm, rgb.shape[:2], self.min_visibility)

  def close(self) -> None:
    self._pose.close()

  def __enter__(self) -> "PoseDetector":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def detect_keypoints(image_paths: Sequence[str], min_visibility: float = 0.5,
                     model_complexity: int = 1) -> list[tuple[str, np.ndarray | None]]:
  """Runs BlazePose on each image.

  Args:
    image_paths: image files.
    min_visibility: see `blazepose_to_openpose`.
    model_complexity: 0, 1 or 2 (only 1 ships in the wheel; the others are downloaded).

  Returns:
    [(path, (18, 2) float32 keypoints or None when no person was found)].
  """
  results = []
  with PoseDetector(min_visibility, model_complexity) as detect:
    for path in image_paths:
      try:
        with Image.open(path) as im:
          rgb = np.asarray(im.convert("RGB"))
      except Exception as e:  # pylint: disable=broad-except  (PIL raises several types for broken files)
        raise errors.BadInputError(f"Cannot read image {path} ({type(e).__name__}: {e}).") from None
      results.append((path, detect(rgb)))
  return results


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m rfgen_jax.tools.pose_keypoints",
      description="Detect OpenPose-18 keypoints with MediaPipe and write a PATN/GFLA annotation CSV.")
  parser.add_argument("--images", required=True, help="folder of photos (jpg/png/bmp)")
  parser.add_argument("--out", required=True, help="annotation CSV to write, e.g. DIR/annotations.csv")
  parser.add_argument("--min_visibility", type=float, default=0.5,
                      help="landmarks with a lower MediaPipe visibility are written as missing (-1)")
  parser.add_argument("--model_complexity", type=int, default=1, choices=(0, 1, 2),
                      help="BlazePose landmark model; 1 ships with the wheel, 0 and 2 are downloaded")
  parser.add_argument("--keep_undetected", action="store_true",
                      help="write a row of -1 for images without a detected person (default: skip them)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  args = parser.parse_args(argv)

  if not args.overwrite:
    errors.check_output_free(args.out)
  names = list_images(args.images)
  detections = detect_keypoints([os.path.join(args.images, n) for n in names], args.min_visibility,
                                args.model_complexity)
  rows, undetected = [], []
  for name, (_, kp) in zip(names, detections):
    if kp is None:
      undetected.append(name)
      if not args.keep_undetected:
        continue
      kp = np.full((NUM_JOINTS, 2), -1.0, np.float32)
    rows.append((name, kp))
  write_annotation_csv(args.out, rows)
  print(f"Wrote {len(rows)} rows to {args.out} ({len(names)} images, no person found in "
        f"{len(undetected)}{': ' + ', '.join(undetected[:10]) if undetected else ''}"
        f"{' ...' if len(undetected) > 10 else ''}).")
  partial = [n for n, kp in rows if (kp < 0).any()]
  if partial:
    print(f"{len(partial)} images have missing joints (-1); training drops those missing a shoulder or "
          "hip, generation works with any.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
