"""Config loading and validation: every config error is reported before anything is compiled."""
from __future__ import annotations

import importlib.util
import json
import os

import ml_collections

from rfgen_jax import errors   # every error raised here is a user error (exit status 2 at the entry points)

GAN_KINDS = ("nonsaturating", "lsgan", "hinge")
# Keys whose values change the shapes of the saved state: a checkpoint is only compatible when they match.
SHAPE_KEYS = (
    "data.image_size", "data.pose_channels", "model.width", "model.levels", "model.residual_flow",
    "model.occlusion", "model.attention", "model.flow_encoder_channels",
    "model.source_encoder_channels", "model.target_channels", "model.residual_hidden",
    "model.disc_channels", "model.disc_downsampling",
)


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` the way `--config` does (for tests, tools and notebooks)."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise errors.MissingFileError(f"Config file {path!r} does not exist (from {spec!r}).")
  return _exec_module(path, "_rfgen_config").get_config(arg or None)


def _exec_module(path: str, name: str):
  """Runs the Python file `path` as a fresh module called `name` (config files are not installed)."""
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def lookup(config: ml_collections.ConfigDict, dotted: str):
  """Returns `config.a.b` for `dotted = "a.b"`."""
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


def _normalise(value):
  return json.loads(json.dumps(value, default=list))


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
  keys = []
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      keys.extend(_flat_keys(value, f"{prefix}{key}."))
    else:
      keys.append(prefix + key)
  return keys


def keys_missing_from(saved: dict) -> list[str]:
  """The keys of configs/common.py's base config absent from a saved `config.json` (nested dicts), sorted.

  A run's config.json holds every key of the version that trained it; a key missing here was added
  later, and reading the run with its current default could silently build another model."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "common.py")
  common = _exec_module(path, "_rfgen_config_common")
  have = set(_flat_keys(saved))
  return sorted(k for k in _flat_keys(common.get_base_config().to_dict()) if k not in have)


def differing_shape_keys(saved: dict, config: ml_collections.ConfigDict) -> list[str]:
  """Names the SHAPE_KEYS whose value in the saved config dict differs from `config`.

  Args:
    saved: a config as written to `config.json` (nested dicts).
    config: the current config.
  Returns:
    Strings "key: saved=... now=..." for each differing key (empty if compatible).
  """
  differences = []
  for key in SHAPE_KEYS:
    node = saved
    for part in key.split("."):
      node = node.get(part) if isinstance(node, dict) else None
    now = _normalise(lookup(config, key))
    if _normalise(node) != now:
      differences.append(f"{key}: checkpoint={node!r} now={now!r}")
  return differences


def validate_config(config: ml_collections.ConfigDict, num_devices: int | None = None) -> None:
  """Raises ValueError naming the offending `--config.` key for any inconsistent setting.

  Args:
    config: a full experiment config.
    num_devices: global device count for batch divisibility checks (None: not checked).
  """
  h, w = config.data.image_size
  levels = tuple(config.model.levels)
  k = config.data.num_sources
  if not isinstance(k, int) or k < 1:
    raise errors.BadInputError(f"--config.data.num_sources must be an integer >= 1 (K sources), got {k!r}.")
  for k_eval in config.eval.num_sources:
    if not isinstance(k_eval, int) or k_eval < 1:
      raise errors.BadInputError(
          f"--config.eval.num_sources must hold integers >= 1, got {tuple(config.eval.num_sources)!r}.")
  if not levels or any(int(l) < 1 for l in levels):
    raise errors.BadInputError(f"--config.model.levels must be positive downsampling factors, got {levels!r}.")
  if list(levels) != sorted(levels, reverse=True) or len(set(levels)) != len(levels):
    raise errors.BadInputError(f"--config.model.levels must be strictly decreasing (coarse to fine), got {levels!r}.")
  # The fusion levels must tile the image exactly. (The flow estimator's encoder goes on to H/32 with
  # 'SAME' strided convs and its decoder resizes to each skip's size, so 176 = 5.5 * 32 is fine.)
  for factor in levels:
    if h % factor or w % factor:
      raise errors.BadInputError(
          f"--config.data.image_size={tuple(config.data.image_size)!r} is not divisible by the fusion "
          f"level {factor} of --config.model.levels={levels!r}. Use sizes that are multiples of {max(levels)}.")
  for name in ("affine_kernel_sizes", "correctness_layers", "correctness_level_weights",
               "regularization_level_weights"):
    value = tuple(config.losses[name])
    if len(value) != len(levels):
      raise errors.BadInputError(
          f"--config.losses.{name}={value!r} must have one entry per fusion level "
          f"(--config.model.levels={levels!r}).")
  if config.losses.gan not in GAN_KINDS:
    raise errors.BadInputError(f"--config.losses.gan={config.losses.gan!r}; accepted: {GAN_KINDS}.")
  if config.model.dtype not in ("float32", "bfloat16"):
    raise errors.BadInputError(f"--config.model.dtype={config.model.dtype!r}; accepted: 'float32', 'bfloat16'.")
  if config.model.width <= 0:
    raise errors.BadInputError(f"--config.model.width must be > 0, got {config.model.width!r}.")
  steps = config.train
  if steps.total_steps < 0 or not 0 <= steps.flow_warmup_steps <= steps.total_steps:
    raise errors.BadInputError(
        "--config.train.flow_warmup_steps must lie in [0, --config.train.total_steps] (the warm-up is "
        f"included in the total), got {steps.flow_warmup_steps} and {steps.total_steps}.")
  from rfgen_jax.train import reduction  # pylint: disable=g-import-not-at-top  (keeps this module light)
  reduction.check_grad_reduction(steps.grad_reduction)
  _validate_pose(config)
  if config.checkpoint.every_steps < 1:
    raise errors.BadInputError(f"--config.checkpoint.every_steps must be >= 1, got {config.checkpoint.every_steps}.")
  if num_devices is not None:
    for key, batch in (("train.batch_size", steps.batch_size), ("eval.batch_size", config.eval.batch_size)):
      if batch < 1 or batch % num_devices:
        raise errors.BadInputError(
            f"--config.{key}={batch} is not divisible by the {num_devices} devices of the mesh; "
            f"use a multiple of {num_devices}.")


def _validate_pose(config: ml_collections.ConfigDict) -> None:
  """data.name is a registered data set and data.pose_channels matches its pose encoder's P."""
  from rfgen_jax.data import datasets  # pylint: disable=g-import-not-at-top  (keeps this module light)
  from rfgen_jax.data import poses  # pylint: disable=g-import-not-at-top
  d = config.data
  kind = datasets.get(d.name).pose_kind          # ValueError naming --config.data.name when unknown
  expected = poses.pose_channels(config)
  if d.pose_channels != expected:
    raise errors.BadInputError(
        f"--config.data.pose_channels={d.pose_channels} but the {kind!r} pose encoder of data set "
        f"{d.name!r} gives {expected} channels (from data.num_keypoints / num_landmarks / num_azimuths + "
        f"num_elevations / pose_dim); set --config.data.pose_channels={expected}.")
  kp_flow = {k: config.losses[k] for k in ("warmup_keypoint_flow", "keypoint_flow") if config.losses[k]}
  if kp_flow and kind != "keypoints":
    raise errors.BadInputError(
        f"--config.losses.{next(iter(kp_flow))}={next(iter(kp_flow.values()))} needs body keypoints, but data "
        f"set {d.name!r} has {kind!r} poses; set --config.losses.warmup_keypoint_flow=0 and "
        "--config.losses.keypoint_flow=0.")
  from rfgen_jax.losses.flow import SAMPLINGS  # pylint: disable=g-import-not-at-top  (keeps this module light)
  if config.losses.correctness_sampling not in SAMPLINGS:
    raise errors.BadInputError(f"--config.losses.correctness_sampling={config.losses.correctness_sampling!r}; "
                               f"accepted: {SAMPLINGS}.")
  if kind == "camera" and d.source_pool not in ("split", "file"):
    raise errors.BadInputError(f"--config.data.source_pool={d.source_pool!r}; accepted: 'split', 'file'.")
  from rfgen_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from rfgen_jax.data.datasets import image_folder  # pylint: disable=g-import-not-at-top
  if d.augment_target not in pipeline.AUGMENT_TARGET:
    raise errors.BadInputError(
        f"--config.data.augment_target={d.augment_target!r}; accepted: {pipeline.AUGMENT_TARGET}.")
  frame = tuple(d.keypoint_frame)
  if frame and (len(frame) != 2 or min(frame) < 1):
    raise errors.BadInputError(f"--config.data.keypoint_frame={frame!r} must be () (each file's size) or (H, W).")
  if d.folder_identity not in image_folder.IDENTITY_RULES:
    raise errors.BadInputError(
        f"--config.data.folder_identity={d.folder_identity!r}; accepted: {image_folder.IDENTITY_RULES}.")
