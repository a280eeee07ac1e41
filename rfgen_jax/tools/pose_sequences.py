"""Pose sequences for animations: built-in walk cycle, turn-around and orbit, and keypoints from a CSV.

People (OpenPose/COCO-18 keypoints, (y, x) pixels, -1 missing; `rfgen_jax.data.keypoints`):
- `walk_cycle(base, num_frames)`: a procedural walk in the image plane. Thighs swing about the hips by
  +-`swing` degrees (left and right in opposite phase), shins bend back at the knee during the forward
  swing, arms swing about the shoulders opposite to the legs. Lengths of every limb are kept.
- `turn_around(base, num_frames)`: one full turn of the body about its vertical axis. The base pose is
  taken as seen from the front: each joint's horizontal offset from the body's centre line is its
  radius, the nose and eyes lie in front of the head's axis (depth = a quarter of the shoulder width),
  the ears on it. At angle phi the image offset is `r cos(phi) - z sin(phi)`, and a face joint whose
  depth `r sin(phi) + z cos(phi)` points away from the camera (behind the head) is missing, as in
  OpenPose annotations of a back view. Joint labels stay with the body (the right shoulder stays
  joint 2 when it appears on the other side).

Camera poses (M2N's `[azimuth index, elevation degrees]`, `rfgen_jax.data.camera_poses`):
- `orbit(base, num_frames, num_azimuths)`: every azimuth bin in turn, starting at the base's, at the
  base's elevation (ShapeNet chairs, the synthetic turntable). KITTI's 6-DoF vectors have no orbit.

`read_pose_csv(path, num_joints)`: one frame per line, in the annotation format of
`rfgen_jax.data.annotations` (`name:keypoints_y:keypoints_x`), frames in file order.
"""
from __future__ import annotations

import numpy as np

from rfgen_jax import errors
from rfgen_jax.data import annotations

SEQUENCES = ("walk", "turn", "orbit")

# OpenPose-18 joint indices.
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = 0, 1, 2, 3, 4, 5, 6, 7
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR = range(8, 18)
FACE_FRONT = (NOSE, R_EYE, L_EYE)
FACE = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)


def _check_base(base: np.ndarray, what: str) -> np.ndarray:
  kp = np.asarray(base, np.float64)
  if kp.shape != (18, 2):
    raise errors.BadInputError(f"The {what} sequence needs a base pose of 18 OpenPose keypoints (18, 2), got "
                     f"shape {kp.shape}.")
  return kp


def _present(kp: np.ndarray) -> np.ndarray:
  return (kp >= 0).all(axis=-1)


def _rotate_about(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
  """Rotates (y, x) points about `centre` by `angle` radians (positive: +x towards +y, clockwise on
  screen)."""
  c, s = np.cos(angle), np.sin(angle)
  d = points - centre
  return centre + np.stack([d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c], axis=-1)


def walk_cycle(base: np.ndarray, num_frames: int = 16, swing: float = 25.0, knee: float = 30.0,
               arm_swing: float = 20.0) -> np.ndarray:
  """(T, 18, 2) float32 keypoints of one walk cycle from `base` (see the module docstring).

  Args:
    base: (18, 2) (y, x) keypoints, -1 missing (missing joints stay missing).
    num_frames: T frames of one cycle (frame 0 is the base pose plus the swing at phase 0).
    swing, knee, arm_swing: amplitudes in degrees.
  """
  kp = _check_base(base, "walk")
  present = _present(kp)
  frames = []
  for t in range(int(num_frames)):
    phase = 2 * np.pi * t / num_frames
    out = kp.copy()
    for side, (hip, knee_j, ankle, shoulder, elbow, wrist) in enumerate(
        ((R_HIP, R_KNEE, R_ANKLE, R_SHOULDER, R_ELBOW, R_WRIST),
         (L_HIP, L_KNEE, L_ANKLE, L_SHOULDER, L_ELBOW, L_WRIST))):
      s = np.sin(phase + np.pi * side)               # the two sides in opposite phase
      thigh = np.deg2rad(swing) * s
      bend = np.deg2rad(knee) * max(0.0, np.cos(phase + np.pi * side))  # knee bends while swinging forward
      if present[hip] and present[knee_j]:
        out[knee_j] = _rotate_about(kp[knee_j], kp[hip], thigh)
        if present[ankle]:
          shin = _rotate_about(kp[ankle], kp[knee_j], thigh - bend) - kp[knee_j]
          out[ankle] = out[knee_j] + shin
      arm = -np.deg2rad(arm_swing) * s               # arms opposite to the legs of their side
      if present[shoulder] and present[elbow]:
        out[elbow] = _rotate_about(kp[elbow], kp[shoulder], arm)
        if present[wrist]:
          out[wrist] = out[elbow] + _rotate_about(kp[wrist], kp[elbow], arm) - kp[elbow]
    out[~present] = -1.0
    frames.append(out)
  return np.asarray(frames, np.float32)


def turn_around(base: np.ndarray, num_frames: int = 24) -> np.ndarray:
  """(T, 18, 2) float32 keypoints of one full turn about the body's vertical axis (module docstring).

  The centre line is the mean x of the present shoulders and hips (else of all present joints).
  """
  kp = _check_base(base, "turn-around")
  present = _present(kp)
  if not present.any():
    raise errors.BadInputError("The turn-around sequence needs a base pose with at least one joint present.")
  torso = [j for j in (R_SHOULDER, L_SHOULDER, R_HIP, L_HIP) if present[j]]
  centre_x = kp[torso, 1].mean() if torso else kp[present, 1].mean()
  radius = kp[:, 1] - centre_x
  depth = np.zeros(18)
  if present[R_SHOULDER] and present[L_SHOULDER]:
    forward = 0.25 * abs(kp[R_SHOULDER, 1] - kp[L_SHOULDER, 1])
  else:
    forward = 0.05 * (kp[present, 0].max() - kp[present, 0].min())
  depth[list(FACE_FRONT)] = forward
  # Ears sit on the head's axis in depth but not in x: for the depth test use their radius only.
  head_x = kp[NOSE, 1] if present[NOSE] else centre_x
  frames = []
  for t in range(int(num_frames)):
    phi = 2 * np.pi * t / num_frames
    out = kp.copy()
    out[:, 1] = centre_x + radius * np.cos(phi) - depth * np.sin(phi)
    visible = present.copy()
    for j in FACE:
      if not present[j]:
        continue
      r = kp[j, 1] - head_x
      z = r * np.sin(phi) + depth[j] * np.cos(phi)
      limit = 0.0 if j in FACE_FRONT else -0.5 * max(forward, 1e-6)
      if z < limit:
        visible[j] = False
    out[~visible] = -1.0
    frames.append(out)
  return np.asarray(frames, np.float32)


def orbit(base: np.ndarray, num_frames: int | None = None, num_azimuths: int = 36) -> np.ndarray:
  """(T, 2) float32 camera poses `[azimuth index, elevation degrees]`: `num_frames` (default: all
  `num_azimuths`) azimuths evenly spaced over a full turn, from the base's azimuth, at its elevation."""
  p = np.asarray(base, np.float64).reshape(-1)
  if p.shape[0] != 2:
    raise errors.BadInputError("The orbit sequence needs a view pose [azimuth index, elevation degrees] "
                     f"(ShapeNet chairs, the turntable); got a pose of {p.shape[0]} values.")
  n = int(num_azimuths if num_frames is None else num_frames)
  steps = np.round(np.arange(n) * num_azimuths / n)
  return np.stack([(p[0] + steps) % num_azimuths, np.full(n, p[1])], axis=-1).astype(np.float32)


def read_pose_csv(path: str, num_joints: int = 18) -> tuple[list[str], np.ndarray]:
  """(frame names in file order, (T, J, 2) float32 keypoints) of an annotation-format CSV."""
  table = annotations.read_annotations(path, num_joints)
  if not table:
    raise errors.BadInputError(f"{path}: no keypoint rows.")
  names = list(table)
  return names, np.stack([np.asarray(table[n], np.float32) for n in names])
