"""The `losses.*` section of the config, checked once before anything compiles (`validate_losses_config`,
called by `rfgen_jax.config_utils.validate_config`)."""
from __future__ import annotations

from rfgen_jax import errors
from rfgen_jax.losses.adversarial import GAN_KINDS
from rfgen_jax.losses.flow import SAMPLINGS
from rfgen_jax.losses.keypoint_flow import FORMS as KEYPOINT_FLOW_FORMS

# Keys holding one entry per fusion level (model.levels, coarse to fine).
PER_LEVEL_KEYS = ("affine_kernel_sizes", "correctness_layers", "correctness_level_weights",
                  "regularization_level_weights")


def validate_losses_config(config, num_levels: int, pose_kind: str) -> None:
  """Raises `errors.BadInputError` naming the `--config.losses.` key that cannot be used.

  Args:
    config: a full experiment config (reads `losses.*`).
    num_levels: the number of fusion levels (len(model.levels)).
    pose_kind: the data set's pose kind ("keypoints", "camera", "landmarks"): the keypoint-correspondence
      flow loss needs body keypoints.
  """
  c = config.losses
  for name in PER_LEVEL_KEYS:
    value = tuple(c[name])
    if len(value) != num_levels:
      raise errors.BadInputError(
          f"--config.losses.{name}={value!r} must have one entry per fusion level "
          f"(--config.model.levels={tuple(config.model.levels)!r}).")
  if c.gan not in GAN_KINDS:
    raise errors.BadInputError(f"--config.losses.gan={c.gan!r}; accepted: {GAN_KINDS}.")
  if c.correctness_sampling not in SAMPLINGS:
    raise errors.BadInputError(f"--config.losses.correctness_sampling={c.correctness_sampling!r}; "
                               f"accepted: {SAMPLINGS}.")
  if c.keypoint_flow_form not in KEYPOINT_FLOW_FORMS:
    raise errors.BadInputError(f"--config.losses.keypoint_flow_form={c.keypoint_flow_form!r}; accepted: "
                               f"{KEYPOINT_FLOW_FORMS}.")
  keypoint_flow = {k: c[k] for k in ("warmup_keypoint_flow", "keypoint_flow") if c[k]}
  if keypoint_flow and pose_kind != "keypoints":
    key, value = next(iter(keypoint_flow.items()))
    raise errors.BadInputError(
        f"--config.losses.{key}={value} needs body keypoints, but data set {config.data.name!r} has "
        f"{pose_kind!r} poses; set --config.losses.warmup_keypoint_flow=0 and --config.losses.keypoint_flow=0.")
