"""The pose-encoder interface and the two map builders every encoder uses (docs/design.md, "## 4. Data").

A `PoseEncoder` turns one example's raw pose (keypoints, landmarks, a camera vector) into a (H, W, P)
float32 map with `P = channels`. `encode` takes an optional `where=` string (file and entry of the raw
pose) that error messages name.
"""
from __future__ import annotations

import abc

import numpy as np


def at(where: str) -> str:
  """" (where)" for error messages, "" when unknown."""
  return f" ({where})" if where else ""


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


def broadcast_vector(vector: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """(P,) vector -> (H, W, P) float32 map holding the vector at every pixel (a copy, writable)."""
  h, w = image_size
  v = np.asarray(vector, np.float32)
  return np.ascontiguousarray(np.broadcast_to(v, (h, w, v.shape[0])))


class PoseEncoder(abc.ABC):
  """Encodes one example's pose into a (H, W, channels) float32 map."""

  @property
  @abc.abstractmethod
  def channels(self) -> int:
    """P, the number of channels of a pose map."""

  @abc.abstractmethod
  def encode(self, pose: np.ndarray, image_size: tuple[int, int], where: str = "") -> np.ndarray:
    """Returns the (H, W, channels) float32 map of `pose` for an image of size (H, W)."""
