"""Points as Gaussian heatmaps: body keypoints (OpenPose-18) and facial landmarks (iBUG 68).

The standard deviation `sigma` is `config.data.heatmap_sigma` pixels at every image size (GFLA's
`cords_to_map(..., sigma=6)`; `data.heatmap_sigma_scaling = "fixed"`) or, with `"height"`, that many
pixels at a 128-high image, scaled with the height: `sigma * H / 128`.
"""
from __future__ import annotations

import numpy as np

from rfgen_jax.data.poses.base import at
from rfgen_jax.data.poses.base import gaussian_heatmaps
from rfgen_jax.data.poses.base import PoseEncoder


class KeypointHeatmaps(PoseEncoder):
  """Body keypoints as Gaussian heatmaps.

  Args:
    num_joints: J (18 for OpenPose/COCO order).
    sigma_at_128: standard deviation in pixels at a 128-high image (scaled with the image height), or at
      every size with `scale_with_height=False`.
    scale_with_height: see the module docstring.
  """

  def __init__(self, num_joints: int = 18, sigma_at_128: float = 6.0, scale_with_height: bool = True):
    self.num_joints = int(num_joints)
    self.sigma_at_128 = float(sigma_at_128)
    self.scale_with_height = bool(scale_with_height)

  @property
  def channels(self) -> int:
    return self.num_joints

  def sigma(self, image_height: int) -> float:
    return self.sigma_at_128 * image_height / 128.0 if self.scale_with_height else self.sigma_at_128

  def encode(self, pose: np.ndarray, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """pose: (J, 2) (y, x) pixels, -1 missing. Returns (H, W, J) float32 heatmaps."""
    pose = np.asarray(pose)
    if pose.shape != (self.num_joints, 2):
      raise ValueError(f"Expected keypoints of shape ({self.num_joints}, 2), got {pose.shape}{at(where)}.")
    return gaussian_heatmaps(pose, image_size, self.sigma(image_size[0]))


class LandmarkHeatmapEncoder(KeypointHeatmaps):
  """Facial landmarks as Gaussian heatmaps (the same maps as body keypoints, with their own sigma).

  Args:
    num_landmarks: 68 (the iBUG 300-W / dlib / face_alignment order).
    sigma_at_128: standard deviation in pixels at a 128-high image (`config.data.heatmap_sigma`).
  """

  def __init__(self, num_landmarks: int = 68, sigma_at_128: float = 1.5, scale_with_height: bool = True):
    super().__init__(num_landmarks, sigma_at_128, scale_with_height)

  @property
  def num_landmarks(self) -> int:
    return self.num_joints

  def encode(self, pose, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """pose: (num_landmarks, 2) (y, x) pixels at `image_size`, -1 missing. Returns (H, W, num_landmarks)."""
    lm = np.asarray(pose, np.float32)
    if lm.shape != (self.num_landmarks, 2):
      raise ValueError(f"Expected landmarks of shape ({self.num_landmarks}, 2), got {lm.shape}{at(where)}.")
    return gaussian_heatmaps(lm, image_size, self.sigma(image_size[0]))
