"""GFLA's training augmentation: a random affine transform applied to an image and to its keypoints.

Each image of a tuple (every source and the target) gets its own transform, as in GFLA's data loaders:
rotation uniform in +-`rotation` degrees about the image centre, scale uniform in `scale_range`, shift
uniform in +-`shift` pixels per axis at a 128-high image (scaled with the height). Pixels brought in from
outside are GFLA's grey (128, 128, 128); keypoints that leave the image become -1 (missing).

Numpy and PIL only (`Image.transform(..., Image.AFFINE)`), so it runs in grain worker processes.
Coordinates: pixel centres at integers, matrices act on (x, y, 1) column vectors.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

GREY = (128, 128, 128)


def affine_matrix(image_size: tuple[int, int], angle: float, shift_xy: tuple[float, float],
                  scale: float) -> np.ndarray:
  """Forward (input -> output pixel) 2x3 matrix: rotate by `angle` degrees and scale about the centre, shift.

  Args:
    image_size: (H, W).
    angle: degrees, counter-clockwise on screen (y points down).
    shift_xy: (dx, dy) pixels.
    scale: isotropic scale factor.

  Returns:
    (2, 3) float64 matrix M with out = M @ (x, y, 1).
  """
  h, w = image_size
  cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
  a = math.radians(angle)
  cos, sin = scale * math.cos(a), scale * math.sin(a)
  lin = np.array([[cos, sin], [-sin, cos]])
  centre = np.array([cx, cy])
  offset = centre - lin @ centre + np.asarray(shift_xy, np.float64)
  return np.concatenate([lin, offset[:, None]], axis=1)


def random_affine(rng: np.random.Generator, image_size: tuple[int, int], rotation: float, shift: float,
                  scale_range: tuple[float, float]) -> np.ndarray:
  """A random forward 2x3 matrix (see the module docstring); `shift` is in pixels at a 128-high image."""
  angle = rng.uniform(-rotation, rotation) if rotation else 0.0
  s = shift * image_size[0] / 128.0
  shift_xy = rng.uniform(-s, s, size=2) if s else np.zeros(2)
  lo, hi = scale_range
  scale = rng.uniform(lo, hi) if hi > lo else lo
  return affine_matrix(image_size, angle, tuple(shift_xy), scale)


def warp_image(image: np.ndarray, matrix: np.ndarray, fill=GREY) -> np.ndarray:
  """Applies the forward matrix to an (H, W, 3) uint8 image (bilinear), returns (H, W, 3) uint8."""
  h, w = image.shape[:2]
  full = np.vstack([matrix, [0.0, 0.0, 1.0]])
  inv = np.linalg.inv(full)[:2]
  # PIL samples output pixel (x, y) at its centre (x + 0.5, y + 0.5) and reads input coordinates with the
  # same half-pixel offset: conjugate the integer-centre matrix by a shift of 0.5.
  a, b, c = inv[0]
  d, e, f = inv[1]
  c = c + 0.5 - 0.5 * (a + b)
  f = f + 0.5 - 0.5 * (d + e)
  out = Image.fromarray(image).transform((w, h), Image.AFFINE, (a, b, c, d, e, f),
                                         resample=Image.BILINEAR, fillcolor=tuple(fill))
  return np.asarray(out)


def transform_keypoints(keypoints: np.ndarray, matrix: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """Moves (J, 2) (y, x) keypoints by the forward matrix; missing ones and ones leaving the image -> -1."""
  h, w = image_size
  kp = np.asarray(keypoints, np.float32)
  present = (kp >= 0).all(axis=-1)
  x = matrix[0, 0] * kp[:, 1] + matrix[0, 1] * kp[:, 0] + matrix[0, 2]
  y = matrix[1, 0] * kp[:, 1] + matrix[1, 1] * kp[:, 0] + matrix[1, 2]
  inside = present & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
  out = np.stack([y, x], axis=-1).astype(np.float32)
  out[~inside] = -1.0
  return out


def augment(image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator, rotation: float,
            shift: float, scale_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
  """Random affine of an (H, W, 3) uint8 image and its (J, 2) (y, x) keypoints; returns both moved."""
  size = image.shape[:2]
  m = random_affine(rng, size, rotation, shift, scale_range)
  return warp_image(image, m), transform_keypoints(keypoints, m, size)
