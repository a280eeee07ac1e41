"""Pose maps: structural maps given to the model next to images (DESIGN.md section 4).

A `PoseEncoder` turns one example's pose annotation into a (H, W, P) float32 map with `P = channels`.
`make_pose_encoder(config)` is the one entry the pipeline and the tools use; it dispatches on
`config.data.pose_kind`: "keypoints" -> `KeypointHeatmaps` (here), "camera" -> `OneHotViewEncoder` or
`VectorPoseEncoder`, "landmarks" -> `LandmarkHeatmapEncoder` (`camera_poses.py`). The model's pose
channels P are `config.data.pose_channels`, checked against the encoder's `channels`.
"""
from __future__ import annotations

import abc

import numpy as np


def gaussian_heatmaps(keypoints: np.ndarray, image_size: tuple[int, int], sigma: float) -> np.ndarray:
  """Gaussian heatmaps, one channel per joint, computed separably (rows x columns outer product).

  Args:
    keypoints: (J, 2) (y, x) pixel coordinates (pixel centres at integers); a joint with a negative
      coordinate (-1) is missing.
    image_size: (H, W).
    sigma: standard deviation in pixels.

  Returns:
    (H, W, J) float32; channel j is exp(-((y - y_j)^2 + (x - x_j)^2) / (2 sigma^2)), 1 at the keypoint,
    all zeros for a missing joint.
  """
  h, w = image_size
  kp = np.asarray(keypoints, np.float32)
  present = (kp >= 0).all(axis=-1)                                    # (J,)
  inv = np.float32(-0.5 / (sigma * sigma))
  gy = np.exp(inv * np.square(np.arange(h, dtype=np.float32)[:, None] - kp[None, :, 0]))  # (H, J)
  gx = np.exp(inv * np.square(np.arange(w, dtype=np.float32)[:, None] - kp[None, :, 1]))  # (W, J)
  gy *= present[None, :]
  return gy[:, None, :] * gx[None, :, :]


class PoseEncoder(abc.ABC):
  """Encodes one example's pose into a (H, W, channels) float32 map."""

  @property
  @abc.abstractmethod
  def channels(self) -> int:
    """P, the number of channels of a pose map."""

  @abc.abstractmethod
  def encode(self, pose: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Returns the (H, W, channels) float32 map of `pose` for an image of size (H, W)."""


class KeypointHeatmaps(PoseEncoder):
  """Body keypoints as Gaussian heatmaps.

  Args:
    num_joints: J (18 for OpenPose/COCO order).
    sigma_at_128: standard deviation in pixels at a 128-high image; scaled with the image height.
  """

  def __init__(self, num_joints: int = 18, sigma_at_128: float = 6.0):
    self.num_joints = num_joints
    self.sigma_at_128 = sigma_at_128

  @property
  def channels(self) -> int:
    return self.num_joints

  def sigma(self, image_height: int) -> float:
    return self.sigma_at_128 * image_height / 128.0

  def encode(self, pose: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """pose: (J, 2) (y, x) pixels, -1 missing. Returns (H, W, J) float32 heatmaps."""
    if pose.shape != (self.num_joints, 2):
      raise ValueError(f"Expected keypoints of shape ({self.num_joints}, 2), got {pose.shape}.")
    return gaussian_heatmaps(pose, image_size, self.sigma(image_size[0]))


POSE_KINDS = ("keypoints", "camera", "landmarks")


def make_pose_encoder(config, pose_stats=None) -> PoseEncoder:
  """The encoder for `config.data.pose_kind`; checks that it gives `config.data.pose_channels` channels.

  Args:
    config: the experiment config (keys read: see `camera_poses.pose_encoder_for`).
    pose_stats: (mean, std) of the training poses, for camera vectors with `data.pose_normalisation =
      "standardize"` when the config holds none (`m2n.pose_statistics`).

  Returns:
    A `PoseEncoder` whose `channels` equals `config.data.pose_channels`; ValueError naming
    `data.pose_channels` (and the value to set) otherwise, or naming `data.pose_kind` when unknown.
  """
  kind = config.data.pose_kind
  if kind == "keypoints":
    encoder = KeypointHeatmaps(config.data.num_keypoints, config.data.heatmap_sigma)
  elif kind in POSE_KINDS:
    from rfgen_jax.data import camera_poses  # pylint: disable=g-import-not-at-top  (camera_poses imports us)
    encoder = camera_poses.build_encoder(config, pose_stats)
  else:
    raise ValueError(f"Unknown data.pose_kind={kind!r}; accepted: {POSE_KINDS}.")
  if encoder.channels != config.data.pose_channels:
    raise ValueError(f"data.pose_channels={config.data.pose_channels} but the {kind!r} encoder "
                     f"({type(encoder).__name__}) gives {encoder.channels} channels; set "
                     f"--config.data.pose_channels={encoder.channels}.")
  return encoder
