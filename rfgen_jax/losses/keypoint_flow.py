"""Keypoint-correspondence flow loss: the flow at a target joint points to the same joint in the source.

A departure from the paper (which trains the flows with sampling correctness and affine regularisation
only), switchable and off in the paper configs (`losses.warmup_keypoint_flow`, `losses.keypoint_flow`;
docs/architecture.md, "Training the flows"). Why it exists: sampling correctness compares VGG19
features, and with the random-weight VGG19 that CPU runs use (no ImageNet weights can be downloaded),
its gradient carries almost no alignment signal; measured on the demo (docs/architecture.md), flows trained with it
alone move the sources by about a pixel and bring them no closer to the target. The poses of every
keypoint data set say where each joint went, so they supervise the flows directly.

Correspondences: every joint present in both the target and the source, and points at fractions
`limb_fractions` along every limb (`rfgen_jax.data.keypoints.LIMBS`) whose two joints are present in
both: the target's point maps to the source's point at the same fraction. For a level of factor l, image
pixel p (pixel centres at integers) is at (p + 0.5) / l - 0.5 on the level's map, the convention of
`rfgen_jax.ops.resize_flow`. The flow (pixels of the level, channel 0 = x, 1 = y) is read at the target
point bilinearly (border clamp) and the error is the Euclidean distance, in pixels of the level, between
target point + flow and the source point, averaged over the valid correspondences of the batch.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.scipy.ndimage  # pylint: disable=unused-import  (jax.scipy.ndimage.map_coordinates)
import jax.numpy as jnp
import numpy as np

from rfgen_jax.data.keypoints import LIMBS

DEFAULT_LIMB_FRACTIONS = (0.25, 0.5, 0.75)


def correspondence_points(keypoints_yx: jax.Array, limb_fractions: Sequence[float] = DEFAULT_LIMB_FRACTIONS):
  """Joints and points along the limbs, with their presence.

  Args:
    keypoints_yx: (..., J, 2) (y, x) pixels, -1 = missing (J = 18, OpenPose order).
    limb_fractions: positions along each limb, in (0, 1).
  Returns:
    points (..., N, 2) (y, x) and present (..., N) bool, N = J + len(LIMBS) * len(limb_fractions).
  """
  kp = jnp.asarray(keypoints_yx, jnp.float32)
  present = jnp.all(kp >= 0, axis=-1)
  a = np.array([i for i, _ in LIMBS])
  b = np.array([j for _, j in LIMBS])
  points, flags = [kp], [present]
  for t in limb_fractions:
    points.append((1.0 - t) * kp[..., a, :] + t * kp[..., b, :])
    flags.append(present[..., a] & present[..., b])
  return jnp.concatenate(points, axis=-2), jnp.concatenate(flags, axis=-1)


def _sample_at(field: jax.Array, points_yx: jax.Array) -> jax.Array:
  """Bilinear read of field (h, w, C) at points (N, 2) (y, x) on its grid, coordinates clamped: (N, C)."""
  coords = [points_yx[:, 0], points_yx[:, 1]]
  return jnp.stack([jax.scipy.ndimage.map_coordinates(field[..., c], coords, order=1, mode="nearest")
                    for c in range(field.shape[-1])], axis=-1)


def keypoint_flow_loss(flow: jax.Array, source_keypoints: jax.Array, target_keypoints: jax.Array,
                       level: int, limb_fractions: Sequence[float] = DEFAULT_LIMB_FRACTIONS) -> jax.Array:
  """Mean end-point error of the flow at the correspondences (module docstring), pixels of the level.

  Args:
    flow: (B, K, h, w, 2) flow from the target to each source, pixels of the level (x, y).
    source_keypoints: (B, K, J, 2) (y, x) image pixels, -1 missing.
    target_keypoints: (B, J, 2) (y, x) image pixels, -1 missing.
    level: the level's downsampling factor l (image pixels per level pixel).
    limb_fractions: positions along each limb used as correspondences besides the joints.
  Returns:
    float32 scalar; 0 when no correspondence is valid.
  """
  if flow.ndim != 5 or flow.shape[-1] != 2:
    raise ValueError(f"keypoint_flow_loss: flow must be (B, K, h, w, 2), got {flow.shape}.")
  b, k = flow.shape[:2]
  if source_keypoints.shape[:2] != (b, k) or target_keypoints.shape[0] != b:
    raise ValueError(f"keypoint_flow_loss: keypoints {source_keypoints.shape} / {target_keypoints.shape} do "
                     f"not match the flow's batch and K {flow.shape[:2]}.")
  src_pts, src_ok = correspondence_points(source_keypoints, limb_fractions)          # (B, K, N, 2)
  tgt_pts, tgt_ok = correspondence_points(target_keypoints, limb_fractions)          # (B, N, 2)
  scale = 1.0 / float(level)
  src_lvl = (src_pts + 0.5) * scale - 0.5
  tgt_lvl = (tgt_pts + 0.5) * scale - 0.5
  f = flow.astype(jnp.float32)
  sampled = jax.vmap(jax.vmap(_sample_at, in_axes=(0, None)), in_axes=(0, 0))(f, tgt_lvl)   # (B, K, N, 2) x,y
  predicted = tgt_lvl[:, None] + sampled[..., ::-1]                                  # (y, x) in the source
  err = jnp.sqrt(jnp.sum(jnp.square(predicted - src_lvl), axis=-1) + 1e-6)             # (B, K, N)
  valid = (src_ok & tgt_ok[:, None]).astype(jnp.float32)
  return jnp.sum(err * valid) / jnp.maximum(jnp.sum(valid), 1.0)


# ------------------------------------------------------------------------------------------ dense form
# `losses.keypoint_flow_form = "dense"`: the flow is compared at every position of the level near the person
# with the smoothest dense flow through the correspondences (a thin-plate spline, as
# `rfgen_jax/evaluation/keypoint_reference_flow.py` measures with), instead of at the correspondences only.
FORMS = ("points", "dense")
TPS_SMOOTHING_PX2 = 1.0          # as the evaluation's reference: keypoints are rounded to whole pixels
DENSE_RADIUS_OF_HEIGHT = 1 / 12  # the region: level positions within H/12 image pixels of a target point


def _tps_kernel(d2: jax.Array) -> jax.Array:
  """r^2 log r of squared distances (0 at 0)."""
  return jnp.where(d2 > 0, 0.5 * d2 * jnp.log(jnp.maximum(d2, 1e-12)), 0.0)


def thin_plate_spline(points: jax.Array, values: jax.Array, present: jax.Array, queries: jax.Array,
                      smoothing: float) -> jax.Array:
  """Thin-plate spline through `values` at the present `points`, read at `queries`.

  The same interpolant as `scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline")` (kernel r^2 log r,
  a degree-1 polynomial), in float32 on coordinates divided by `scale` for conditioning. Absent points
  drop out of the system; with fewer than 3 present points the polynomial block is regularised so that
  the solve stays finite (the callers weight such pairs 0).

  Args:
    points: (N, 2) coordinates; values: (N, C); present: (N,) bool; queries: (M, 2) coordinates.
    smoothing: in squared coordinate units (as scipy's `smoothing`).
  Returns:
    (M, C) float32.
  """
  points = points.astype(jnp.float32)
  on = present.astype(jnp.float32)
  center = jnp.sum(points * on[:, None], 0) / jnp.maximum(jnp.sum(on), 1.0)
  scale = jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(points - center) * on[:, None]) / jnp.maximum(jnp.sum(on), 1.0)), 1.0)
  p = (points - center) / scale
  q = (queries.astype(jnp.float32) - center) / scale
  n = p.shape[0]
  # r^2 log r in scaled units = (r_px^2 log r_px) / scale^2 - r_px^2 log(scale) / scale^2; the second term
  # is absorbed by the polynomial, so smoothing in scaled units is smoothing_px / scale^2.
  a = _tps_kernel(jnp.sum(jnp.square(p[:, None] - p[None]), -1)) * on[:, None] * on[None]
  a = a + jnp.diag(on * smoothing / jnp.square(scale) + (1.0 - on))
  poly = jnp.concatenate([jnp.ones((n, 1)), p], 1) * on[:, None]                       # (N, 3)
  enough = jnp.sum(on) >= 3
  corner = jnp.where(enough, -1e-7, 1.0) * jnp.eye(3)
  system = jnp.block([[a, poly], [poly.T, corner]])
  rhs = jnp.concatenate([values.astype(jnp.float32) * on[:, None], jnp.zeros((3, values.shape[1]))], 0)
  coef = jnp.linalg.solve(system, rhs)
  kq = _tps_kernel(jnp.sum(jnp.square(q[:, None] - p[None]), -1)) * on[None]            # (M, N)
  return kq @ coef[:n] + jnp.concatenate([jnp.ones((q.shape[0], 1)), q], 1) @ coef[n:]


def dense_keypoint_flow_loss(flow: jax.Array, source_keypoints: jax.Array, target_keypoints: jax.Array,
                             level: int, image_height: int,
                             limb_fractions: Sequence[float] = DEFAULT_LIMB_FRACTIONS) -> jax.Array:
  """Mean end-point error, pixels of the level, against the thin-plate spline through the correspondences.

  At every level position whose centre lies within `image_height * DENSE_RADIUS_OF_HEIGHT` image pixels of a
  target correspondence point, the flow is compared with the spline's displacement there (image pixels
  divided by the level's factor). Pairs with fewer than 4 common points count 0.

  Args: as `keypoint_flow_loss`, plus `image_height` (H, image pixels).
  Returns:
    float32 scalar; 0 when no position is valid.
  """
  b, k, h, w, _ = flow.shape
  src_pts, src_ok = correspondence_points(source_keypoints, limb_fractions)          # (B, K, N, 2)
  tgt_pts, tgt_ok = correspondence_points(target_keypoints, limb_fractions)          # (B, N, 2)
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  centres = jnp.stack([ys, xs], -1).reshape(-1, 2) * level + 0.5 * (level - 1)      # image px (y, x)

  def one_pair(tgt, src, common):
    displacement = jax.lax.stop_gradient(
        thin_plate_spline(tgt, src - tgt, common, centres, TPS_SMOOTHING_PX2))     # (M, 2) (y, x)
    d2 = jnp.sum(jnp.square(centres[:, None] - tgt[None]), -1)
    near = jnp.min(jnp.where(common[None], d2, jnp.inf), 1) <= (image_height * DENSE_RADIUS_OF_HEIGHT) ** 2
    weight = near.astype(jnp.float32) * (jnp.sum(common) >= 4)
    return displacement[:, ::-1] / float(level), weight                               # (x, y) level px

  common = src_ok & tgt_ok[:, None]
  expected, weight = jax.vmap(jax.vmap(one_pair, in_axes=(None, 0, 0)), in_axes=(0, 0, 0))(
      tgt_pts, src_pts, common)                                                      # (B, K, M, 2), (B, K, M)
  f = flow.astype(jnp.float32).reshape(b, k, h * w, 2)
  err = jnp.sqrt(jnp.sum(jnp.square(f - expected), -1) + 1e-6)
  return jnp.sum(err * weight) / jnp.maximum(jnp.sum(weight), 1.0)
