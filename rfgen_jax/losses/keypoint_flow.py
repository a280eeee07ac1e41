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
