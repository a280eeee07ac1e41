"""Body (limb) masks from keypoints for Mask-LPIPS on Market-1501.

Follows the mask of GFLA's metric script (`script/metrics.py`, `produce_ma_mask`, used for the
Market-1501 Mask-LPIPS numbers that later papers, this one included, report):

1. for every limb whose two joints are both present, the rectangle of half-width `point_radius`
   around the segment (4 vertices `j_from +- n, j_to -+ n`, `n` the unit normal times the radius),
   rasterised like `skimage.draw.polygon` (pixel centres at integer coordinates; inside, on an edge
   or on a vertex counts);
2. a disc of radius `point_radius` (strict `<`, like `skimage.draw.disk`) on every present joint;
3. a morphological closing (dilation then erosion) with a `closing_size` square; outside the image
   counts as neither (= skimage's default `reflect` border for a 5x5 window).

The limb list is GFLA's 23 pairs (`MASK_LIMBS`): the 17 OpenPose-18 limbs of the PATN/GFLA pose maps
plus ear-neck, hips and hip-shoulder links that fill the torso and head. It is defined here (not taken
from `rfgen_jax.data.keypoints.LIMBS`) because the metric must use exactly these pairs.

Keypoints are (y, x) pixel coordinates, OpenPose-18 order, `-1` in either coordinate = missing joint.
Runs in numpy float64 on host (the eval batches are numpy); (B, H, W, 1) float32 out.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

MISSING = -1
# GFLA `produce_ma_mask` limbs (1-based in the script), 0-based OpenPose-18 indices:
# 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder, 6 l-elbow, 7 l-wrist, 8 r-hip,
# 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye, 15 l-eye, 16 r-ear, 17 l-ear.
MASK_LIMBS: Tuple[Tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (1, 16), (1, 17), (8, 11), (11, 5),
    (8, 2), (16, 17))
# GFLA's values for 128x64 Market-1501 images.
POINT_RADIUS = 4.0
CLOSING_SIZE = 5


def _points_in_polygon(vr: np.ndarray, vc: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
  """Inside-or-on-boundary test of pixel centres, as skimage's ray-crossing `point_in_polygon`.

  Args:
    vr, vc: (B, V) vertex rows / columns.
    rr, cc: (H, W) pixel rows / columns.
  Returns:
    (B, H, W) bool.
  """
  eps = 1e-12
  x0 = vc[:, :, None, None] - cc[None, None]   # (B, V, H, W), vertex i relative to the pixel
  y0 = vr[:, :, None, None] - rr[None, None]
  x1 = np.roll(x0, 1, axis=1)                  # vertex i - 1
  y1 = np.roll(y0, 1, axis=1)
  vertex = np.any((np.abs(x0) < eps) & (np.abs(y0) < eps), axis=1)
  with np.errstate(divide="ignore", invalid="ignore"):
    cross = (x0 * y1 - x1 * y0) / (y1 - y0)
  r_cross = np.sum(((y0 > 0) != (y1 > 0)) & (cross > 0), axis=1) % 2 == 1
  l_cross = np.sum(((y0 < 0) != (y1 < 0)) & (cross < 0), axis=1) % 2 == 1
  return vertex | r_cross | l_cross             # inside (r odd) or on an edge (parities differ)


def _closing(mask: np.ndarray, size: int) -> np.ndarray:
  """Binary dilation then erosion with a size x size square; out-of-image taps are ignored.

  Args:
    mask: (B, H, W) bool.
  Returns:
    (B, H, W) bool.
  """
  if size <= 1:
    return mask
  h, w = mask.shape[1:]
  lo, hi = (size - 1) // 2, size // 2

  def sweep(m, pad_value, reduce):
    padded = np.pad(m, ((0, 0), (lo, hi), (lo, hi)), constant_values=pad_value)
    out = np.full_like(m, pad_value)  # identity of `reduce`
    for dy in range(size):
      for dx in range(size):
        out = reduce(out, padded[:, dy:dy + h, dx:dx + w])
    return out

  dilated = sweep(mask, False, np.logical_or)
  return sweep(dilated, True, np.logical_and)


def limb_mask(keypoints_yx, image_size: Sequence[int], point_radius: float = POINT_RADIUS,
              closing_size: int = CLOSING_SIZE,
              limbs: Sequence[Tuple[int, int]] = MASK_LIMBS) -> np.ndarray:
  """Body mask of a pose (GFLA's Market-1501 Mask-LPIPS mask).

  Args:
    keypoints_yx: (B, J, 2) or (J, 2) keypoints, (y, x) in pixels of the image, -1 = missing
      (J >= 18 for the default limbs).
    image_size: (H, W) in pixels.
    point_radius: half-width of limb rectangles and radius of joint discs, pixels (GFLA: 4 at 128x64).
    closing_size: side of the square of the closing, pixels (GFLA: 5); <= 1 disables it.
    limbs: pairs of joint indices.
  Returns:
    (B, H, W, 1) float32 in {0, 1} ((H, W, 1) for unbatched input); all zeros where every joint is
    missing.
  """
  kp = np.asarray(keypoints_yx, np.float64)
  single = kp.ndim == 2
  if single:
    kp = kp[None]
  if kp.ndim != 3 or kp.shape[-1] != 2:
    raise ValueError(f"limb_mask: keypoints must be (B, J, 2) (y, x), got shape {kp.shape}.")
  h, w = int(image_size[0]), int(image_size[1])
  b = kp.shape[0]
  present = ~np.any(kp == MISSING, axis=-1)                      # (B, J)
  rr, cc = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
  mask = np.zeros((b, h, w), bool)
  for f, t in limbs:
    seg = kp[:, f] - kp[:, t]                                    # (B, 2) (dy, dx)
    length = np.linalg.norm(seg, axis=-1)
    ok = present[:, f] & present[:, t] & (length > 0)
    if not np.any(ok):
      continue
    normal = np.stack([-seg[:, 1], seg[:, 0]], axis=-1) * (
        point_radius / np.where(length > 0, length, 1.0))[:, None]
    verts = np.stack([kp[:, f] + normal, kp[:, f] - normal, kp[:, t] - normal, kp[:, t] + normal], 1)
    inside = _points_in_polygon(verts[ok, :, 0], verts[ok, :, 1], rr, cc)
    mask[ok] |= inside
  dist2 = ((rr[None, None] - kp[:, :, 0, None, None]) / point_radius) ** 2 + \
          ((cc[None, None] - kp[:, :, 1, None, None]) / point_radius) ** 2  # (B, J, H, W)
  mask |= np.any((dist2 < 1.0) & present[:, :, None, None], axis=1)
  mask = _closing(mask, closing_size)
  out = mask.astype(np.float32)[..., None]
  return out[0] if single else out


__all__ = ("limb_mask", "MASK_LIMBS", "POINT_RADIUS", "CLOSING_SIZE", "MISSING")
