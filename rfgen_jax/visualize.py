"""Pictures of batches and of the generator's inner maps.

- `sample_grid`: one row per tuple, columns sources | target pose | generated | ground truth.
- `flow_to_rgb` (colour wheel), `scalar_to_rgb` (occlusion, attention), `inner_maps`,
  `inner_maps_grid` (one example: a row per source, flow | occlusion | attention per level) and
  `sample_grid_with_maps` (the sample grid with each row's maps appended; `eval.inner_maps`).
"""
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


# ------------------------------------------------------------------------------------- inner maps
# The generator's per-level maps (`rfgen_jax.models.generator.Generator.__call__`; docs/design.md,
# "## 2. Generator"): flows (B, K, h, w, 2) in pixels of the level's map (channel 0 = x offset, 1 = y
# offset), occlusion (B, K, h, w, 1) in [0, 1] (1 = not visible in source k) and attention
# (B, K, h, w, 1), softmax weights over the K sources.

def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Vectorised HSV -> RGB, all in [0, 1]; returns (..., 3) float32."""
  h, s, v = (np.asarray(a, np.float32) for a in (h, s, v))
  k = (np.array([5.0, 3.0, 1.0], np.float32) + h[..., None] * 6.0) % 6.0
  return v[..., None] * (1.0 - s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
  """Flow colour wheel: (..., h, w, 2) flow in pixels (x, y offsets) -> (..., h, w, 3) uint8.

  Hue is the direction (0 = +x, right: red; +y, down: a quarter turn later, yellow-green; -x: cyan;
  -y: violet), saturation the magnitude divided by `max_magnitude` (clipped to 1), value 1: zero flow
  is white and a constant flow is one colour. `max_magnitude` None: the largest magnitude in `flow`
  (all of it, so maps of several sources drawn in one call share a scale).
  """
  flow = np.asarray(flow, np.float32)
  if flow.shape[-1] != 2:
    raise ValueError(f"flow_to_rgb expects (..., 2) flows, got shape {flow.shape}.")
  dx, dy = flow[..., 0], flow[..., 1]
  magnitude = np.hypot(dx, dy)
  scale = float(np.max(magnitude)) if max_magnitude is None else float(max_magnitude)
  saturation = np.clip(magnitude / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(magnitude)
  hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
  return np.round(hsv_to_rgb(hue, saturation, np.ones_like(hue)) * 255).astype(np.uint8)


def flow_wheel(size: int = 64) -> np.ndarray:
  """(size, size, 3) uint8 legend of `flow_to_rgb`: the colour of the flow pointing from the centre."""
  c = (size - 1) / 2.0
  y, x = np.mgrid[0:size, 0:size].astype(np.float32)
  flow = np.stack([x - c, y - c], axis=-1)
  image = flow_to_rgb(flow, max_magnitude=c)
  image[np.hypot(x - c, y - c) > c] = 255
  return image


def scalar_to_rgb(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
  """(..., h, w) or (..., h, w, 1) values -> (..., h, w, 3) uint8 grey, `vmin` black, `vmax` white."""
  values = np.asarray(values, np.float32)
  if values.shape and values.shape[-1] == 1:
    values = values[..., 0]
  grey = np.clip((values - vmin) / (vmax - vmin), 0.0, 1.0)
  return np.repeat(np.round(grey * 255).astype(np.uint8)[..., None], 3, axis=-1)


def resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """(h, w, C) -> (H, W, C) by nearest-neighbour (each output pixel centre reads the cell holding it)."""
  image = np.asarray(image)
  h, w = image.shape[:2]
  rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
  cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
  return image[rows][:, cols]


MAP_KINDS = ("flow", "occlusion", "attention")


def inner_maps(outputs: dict, index: int = 0, size: tuple[int, int] | None = None,
               flow_key: str = "flows") -> dict[str, list[list[np.ndarray]]]:
  """The inner maps of one example as uint8 pictures.

  Args:
    outputs: the generator's output dict (numpy or jax arrays): lists over levels of `flows`
      (B, K, h, w, 2), `occlusion` and `attention` (B, K, h, w, 1).
    index: the example (batch row).
    size: (H, W) to resize every map to (nearest); None keeps each level's size.
    flow_key: "flows" (refined) or "initial_flows" (the flow estimator's).

  Returns:
    {"flow", "occlusion", "attention"}: each a list over levels (coarse to fine) of lists over the K
    sources of (h, w, 3) uint8 images. Flows of one level share one colour scale (the largest
    magnitude over its K sources); occlusion and attention are grey, 0 black and 1 white.
  """
  pictures: dict[str, list[list[np.ndarray]]] = {kind: [] for kind in MAP_KINDS}
  for flow, occ, att in zip(outputs[flow_key], outputs["occlusion"], outputs["attention"]):
    per_kind = {"flow": flow_to_rgb(np.asarray(flow[index])), "occlusion": scalar_to_rgb(occ[index]),
                "attention": scalar_to_rgb(att[index])}
    for kind, images in per_kind.items():
      pictures[kind].append([resize_nearest(im, size) if size is not None else im for im in images])
  return pictures


def inner_maps_grid(outputs: dict, index: int = 0, size: tuple[int, int] | None = None) -> np.ndarray:
  """One example's inner maps as one uint8 image.

  A row per source; columns level by level (coarse to fine): flow | occlusion | attention, every cell
  resized (nearest) to `size` (default: the generated image's (H, W) when `outputs` holds `image`,
  else the finest level's map size); 2-pixel white separators.
  """
  if size is None:
    ref = outputs["image"] if "image" in outputs else outputs["attention"][-1][:, 0]
    size = tuple(int(s) for s in np.shape(ref)[1:3])
  maps = inner_maps(outputs, index, size)
  k = len(maps["flow"][0])
  rows = [hstack_with_separator([maps[kind][level][s] for level in range(len(maps["flow"]))
                                 for kind in MAP_KINDS]) for s in range(k)]
  sep = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
  return np.concatenate([c for row in rows for c in (row, sep)][:-1], axis=0)


def sample_grid_with_maps(batch: dict, outputs: dict, max_rows: int = 8) -> np.ndarray:
  """`sample_grid` with the inner maps appended to each row.

  Row r: sources | target pose | generated | ground truth | then for each level (coarse to fine) and
  each source k: flow, occlusion, attention of source k, each resized (nearest) to the image size.
  Shape (rows * H, (K + 3 + 3 * L * K) * W, 3) uint8, L = the number of fusion levels.

  Args:
    batch: as `sample_grid`.
    outputs: the generator's output dict for that batch (`image` and the per-level lists).
    max_rows: at most this many tuples are shown.
  """
  base = sample_grid(batch, np.asarray(outputs["image"]), max_rows)
  b = min(max_rows, np.shape(batch["source_images"])[0])
  h, w = np.shape(batch["source_images"])[2:4]
  rows = []
  for r in range(b):
    maps = inner_maps(outputs, r, (h, w))
    cells = [maps[kind][level][s] for level in range(len(maps["flow"]))
             for s in range(len(maps["flow"][level])) for kind in MAP_KINDS]
    rows.append(np.concatenate(cells, axis=1))
  return np.concatenate([base, np.concatenate(rows, axis=0)], axis=1)
