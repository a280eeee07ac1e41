"""The `data.*` section of the config, checked once before anything is written (`validate_data_config`,
called by `rfgen_jax.config_utils.validate_config`)."""
from __future__ import annotations

from rfgen_jax import errors
from rfgen_jax.data import datasets, pipeline, poses
from rfgen_jax.data.datasets import image_folder


def validate_data_config(config) -> str:
  """Checks the `data.*` section once, before anything is written; returns the data set's pose kind.

  Raises `errors.BadInputError` naming the key: an unknown data.name, a data.pose_channels that is not
  the pose encoder's P, a bad source_pool / augment_target / keypoint_frame / folder_identity.
  """
  d = config.data
  kind = datasets.get(d.name).pose_kind          # ValueError naming --config.data.name when unknown
  expected = poses.pose_channels(config)
  if d.pose_channels != expected:
    raise errors.BadInputError(
        f"--config.data.pose_channels={d.pose_channels} but the {kind!r} pose encoder of data set "
        f"{d.name!r} gives {expected} channels (from data.num_keypoints / num_landmarks / num_azimuths + "
        f"num_elevations / pose_dim); set --config.data.pose_channels={expected}.")
  if kind == "camera" and d.source_pool not in ("split", "file"):
    raise errors.BadInputError(f"--config.data.source_pool={d.source_pool!r}; accepted: 'split', 'file'.")
  if d.augment_target not in pipeline.AUGMENT_TARGET:
    raise errors.BadInputError(
        f"--config.data.augment_target={d.augment_target!r}; accepted: {pipeline.AUGMENT_TARGET}.")
  frame = tuple(d.keypoint_frame)
  if frame and (len(frame) != 2 or min(frame) < 1):
    raise errors.BadInputError(f"--config.data.keypoint_frame={frame!r} must be () (each file's size) or (H, W).")
  if d.folder_identity not in image_folder.IDENTITY_RULES:
    raise errors.BadInputError(
        f"--config.data.folder_identity={d.folder_identity!r}; accepted: {image_folder.IDENTITY_RULES}.")
  return kind
