"""Image files and sizes: decoding with errors that name the file, resizing, rescaling points with it.

The one place for two rules every reader, the pipeline and the inference tools share:
- decoding: `decode_image(bytes, name)` -> (H, W, 3) uint8 RGB, ValueError naming the file otherwise;
  `check_image_bytes` fully decodes (TFDS preparation, so a truncated file fails there, not mid-training).
- resizing: bilinear (PIL), with points ((y, x) pixels, pixel centres at integers) moved so that pixel
  centres stay pixel centres: `y' = (y + 0.5) * H' / H - 0.5`, `x' = (x + 0.5) * W' / W - 0.5`; a
  missing point (any coordinate < 0) stays -1 (`rescale_points`).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode_image(data: bytes, name: str) -> np.ndarray:
  """Decodes JPEG/PNG/BMP bytes to (H, W, 3) uint8; raises ValueError naming the file on failure."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      return np.asarray(im.convert("RGB"))
  except Exception as e:  # PIL raises several types for broken files
    raise ValueError(f"Corrupt or unreadable image {name!r} ({type(e).__name__}: {e}).") from e


def read_image(path: str) -> np.ndarray:
  """Reads and decodes an image file to (H, W, 3) uint8; FileNotFoundError / ValueError naming it."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise FileNotFoundError(f"Cannot read image {path} ({e}).") from e
  return decode_image(data, path)


def check_image_bytes(data: bytes, path: str) -> tuple[int, int]:
  """Fully decodes image bytes; returns (H, W) or raises ValueError naming `path`."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      im.load()
      return im.size[1], im.size[0]
  except Exception as e:  # PIL raises several types for broken files
    raise ValueError(f"Corrupt or unreadable image: {path} ({type(e).__name__}: {e})") from e


def rescale_points(points: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
  """Moves (J, 2) (y, x) pixel points from an image of `from_size` (h, w) to one of `to_size` (H, W).

  Pixel centres stay pixel centres (module docstring); points with a negative coordinate stay -1.
  Returns a new (J, 2) float32 array.
  """
  pts = np.asarray(points, np.float32)
  scale = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]], np.float32)
  out = (pts + 0.5) * scale - 0.5
  out[(pts < 0).any(axis=-1)] = -1.0
  return out


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """(h, w, 3) uint8 -> (H, W, 3) uint8, bilinear; the input itself when it already has that size."""
  if tuple(image.shape[:2]) == tuple(size):
    return image
  return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_example(image: np.ndarray, keypoints: np.ndarray,
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Resizes (h, w, 3) uint8 to size (H, W) (bilinear) and rescales (J, 2) (y, x) keypoints (-1 kept).

  Returns the inputs unchanged when the image already has that size.
  """
  h, w = image.shape[:2]
  if (h, w) == tuple(size):
    return image, keypoints
  return resize_image(image, size), rescale_points(keypoints, (h, w), size)
