"""A reference flow from the true keypoints: what a flow that knows where every joint went achieves.

The source-use measures (`rfgen_jax/evaluation/source_use.py`) say how much closer the predicted flows bring
the sources to the target. Whether a gain is large or small depends on the data: a source seen from the
other side, another camera's colour cast or background inside the person region keep a geometrically
perfect warp far from the target. This module gives the yardstick. For each (target, source) pair it
interpolates the displacements of the true correspondences (the joints and points along the limbs,
`rfgen_jax.losses.keypoint_flow.correspondence_points`, present in both) over the whole image with a
thin-plate spline (`scipy.interpolate.RBFInterpolator`, smoothing 1 px^2), the smoothest dense flow that
maps every correspondence. It is a reference, not a bound: a flow that bends at limb borders can do better.
Pairs with fewer than 4 common points get zero flow.

Flows are in image pixels, channel 0 = x (width), channel 1 = y (height), sampling the source at
`target position + flow`, the convention of `rfgen_jax.ops.bilinear_warp`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy.interpolate import RBFInterpolator

from rfgen_jax.losses.keypoint_flow import correspondence_points

MIN_POINTS = 4          # a thin-plate spline in 2-D needs at least 3 non-collinear points; 4 for margin
SMOOTHING = 1.0         # px^2: keypoints are rounded to whole pixels


def keypoint_reference_flows(source_keypoints: np.ndarray, target_keypoints: np.ndarray,
                             image_size: Tuple[int, int]) -> np.ndarray:
  """Thin-plate-spline flows from the true correspondences (module docstring).

  Args:
    source_keypoints: (B, K, J, 2) (y, x) image pixels, -1 = missing.
    target_keypoints: (B, J, 2) (y, x) image pixels, -1 = missing.
    image_size: (H, W).
  Returns:
    (B, K, H, W, 2) float32 flows in image pixels (x, y).
  """
  h, w = image_size
  src_pts, src_ok = (np.asarray(a) for a in correspondence_points(np.asarray(source_keypoints)))
  tgt_pts, tgt_ok = (np.asarray(a) for a in correspondence_points(np.asarray(target_keypoints)))
  b, k = src_pts.shape[:2]
  grid = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 2).astype(np.float64)
  flows = np.zeros((b, k, h, w, 2), np.float32)
  for i in range(b):
    for j in range(k):
      common = tgt_ok[i] & src_ok[i, j]
      if common.sum() < MIN_POINTS:
        continue
      at = tgt_pts[i][common].astype(np.float64)
      displacement = src_pts[i, j][common].astype(np.float64) - at          # (N, 2) (y, x)
      try:
        dense = RBFInterpolator(at, displacement, kernel="thin_plate_spline", smoothing=SMOOTHING)(grid)
      except np.linalg.LinAlgError:   # all common points on one line: the mean shift instead
        dense = np.broadcast_to(displacement.mean(0), (h * w, 2))
      flows[i, j] = dense.reshape(h, w, 2)[..., ::-1]
  return flows
