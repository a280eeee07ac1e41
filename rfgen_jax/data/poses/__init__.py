"""Pose maps: the structural maps given to the model next to the images (docs/design.md, "## 4. Data").

`make_pose_encoder(config)` is the one dispatcher the pipeline and the tools use. It picks the encoder
from the pose kind of the data set `config.data.name` (a property of the registered data set,
`rfgen_jax.data.datasets`):

| pose kind | encoder | channels P | config keys |
| --- | --- | --- | --- |
| keypoints | `heatmaps.KeypointHeatmaps` | `data.num_keypoints` | `data.heatmap_sigma`, `heatmap_sigma_scaling` |
| landmarks | `heatmaps.LandmarkHeatmapEncoder` | `data.num_landmarks` | `data.heatmap_sigma`, `heatmap_sigma_scaling` |
| camera, `data.camera_encoding="one_hot_view"` | `camera.OneHotViewEncoder` | `num_azimuths + num_elevations` | `data.num_azimuths`, `num_elevations`, `elevation_step`, `elevation_min` |
| camera, `data.camera_encoding="vector"` | `camera.VectorPoseEncoder` | `data.pose_dim` | `data.pose_normalisation`, `pose_mean`, `pose_std`, `pose_scale` |

The model's pose channels `data.pose_channels` must equal the encoder's `channels`; `pose_channels(config)`
gives that number from the encoder itself (for config validation, before any data is read).
"""
from __future__ import annotations

import numpy as np

from rfgen_jax.data import datasets
from rfgen_jax.data.poses.base import gaussian_heatmaps
from rfgen_jax.data.poses.base import PoseEncoder
from rfgen_jax.data.poses.camera import CAMERA_ENCODINGS
from rfgen_jax.data.poses.camera import OneHotViewEncoder
from rfgen_jax.data.poses.camera import VectorPoseEncoder
from rfgen_jax.data.poses.heatmaps import KeypointHeatmaps
from rfgen_jax.data.poses.heatmaps import LandmarkHeatmapEncoder
from rfgen_jax.data.registry import POSE_KINDS

__all__ = ("CAMERA_ENCODINGS", "POSE_KINDS", "KeypointHeatmaps", "LandmarkHeatmapEncoder", "OneHotViewEncoder",
           "PoseEncoder", "VectorPoseEncoder", "gaussian_heatmaps", "make_pose_encoder", "pose_channels")


SIGMA_SCALINGS = ("fixed", "height")


def _build(config, pose_kind: str, pose_stats) -> PoseEncoder:
  d = config.data
  if pose_kind in ("keypoints", "landmarks"):
    if d.heatmap_sigma_scaling not in SIGMA_SCALINGS:
      raise ValueError(f"Unknown --config.data.heatmap_sigma_scaling={d.heatmap_sigma_scaling!r}; accepted: "
                       f"{SIGMA_SCALINGS}.")
    by_height = d.heatmap_sigma_scaling == "height"
    if pose_kind == "keypoints":
      return KeypointHeatmaps(d.num_keypoints, d.heatmap_sigma, by_height)
    return LandmarkHeatmapEncoder(d.num_landmarks, d.heatmap_sigma, by_height)
  if pose_kind == "camera":
    if d.camera_encoding == "one_hot_view":
      return OneHotViewEncoder(d.num_azimuths, d.num_elevations, d.elevation_step, d.elevation_min)
    if d.camera_encoding == "vector":
      mean, std = d.pose_mean, d.pose_std
      if (mean is None or std is None) and pose_stats is not None:
        mean, std = pose_stats
      return VectorPoseEncoder(d.pose_dim, d.pose_normalisation, mean=mean, std=std, scale=d.pose_scale)
    raise ValueError(f"Unknown --config.data.camera_encoding={d.camera_encoding!r}; accepted: {CAMERA_ENCODINGS}.")
  raise ValueError(f"Unknown pose kind {pose_kind!r}; accepted: {POSE_KINDS}.")


def pose_channels(config) -> int:
  """P of the config's data set and pose settings, from its encoder (no data read; for validation)."""
  d = config.data
  kind = datasets.get(d.name).pose_kind
  stats = None
  if kind == "camera" and d.camera_encoding == "vector":   # statistics only shift values, not P
    stats = (np.zeros(int(d.pose_dim), np.float32), np.ones(int(d.pose_dim), np.float32))
  return _build(config, kind, stats).channels


def make_pose_encoder(config, pose_stats=None) -> PoseEncoder:
  """The pose encoder of `config` (module docstring), its channels checked against `data.pose_channels`.

  Args:
    config: the experiment config.
    pose_stats: (mean, std) of the training poses, for camera vectors with `data.pose_normalisation =
      "standardize"` when the config holds none (computed when the split is opened).

  Returns:
    A `PoseEncoder` whose `channels` equals `config.data.pose_channels`; ValueError naming
    `data.pose_channels` (and the value to set) otherwise.
  """
  kind = datasets.get(config.data.name).pose_kind
  encoder = _build(config, kind, pose_stats)
  if encoder.channels != config.data.pose_channels:
    raise ValueError(f"data.pose_channels={config.data.pose_channels} but the {kind!r} encoder "
                     f"({type(encoder).__name__}) gives {encoder.channels} channels; set "
                     f"--config.data.pose_channels={encoder.channels}.")
  return encoder
