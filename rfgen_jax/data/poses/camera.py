"""Camera-pose encoders: a view or a pose vector broadcast to every pixel (docs/design.md, "## 4. Data").

| encoder | raw pose | map |
| --- | --- | --- |
| `OneHotViewEncoder` | M2N's ShapeNet `pose`: `[azimuth index, elevation in degrees]` | one-hot azimuth (36) and one-hot elevation (3) concatenated, broadcast to H x W (M2N's `pose_one_hot`) |
| `VectorPoseEncoder` | a D-vector (KITTI: M2N's 6-DoF `pose`) | the normalised vector broadcast to H x W |

KITTI normalisation (`VectorPoseEncoder.normalisation`):
- "none": the stored vector as is (what M2N feeds its network; M2N itself encodes target - source).
- "standardize": per component `(v - mean) / std`, with `mean`/`std` computed on the training split
  (`datasets.m2n.pose_statistics(records)`) or given in the config as `data.pose_mean` / `data.pose_std`.
  This is the default of `configs/kitti.py`: M2N does not document the units of its KITTI vector, and raw
  translations along a drive reach hundreds of metres, far outside the range of the other inputs.
- "scale": `v / scale` with a fixed per-component `scale` (`data.pose_scale`).
"""
from __future__ import annotations

import numpy as np

from rfgen_jax.data.poses.base import at
from rfgen_jax.data.poses.base import broadcast_vector
from rfgen_jax.data.poses.base import PoseEncoder

NORMALISATIONS = ("none", "standardize", "scale")
CAMERA_ENCODINGS = ("one_hot_view", "vector")


class OneHotViewEncoder(PoseEncoder):
  """M2N's ShapeNet view encoding: one-hot azimuth + one-hot elevation, broadcast to H x W.

  The raw pose is M2N's stored `pose` `[azimuth index, elevation in degrees]` (M2N: 36 azimuths every 10
  degrees, elevations 0, 10, 20). Channel `a` (0 <= a < num_azimuths) is 1 for azimuth index `a mod
  num_azimuths`; channel `num_azimuths + e` is 1 for elevation index `e = (elevation - elevation_min) /
  elevation_step`, as M2N's `pose_one_hot[36 + int(elevation / 10)]`.

  Args:
    num_azimuths: azimuth bins (36).
    num_elevations: elevation bins (3).
    elevation_step: degrees between elevation bins (10).
    elevation_min: the elevation of bin 0 in degrees (0).
  """

  def __init__(self, num_azimuths: int = 36, num_elevations: int = 3, elevation_step: float = 10.0,
               elevation_min: float = 0.0):
    self.num_azimuths = int(num_azimuths)
    self.num_elevations = int(num_elevations)
    self.elevation_step = float(elevation_step)
    self.elevation_min = float(elevation_min)

  @property
  def channels(self) -> int:
    return self.num_azimuths + self.num_elevations

  def indices(self, pose, where: str = "") -> tuple[int, int]:
    """(azimuth index, elevation index) of a raw pose; ValueError naming `where` when it is invalid."""
    p = np.asarray(pose, np.float64).reshape(-1)
    if p.shape[0] != 2:
      raise ValueError(f"A view pose must have 2 values [azimuth index, elevation degrees], got "
                       f"{p.shape[0]}: {p.tolist()}{at(where)}.")
    az = p[0]
    if not np.isfinite(az) or abs(az - round(az)) > 1e-3:
      raise ValueError(f"Azimuth index {az} is not an integer{at(where)}.")
    e = (p[1] - self.elevation_min) / self.elevation_step
    ei = int(round(e))
    if not np.isfinite(e) or abs(e - ei) > 1e-3 or not 0 <= ei < self.num_elevations:
      raise ValueError(
          f"Elevation {p[1]} degrees is not one of the {self.num_elevations} bins "
          f"{self.elevation_min} + {self.elevation_step} * i{at(where)}.")
    return int(round(az)) % self.num_azimuths, ei

  def vector(self, pose, where: str = "") -> np.ndarray:
    """(channels,) float32 one-hot pair."""
    az, el = self.indices(pose, where)
    v = np.zeros((self.channels,), np.float32)
    v[az] = 1.0
    v[self.num_azimuths + el] = 1.0
    return v

  def encode(self, pose, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """Returns (H, W, num_azimuths + num_elevations) float32."""
    return broadcast_vector(self.vector(pose, where), image_size)


class VectorPoseEncoder(PoseEncoder):
  """A D-dimensional pose vector (KITTI: 6-DoF), normalised, broadcast to H x W.

  Args:
    dim: D (6 for KITTI).
    normalisation: "none" | "standardize" | "scale" (module docstring).
    mean, std: (D,) for "standardize" (std values below 1e-6 are treated as 1).
    scale: (D,) for "scale".
  """

  def __init__(self, dim: int = 6, normalisation: str = "none", mean=None, std=None, scale=None):
    if normalisation not in NORMALISATIONS:
      raise ValueError(f"Unknown pose normalisation {normalisation!r}; accepted: {NORMALISATIONS}.")
    self.dim = int(dim)
    self.normalisation = normalisation
    self.offset = np.zeros((self.dim,), np.float32)
    self.divisor = np.ones((self.dim,), np.float32)
    if normalisation == "standardize":
      if mean is None or std is None:
        raise ValueError("Pose normalisation 'standardize' needs the mean and std of the training poses "
                         "(data.pose_mean and data.pose_std, or the training split's, computed when the split is opened).")
      self.offset = self._check(mean, "mean")
      std = self._check(std, "std")
      self.divisor = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    elif normalisation == "scale":
      if scale is None:
        raise ValueError("Pose normalisation 'scale' needs data.pose_scale (one divisor per component).")
      scale = self._check(scale, "scale")
      if (scale == 0).any():
        raise ValueError(f"data.pose_scale has a zero component: {scale.tolist()}.")
      self.divisor = scale

  def _check(self, values, name: str) -> np.ndarray:
    v = np.asarray(values, np.float32).reshape(-1)
    if v.shape[0] != self.dim:
      raise ValueError(f"Pose {name} has {v.shape[0]} components, the pose vectors {self.dim}.")
    return v

  @property
  def channels(self) -> int:
    return self.dim

  def vector(self, pose, where: str = "") -> np.ndarray:
    """(dim,) float32 normalised vector; ValueError naming `where` for a wrong length or non-finite value."""
    p = np.asarray(pose, np.float32).reshape(-1)
    if p.shape[0] != self.dim:
      raise ValueError(f"Expected a pose vector of {self.dim} values, got {p.shape[0]}{at(where)}.")
    if not np.isfinite(p).all():
      raise ValueError(f"Pose vector has non-finite values {p.tolist()}{at(where)}.")
    return (p - self.offset) / self.divisor

  def encode(self, pose, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """Returns (H, W, dim) float32."""
    return broadcast_vector(self.vector(pose, where), image_size)
