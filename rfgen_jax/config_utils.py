"""Config loading and the one check of a run's config (`validate_config`), before anything is compiled."""
from __future__ import annotations

import importlib.util
import json
import os

import jax
import ml_collections

from rfgen_jax import errors   # every error raised here is a user error (exit status 2 at the entry points)
from rfgen_jax import losses, models
from rfgen_jax.data import config_check as data_config_check
from rfgen_jax.runtime import reduction, sharding

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


# Keys that only say how a run trains (how it starts, a loss), never what its checkpoint holds or how it is
# read: a config.json written before one of them existed is still read, the key filled with its default
# (`with_reading_irrelevant_defaults`). A key joins this list only if reading a saved run or a released
# model never depends on it.
READING_IRRELEVANT_KEYS = ("train.init_from", "losses.keypoint_flow_form")


def keys_missing_from(saved: dict) -> list[str]:
  """The keys of configs/common.py's base config absent from a saved `config.json` (nested dicts), sorted,
  less READING_IRRELEVANT_KEYS.

  A run's config.json holds every key of the version that trained it; a key missing here was added
  later, and reading the run with its current default could silently build another model."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "common.py")
  common = _exec_module(path, "_rfgen_config_common")
  have = set(_flat_keys(saved))
  return sorted(k for k in _flat_keys(common.get_base_config().to_dict())
                if k not in have and k not in READING_IRRELEVANT_KEYS)


def with_reading_irrelevant_defaults(saved: dict) -> dict:
  """A copy of a saved config (nested dicts) with the READING_IRRELEVANT_KEYS it lacks set to their defaults."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "common.py")
  base = _exec_module(path, "_rfgen_config_common").get_base_config()
  saved = json.loads(json.dumps(saved))
  for key in READING_IRRELEVANT_KEYS:
    section, name = key.split(".")
    if name in base[section]:
      saved.setdefault(section, {}).setdefault(name, base[section][name])
  return saved


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
  """Checks a whole run's config once, before anything is written or compiled; raises ValueError
  (`errors.BadInputError`) naming the offending `--config.` key.

  Each section is checked by the code that owns it: `model.*` (and the image size and K it builds for)
  by `models.validate_model_config`, `data.*` by `data.config_check.validate_data_config`, `losses.*` by
  `losses.validate_losses_config`; the run's own sections (`train`, `eval`, `checkpoint`) here.

  Args:
    config: a full experiment config.
    num_devices: global device count for batch divisibility checks (None: not checked).
  """
  models.validate_model_config(config)
  kind = data_config_check.validate_data_config(config)
  losses.validate_losses_config(config, len(tuple(config.model.levels)), kind)
  for k_eval in config.eval.num_sources:
    if not isinstance(k_eval, int) or k_eval < 1:
      raise errors.BadInputError(
          f"--config.eval.num_sources must hold integers >= 1, got {tuple(config.eval.num_sources)!r}.")
  steps = config.train
  if steps.total_steps < 0 or not 0 <= steps.flow_warmup_steps <= steps.total_steps:
    raise errors.BadInputError(
        "--config.train.flow_warmup_steps must lie in [0, --config.train.total_steps] (the warm-up is "
        f"included in the total), got {steps.flow_warmup_steps} and {steps.total_steps}.")
  reduction.check_grad_reduction(steps.grad_reduction)
  if config.checkpoint.every_steps < 1:
    raise errors.BadInputError(f"--config.checkpoint.every_steps must be >= 1, got {config.checkpoint.every_steps}.")
  if num_devices is not None:
    for key, batch in (("train.batch_size", steps.batch_size), ("eval.batch_size", config.eval.batch_size)):
      if batch < 1 or batch % num_devices:
        raise errors.BadInputError(
            f"--config.{key}={batch} is not divisible by the {num_devices} devices of the mesh; "
            f"use a multiple of {num_devices}.")


def setup_run(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """The start of every run (train or eval): `validate_config` for this job's devices, then the mesh of
  `train.mesh_shape` (`rfgen_jax/runtime/sharding.py`), each once. A value the run cannot use raises
  `errors.BadInputError` (one line, exit status 2 at the entry points)."""
  validate_config(config, num_devices=jax.device_count())
  try:
    return sharding.make_mesh(config.train.mesh_shape)
  except ValueError as e:
    raise errors.BadInputError(str(e)) from None
