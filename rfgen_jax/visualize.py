"""Sample grids: one row per tuple, columns sources | target pose | generated | ground truth."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] float images -> uint8 [0, 255]."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def hstack_with_separator(cells, width: int = 2) -> np.ndarray:
  """Concatenates (H, w_i, 3) uint8 cells left to right with white `width`-pixel separators."""
  sep = np.full((cells[0].shape[0], width, 3), 255, np.uint8)
  return np.concatenate([c for cell in cells for c in (cell, sep)][:-1], axis=1)


def pose_to_rgb(pose: np.ndarray) -> np.ndarray:
  """(..., H, W, P) pose maps -> (..., H, W, 3) uint8: each channel in its own hue, max over channels."""
  pose = np.asarray(pose, np.float32)
  p = pose.shape[-1]
  hues = np.linspace(0.0, 1.0, p, endpoint=False)
  # HSV(h, 1, 1) -> RGB for each channel's colour.
  k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
  colours = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)            # (P, 3)
  weights = np.clip(pose, 0.0, 1.0)
  rgb = np.max(weights[..., :, None] * colours, axis=-2)             # (..., H, W, 3)
  return np.round(rgb * 255).astype(np.uint8)


def sample_grid(batch: dict, generated: np.ndarray, max_rows: int = 8) -> np.ndarray:
  """Builds a uint8 grid image (rows*H, (K+3)*W, 3).

  Args:
    batch: with `source_images` (B, K, H, W, 3), `target_pose` (B, H, W, P), `target_image` (B, H, W, 3).
    generated: (B, H, W, 3) in [-1, 1].
    max_rows: at most this many tuples are shown.
  """
  sources = to_uint8(batch["source_images"][:max_rows])
  b, k = sources.shape[:2]
  columns = [sources[:, i] for i in range(k)]
  columns += [pose_to_rgb(batch["target_pose"][:b]), to_uint8(generated[:b]),
              to_uint8(batch["target_image"][:b])]
  rows = [np.concatenate([c[r] for c in columns], axis=1) for r in range(b)]
  return np.concatenate(rows, axis=0)


def write_png(path: str, image: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(image).save(path)
