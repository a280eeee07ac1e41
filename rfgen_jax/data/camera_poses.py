"""Pose encoders for camera poses and facial landmarks (DESIGN.md section 4), and the dispatcher.

Every encoder follows `rfgen_jax.data.poses.PoseEncoder`: an attribute `channels` (P) and
`encode(raw_pose, image_size) -> (H, W, P) float32`. `encode` also takes an optional `where=` string
(file and entry of the raw pose) that error messages name.

| encoder | raw pose | map |
| --- | --- | --- |
| `OneHotViewEncoder` | M2N's ShapeNet `pose`: `[azimuth index, elevation in degrees]` | one-hot azimuth (36) and one-hot elevation (3) concatenated, broadcast to H x W (M2N's `pose_one_hot`) |
| `VectorPoseEncoder` | a D-vector (KITTI: M2N's 6-DoF `pose`) | the normalised vector broadcast to H x W |
| `LandmarkHeatmapEncoder` | (68, 2) landmarks, (y, x) pixels, -1 missing | 68 Gaussian heatmaps (`poses.gaussian_heatmaps`) |

KITTI normalisation (`VectorPoseEncoder.normalisation`):
- "none": the stored vector as is (what M2N feeds its network; M2N itself encodes target - source).
- "standardize": per component `(v - mean) / std`, with `mean`/`std` computed on the training split by
  `m2n.pose_statistics(records)` (or given in the config as `data.pose_mean` / `data.pose_std`). This is
  the default of `configs/kitti.py`: M2N does not document the units of its KITTI vector, and raw
  translations along a drive reach hundreds of metres, far outside the range of the other inputs.
- "scale": `v / scale` with a fixed per-component `scale` (`data.pose_scale`).

`poses.make_pose_encoder(config, pose_stats=None)` (alias `pose_encoder_for`) picks the encoder from
`config.data.pose_kind` (keypoints | camera | landmarks) and, for camera poses,
`config.data.camera_encoding` (one_hot_view | vector), and checks its channel count against
`config.data.pose_channels`; `build_encoder` here builds the camera and landmark ones.
"""
from __future__ import annotations

import numpy as np

from rfgen_jax.data import poses

NORMALISATIONS = ("none", "standardize", "scale")
CAMERA_ENCODINGS = ("one_hot_view", "vector")


def _at(where: str) -> str:
  return f" ({where})" if where else ""


def broadcast_vector(vector: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """(P,) vector -> (H, W, P) float32 map holding the vector at every pixel (a read-only broadcast view
  would be enough for the model; a copy is returned so callers may write into it)."""
  h, w = image_size
  v = np.asarray(vector, np.float32)
  return np.ascontiguousarray(np.broadcast_to(v, (h, w, v.shape[0])))


class OneHotViewEncoder(poses.PoseEncoder):
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
                       f"{p.shape[0]}: {p.tolist()}{_at(where)}.")
    az = p[0]
    if not np.isfinite(az) or abs(az - round(az)) > 1e-3:
      raise ValueError(f"Azimuth index {az} is not an integer{_at(where)}.")
    e = (p[1] - self.elevation_min) / self.elevation_step
    ei = int(round(e))
    if not np.isfinite(e) or abs(e - ei) > 1e-3 or not 0 <= ei < self.num_elevations:
      raise ValueError(
          f"Elevation {p[1]} degrees is not one of the {self.num_elevations} bins "
          f"{self.elevation_min} + {self.elevation_step} * i{_at(where)}.")
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


class VectorPoseEncoder(poses.PoseEncoder):
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
                         "(m2n.pose_statistics(records), or data.pose_mean and data.pose_std).")
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
      raise ValueError(f"Expected a pose vector of {self.dim} values, got {p.shape[0]}{_at(where)}.")
    if not np.isfinite(p).all():
      raise ValueError(f"Pose vector has non-finite values {p.tolist()}{_at(where)}.")
    return (p - self.offset) / self.divisor

  def encode(self, pose, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """Returns (H, W, dim) float32."""
    return broadcast_vector(self.vector(pose, where), image_size)


class LandmarkHeatmapEncoder(poses.PoseEncoder):
  """Facial landmarks as Gaussian heatmaps (the keypoint heatmaps of `poses.gaussian_heatmaps`).

  Args:
    num_landmarks: 68 (the iBUG 300-W / dlib / face_alignment order).
    sigma_at_128: standard deviation in pixels at a 128-high image, scaled with the image height (the
      meaning of `config.data.heatmap_sigma`).
  """

  def __init__(self, num_landmarks: int = 68, sigma_at_128: float = 1.5):
    self.num_landmarks = int(num_landmarks)
    self.sigma_at_128 = float(sigma_at_128)

  @property
  def channels(self) -> int:
    return self.num_landmarks

  def sigma(self, image_height: int) -> float:
    return self.sigma_at_128 * image_height / 128.0

  def encode(self, pose, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """pose: (num_landmarks, 2) (y, x) pixels at `image_size`, -1 missing. Returns (H, W, num_landmarks)."""
    lm = np.asarray(pose, np.float32)
    if lm.shape != (self.num_landmarks, 2):
      raise ValueError(f"Expected landmarks of shape ({self.num_landmarks}, 2), got {lm.shape}{_at(where)}.")
    return poses.gaussian_heatmaps(lm, image_size, self.sigma(image_size[0]))


def _get(data, key, default):
  return data.get(key, default) if hasattr(data, "get") else getattr(data, key, default)


def build_encoder(config, pose_stats=None) -> poses.PoseEncoder:
  """The camera or landmark encoder of a config, unchecked (`poses.make_pose_encoder` checks channels).

  Keys read: for "camera" `data.camera_encoding` and either `data.num_azimuths`, `data.num_elevations`,
  `data.elevation_step`, `data.elevation_min` (one_hot_view) or `data.pose_dim`,
  `data.pose_normalisation`, `data.pose_mean`, `data.pose_std`, `data.pose_scale` (vector); for
  "landmarks" `data.num_landmarks` and `data.heatmap_sigma`.
  """
  d = config.data
  kind = d.pose_kind
  if kind == "camera":
    encoding = _get(d, "camera_encoding", "one_hot_view")
    if encoding == "one_hot_view":
      return OneHotViewEncoder(_get(d, "num_azimuths", 36), _get(d, "num_elevations", 3),
                               _get(d, "elevation_step", 10.0), _get(d, "elevation_min", 0.0))
    if encoding == "vector":
      mean, std = _get(d, "pose_mean", None), _get(d, "pose_std", None)
      if (mean is None or std is None) and pose_stats is not None:
        mean, std = pose_stats
      return VectorPoseEncoder(_get(d, "pose_dim", 6), _get(d, "pose_normalisation", "none"),
                               mean=mean, std=std, scale=_get(d, "pose_scale", None))
    raise ValueError(f"Unknown data.camera_encoding={encoding!r}; accepted: {CAMERA_ENCODINGS}.")
  if kind == "landmarks":
    return LandmarkHeatmapEncoder(_get(d, "num_landmarks", 68), d.heatmap_sigma)
  raise ValueError(f"build_encoder handles data.pose_kind 'camera' and 'landmarks', got {kind!r}.")


def pose_channels_for(config) -> int:
  """P of a config's pose kind, from the config alone (no pose statistics needed): for validation."""
  d = config.data
  if d.pose_kind == "keypoints":
    return int(d.num_keypoints)
  if d.pose_kind == "landmarks":
    return int(_get(d, "num_landmarks", 68))
  if d.pose_kind == "camera":
    encoding = _get(d, "camera_encoding", "one_hot_view")
    if encoding == "one_hot_view":
      return int(_get(d, "num_azimuths", 36)) + int(_get(d, "num_elevations", 3))
    if encoding == "vector":
      return int(_get(d, "pose_dim", 6))
    raise ValueError(f"Unknown data.camera_encoding={encoding!r}; accepted: {CAMERA_ENCODINGS}.")
  raise ValueError(f"Unknown data.pose_kind={d.pose_kind!r}; accepted: {poses.POSE_KINDS}.")


def pose_encoder_for(config, pose_stats=None) -> poses.PoseEncoder:
  """The pose encoder of a config, channels checked: `poses.make_pose_encoder` (the one entry)."""
  return poses.make_pose_encoder(config, pose_stats)
