"""OpenPose-18 (COCO-18) body keypoints: joint names and order, limbs, and a skeleton drawer.

Keypoints are `(y, x)` pixel coordinates (pixel centres at integer coordinates), one row per joint in the
order of `JOINT_NAMES`, with `-1` in either coordinate for a missing joint: the convention of the
PATN/GFLA annotation CSVs for Market-1501 and DeepFashion, which the synthetic set copies.

`LIMBS` are the 19 joint pairs that OpenPose draws for COCO-18 and that PATN/GFLA use for their pose
images (`LIMB_SEQ` in PATN's `pose_utils.py`): 17 body/face limbs plus shoulder-ear. (The Mask-LPIPS limb
list of GFLA's metric script differs and lives in `rfgen_jax.evaluation.masks`.)
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw

JOINT_NAMES: Tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear")
NUM_JOINTS = 18
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
MISSING = -1

# (from, to) joint indices, OpenPose/PATN order: neck-shoulders, arms, neck-hips, legs, neck-nose, face,
# shoulder-ear.
LIMBS: Tuple[Tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))

# OpenPose's joint colours (RGB), one per joint; limb i takes the colour of index i % 18.
COLORS: Tuple[Tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def is_present(keypoints: np.ndarray) -> np.ndarray:
  """(J,) bool: joints whose y and x are both >= 0, from (J, 2) `(y, x)` keypoints."""
  kp = np.asarray(keypoints)
  return np.all(kp >= 0, axis=-1)


def draw_skeleton(image: np.ndarray, keypoints, limbs: Optional[Sequence[Tuple[int, int]]] = None,
                  line_width: Optional[int] = None, radius: Optional[float] = None) -> np.ndarray:
  """Draws a pose over an image, for contact sheets and generation grids.

  Args:
    image: (H, W, 3) uint8 (a (H, W) grey image is converted to RGB).
    keypoints: (J, 2) `(y, x)` pixel coordinates, -1 (any negative value) where missing. With J = 18 the
      OpenPose `LIMBS` are drawn; with another J only the joints, unless `limbs` is given.
    limbs: joint-index pairs to connect; defaults to `LIMBS` for 18 joints, none otherwise.
    line_width: limb width in pixels; defaults to max(1, H // 64).
    radius: joint dot radius in pixels; defaults to max(1, H / 64).

  Returns:
    A new (H, W, 3) uint8 image (the input is not modified). Limbs with a missing end are skipped.
  """
  img = np.asarray(image)
  if img.dtype != np.uint8:
    raise ValueError(f"draw_skeleton expects a uint8 image, got {img.dtype}.")
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, axis=-1)
  h = img.shape[0]
  kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
  present = is_present(kp)
  if limbs is None:
    limbs = LIMBS if len(kp) == NUM_JOINTS else ()
  width = max(1, h // 64) if line_width is None else int(line_width)
  r = max(1.0, h / 64) if radius is None else float(radius)
  canvas = Image.fromarray(np.ascontiguousarray(img[..., :3]))
  draw = ImageDraw.Draw(canvas)
  for i, (a, b) in enumerate(limbs):
    if a < len(kp) and b < len(kp) and present[a] and present[b]:
      draw.line([(kp[a, 1], kp[a, 0]), (kp[b, 1], kp[b, 0])], fill=COLORS[i % len(COLORS)], width=width)
  for j in np.flatnonzero(present):
    y, x = kp[j]
    draw.ellipse((x - r, y - r, x + r, y + r), fill=COLORS[j % len(COLORS)])
  return np.asarray(canvas).copy()


__all__ = ("JOINT_NAMES", "NUM_JOINTS", "JOINT_INDEX", "MISSING", "LIMBS", "COLORS",
           "is_present", "draw_skeleton")
