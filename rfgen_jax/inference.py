"""Inference helpers shared by the generation and export tools.

- `restore_generator(config, workdir, step=None, use_ema=None)` restores only the generator's parameters
  (by default their exponential moving average, `train.ema_decay`) from the Orbax checkpoint a training
  run wrote under `<workdir>/checkpoints` (`rfgen_jax.runtime.checkpointing`): the one restore path of the
  evaluator, the generate and export tools; `load_generator` is it without the step.
- `released_generator(release, sharding=None)` is the same for a released model
  (`rfgen_jax.runtime.pretrained.load_release`: `--pretrained=NAME` instead of `--workdir=RUN`).
- `make_generate(generator, params_sharding, batch_sharding)`: the one jitted generator call (trainer
  samples, evaluator, `generate`).
- `prepare_inputs(config, source_images, source_keypoints, target_keypoints)` turns a user's photos and
  keypoints into the generator's inputs.

Images of another aspect ratio than the model's `data.image_size` (H, W) are **padded, never cropped**
(`fit="pad"`, the default): the image is centred on a canvas of the model's aspect ratio filled with the
mean colour of its border pixels, so no joint leaves the frame and the person keeps its proportions;
then canvas and keypoints are resized to (H, W) exactly as the training pipeline resizes a data set's
images (`rfgen_jax.data.pipeline.resize_example`: bilinear, pixel centres kept,
`y' = (y + 0.5) * H / h - 0.5`). `fit="stretch"` resizes without padding, as the training pipeline does
for data sets whose files have another size. Photos should show one person roughly filling the frame
in height, as in the training data (Market-1501: pedestrian crops; DeepFashion: full-body shots).
"""
from __future__ import annotations

import functools
import os
from typing import Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rfgen_jax import errors, models, visualize
from rfgen_jax.data import poses
from rfgen_jax.data.pipeline import resize_example
from rfgen_jax.runtime import checkpointing
from rfgen_jax.runtime import pretrained
from rfgen_jax.runtime import state as state_lib

FIT_MODES = ("pad", "stretch")


class NoCheckpointError(errors.UserError, FileNotFoundError):
  """The workdir holds no checkpoint (or not the requested step): a user error (`rfgen_jax/errors.py`)."""


def _train_command(workdir: str) -> str:
  return f"python -m rfgen_jax.main --config=configs/<name>.py --workdir={workdir}"


def abstract_gen_params(config, generator=None):
  """`jax.ShapeDtypeStruct`s of the generator params as the trainer's TrainState holds them.

  Shapes come from `rfgen_jax.runtime.state.abstract_state`, so they match what training saves (nothing
  is computed or compiled).
  """
  generator = generator if generator is not None else models.build_generator(config)
  return state_lib.abstract_state(config, generator, models.build_discriminator(config)).gen_params


def resolve_step(checkpointer: checkpointing.Checkpointer, workdir: str, step: int | None) -> int:
  """The requested step (None: the latest) after checking that it exists; raises NoCheckpointError."""
  steps = checkpointer.all_steps()
  if not steps:
    raise NoCheckpointError(
        f"No checkpoint in {checkpointer.directory}; train first with `{_train_command(workdir)}` "
        "(with the --config you pass here).")
  if step is None or step < 0:
    return max(steps)
  if step not in steps:
    raise NoCheckpointError(f"No checkpoint for step {step} in {checkpointer.directory}; "
                            f"available steps: {sorted(steps)}.")
  return step


def load_generator(config, workdir: str, step: int | None = None, use_ema: bool | None = None):
  """Restores the generator of a training run; `restore_generator` without the step."""
  generator, params, _ = restore_generator(config, workdir, step, use_ema=use_ema)
  return generator, params


def released_generator(release: pretrained.Release, sharding=None):
  """`restore_generator`'s (generator module, params, step) for a released model.

  Args:
    release: a verified `pretrained.Release` (its EMA parameters, float32 numpy).
    sharding: where the params go (e.g. replicated over a mesh); default: the first local device.

  Returns:
    (generator of `release.config`, params on `sharding`, the training step they are from).
  """
  sharding = sharding or jax.sharding.make_single_device_sharding(jax.local_devices()[0])
  params = jax.tree.map(lambda a: jax.device_put(a, sharding), release.params)
  logging.info("Using the released model %s (step %d).", release.name, release.step)
  return models.build_generator(release.config), params, release.step


def _has_item(manager, step: int, name: str) -> bool:
  """Whether the `state` item of checkpoint `step` holds the top-level field `name`."""
  metadata = manager.item_metadata(step)["state"]
  tree = getattr(metadata, "tree", metadata)
  return tree is not None and name in tree


def restore_generator(config, workdir: str, step: int | None = None, sharding=None,
                      use_ema: bool | None = None):
  """Restores the generator of a training run.

  Only the generator's parameters are read (an Orbax partial restore of the `state` item): the raw
  ones (`gen_params`) or their EMA (`ema_params`, written by the trainer since `train.ema_decay`
  exists); the discriminator and the optimizer states stay on disk.

  Args:
    config: the run's config (the shape-relevant keys, `config_utils.SHAPE_KEYS`, must match the
      checkpoint's; others such as `model.dtype` may differ).
    workdir: the run's folder (holding `checkpoints/`).
    step: the checkpoint step; None or negative = the latest.
    sharding: where the params go (e.g. replicated over a mesh); default: the first local device.
    use_ema: True: the EMA parameters; False: the raw ones; None: `config.eval.use_ema`. A checkpoint
      without EMA parameters (written before they existed) gives the raw ones, with a warning.

  Returns:
    (generator module, params, step): `generator.apply({"params": params}, source_images, source_poses,
    target_pose)` as in `rfgen_jax.models.build_generator`; params are float32 arrays on the default
    device; step is the checkpoint step restored.

  Raises:
    NoCheckpointError: no `checkpoints/` (or no such step) under `workdir`.
    checkpointing.IncompatibleCheckpointError: the checkpoint was written with another model
      configuration; the message names the differing keys.
  """
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    raise NoCheckpointError(
        f"No checkpoint in {directory} (the folder does not exist); train first with "
        f"`{_train_command(workdir)}` (with the --config you pass here), or pass the --workdir of a run.")
  checkpointer = checkpointing.Checkpointer(workdir, config, read_only=True)
  try:
    step = resolve_step(checkpointer, workdir, step)
    checkpointer.check_compatible(step, config)
  finally:
    checkpointer.close()

  generator = models.build_generator(config)
  abstract = abstract_gen_params(config, generator)
  sharding = sharding or jax.sharding.make_single_device_sharding(jax.local_devices()[0])
  use_ema = bool(config.eval.use_ema) if use_ema is None else bool(use_ema)
  # A read-only manager whose `state` handler is the PyTree handler (same on-disk format as the
  # trainer's StandardCheckpointHandler), which supports restoring a subtree.
  manager = checkpointing.read_only_manager(directory, state_handler=ocp.PyTreeCheckpointHandler())
  try:
    name = "ema_params" if use_ema else "gen_params"
    if use_ema and not _has_item(manager, step, name):
      logging.warning("The checkpoint %s/%d holds no EMA parameters (written before train.ema_decay "
                      "existed): using the raw ones.", directory, step)
      name = "gen_params"
    item = {name: jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)}
    restore_args = jax.tree.map(lambda a: ocp.ArrayRestoreArgs(sharding=sharding), item)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True)))
  finally:
    manager.close()
  logging.info("Restored the generator (%s) of %s/%d.", "EMA" if name == "ema_params" else "raw",
               directory, step)
  return generator, restored["state"][name], step


# --------------------------------------------------------------------------------------------- inputs
def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
  """(h, w), (h, w, 1), (h, w, 3) or (h, w, 4) uint8 -> (h, w, 3) uint8 (alpha dropped)."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise errors.BadInputError(f"{name}: expected a uint8 image, got dtype {image.dtype}.")
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise errors.BadInputError(f"{name}: expected an (H, W, 3) image, got shape {image.shape}.")
  if image.shape[0] < 2 or image.shape[1] < 2:
    raise errors.BadInputError(f"{name}: image of size {image.shape[:2]} is too small to resize.")
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  return np.ascontiguousarray(image[..., :3])


def check_keypoints(keypoints, num_joints: int, name: str) -> np.ndarray:
  """(J, 2) float32 (y, x) keypoints, -1 missing; ValueError naming `name` and the count otherwise."""
  kp = np.asarray(keypoints, np.float32)
  if kp.ndim != 2 or kp.shape[-1] != 2:
    raise errors.BadInputError(f"{name}: keypoints must be a ({num_joints}, 2) array of (y, x), got shape {kp.shape}.")
  if kp.shape[0] != num_joints:
    raise errors.BadInputError(f"{name}: expected {num_joints} joints (OpenPose/COCO-18 order, "
                     f"data.num_keypoints), got {kp.shape[0]}.")
  if not np.isfinite(kp).all():
    raise errors.BadInputError(f"{name}: keypoints contain NaN or infinity; use -1 for a missing joint.")
  kp = kp.copy()
  kp[(kp < 0).any(axis=-1)] = -1.0
  return kp


def pad_geometry(size: tuple[int, int], target_size: tuple[int, int]) -> tuple[tuple[int, int], int, int]:
  """Canvas (h', w') of `target_size`'s aspect ratio holding an image of `size`, and (top, left) offsets."""
  h, w = size
  th, tw = target_size
  if h * tw > w * th:        # too tall: widen
    ch, cw = h, max(w, int(round(h * tw / th)))
  else:                      # too wide: heighten
    ch, cw = max(h, int(round(w * th / tw))), w
  return (ch, cw), (ch - h) // 2, (cw - w) // 2


def pad_keypoints(keypoints: np.ndarray, top: int, left: int) -> np.ndarray:
  kp = np.asarray(keypoints, np.float32).copy()
  present = (kp >= 0).all(axis=-1)
  kp[present] += np.array([top, left], np.float32)
  return kp


def fit_image(image: np.ndarray, keypoints: np.ndarray, size: tuple[int, int],
              fit: str = "pad") -> tuple[np.ndarray, np.ndarray]:
  """Brings an image and its keypoints into the model's frame (see the module docstring).

  Args:
    image: (h, w, 3) uint8.
    keypoints: (J, 2) (y, x) pixels of the image, -1 missing.
    size: the model's (H, W).
    fit: "pad" (centre on a canvas of the model's aspect ratio, border-mean fill) or "stretch".

  Returns:
    ((H, W, 3) uint8, (J, 2) float32 keypoints in the (H, W) frame, -1 kept).
  """
  if fit not in FIT_MODES:
    raise errors.BadInputError(f"fit={fit!r}; accepted: {FIT_MODES}.")
  if fit == "pad":
    (ch, cw), top, left = pad_geometry(image.shape[:2], size)
    if (ch, cw) != image.shape[:2]:
      border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]], axis=0)
      canvas = np.empty((ch, cw, 3), np.uint8)
      canvas[:] = np.round(border.astype(np.float32).mean(axis=0)).astype(np.uint8)
      canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
      image, keypoints = canvas, pad_keypoints(keypoints, top, left)
  out, kp = resize_example(image, np.asarray(keypoints, np.float32), tuple(size))
  return np.asarray(out, np.uint8), np.asarray(kp, np.float32)


def fit_keypoints(keypoints: np.ndarray, frame_size: tuple[int, int], size: tuple[int, int],
                  fit: str = "pad") -> np.ndarray:
  """Keypoints given in a frame of `frame_size` (h, w) mapped to the model's (H, W) like `fit_image`."""
  if fit not in FIT_MODES:
    raise errors.BadInputError(f"fit={fit!r}; accepted: {FIT_MODES}.")
  kp = np.asarray(keypoints, np.float32)
  h, w = frame_size
  if fit == "pad":
    (h, w), top, left = pad_geometry((h, w), size)
    kp = pad_keypoints(kp, top, left)
  if (h, w) == tuple(size):
    return kp.astype(np.float32)
  scale = np.array([size[0] / h, size[1] / w], np.float32)
  out = (kp + 0.5) * scale - 0.5
  out[(kp < 0).any(axis=-1)] = -1.0
  return out.astype(np.float32)


def prepare_inputs(config, source_images: Sequence[np.ndarray], source_keypoints: Sequence[np.ndarray],
                   target_keypoints: np.ndarray, target_size: tuple[int, int] | None = None,
                   names: Sequence[str] | None = None, target_name: str = "target pose",
                   fit: str = "pad") -> dict[str, np.ndarray]:
  """The generator's inputs (batch of one) for K user images and a target pose.

  Args:
    config: the model's config (`data.image_size`, `data.num_keypoints`, pose encoding keys).
    source_images: K uint8 images, each (h_k, w_k, 3) (grey or RGBA accepted), any size.
    source_keypoints: K arrays (J, 2) of (y, x) pixels in their image's own size, -1 missing.
    target_keypoints: (J, 2) (y, x) pixels in a frame of `target_size`.
    target_size: (h, w) of the frame the target keypoints refer to; None: already the model's
      `data.image_size`.
    names: K names used in error messages (e.g. file names); default "source k".
    target_name: name of the target pose in error messages.
    fit: "pad" (default) or "stretch"; see the module docstring.

  Returns:
    dict of numpy float32 arrays: `source_images` (1, K, H, W, 3) in [-1, 1], `source_poses`
    (1, K, H, W, P), `target_pose` (1, H, W, P), and for drawing, `source_keypoints` (1, K, J, 2) and
    `target_keypoints` (1, J, 2) in the (H, W) frame, -1 missing.

  Raises:
    ValueError: K = 0, K images but another number of keypoint arrays, a keypoint array with the wrong
      number of joints (naming the source and the count), an unusable image.
  """
  k = len(source_images)
  if k == 0:
    raise errors.BadInputError("No source images given (K = 0); the generator needs at least one source image.")
  if len(source_keypoints) != k:
    raise errors.BadInputError(f"{k} source images but {len(source_keypoints)} keypoint arrays; give one per image.")
  names = list(names) if names is not None else [f"source {i}" for i in range(k)]
  if len(names) != k:
    raise errors.BadInputError(f"{k} source images but {len(names)} names.")
  size = tuple(int(s) for s in config.data.image_size)
  num_joints = int(config.data.num_keypoints)
  encoder = poses.make_pose_encoder(config)

  images, maps, kps = [], [], []
  for image, keypoints, name in zip(source_images, source_keypoints, names):
    image = to_rgb_uint8(image, name)
    kp = check_keypoints(keypoints, num_joints, name)
    if image.shape[0] < size[0] / 4 or image.shape[1] < size[1] / 4:
      logging.warning("%s: image of size %s is upsampled more than 4x to the model's %s.", name,
                      image.shape[:2], size)
    image, kp = fit_image(image, kp, size, fit)
    images.append(image.astype(np.float32) / np.float32(127.5) - np.float32(1.0))
    maps.append(encoder.encode(kp, size))
    kps.append(kp)
  target = check_keypoints(target_keypoints, num_joints, target_name)
  target = fit_keypoints(target, tuple(target_size) if target_size is not None else size, size, fit)
  return {
      "source_images": np.stack(images)[None].astype(np.float32),
      "source_poses": np.stack(maps)[None].astype(np.float32),
      "target_pose": encoder.encode(target, size)[None].astype(np.float32),
      "source_keypoints": np.stack(kps)[None].astype(np.float32),
      "target_keypoints": target[None].astype(np.float32),
  }


INPUT_KEYS = ("source_images", "source_poses", "target_pose")


@functools.lru_cache(maxsize=None)
def _jitted_generate(generator, params_sharding, batch_sharding):
  def forward(params, source_images, source_poses, target_pose):
    return generator.apply({"params": params}, source_images, source_poses,
                           target_pose)["image"].astype("float32")
  if params_sharding is None:
    return jax.jit(forward)
  return jax.jit(forward, in_shardings=(params_sharding,) + (batch_sharding,) * 3,
                 out_shardings=batch_sharding)


def make_generate(generator, params_sharding=None, batch_sharding=None):
  """The one jitted generator call: `fn(params, batch) -> (B, H, W, 3) float32` in [-1, 1].

  `batch` is a dict holding at least `INPUT_KEYS` (other keys are ignored, never transferred).
  With shardings (params replicated and the batch split on a mesh's `data` axis, as the trainer's samples
  and the evaluator use it) the output is sharded like the batch; without, placement follows the
  inputs. Compiled once per generator, shardings and input shape (cached here).
  """
  jitted = _jitted_generate(generator, params_sharding, batch_sharding)
  return lambda params, batch: jitted(params, *(batch[k] for k in INPUT_KEYS))


OUTPUT_KEYS = ("image", "flows", "initial_flows", "occlusion", "attention")


@functools.partial(jax.jit, static_argnums=0)
def _apply_with_maps(generator, params, source_images, source_poses, target_pose):
  out = generator.apply({"params": params}, source_images, source_poses, target_pose)
  return {key: out[key] for key in OUTPUT_KEYS}


def generator_outputs(generator, params, batch: dict) -> dict:
  """The generator's full output dict (`OUTPUT_KEYS`: the image and the per-level inner maps, see
  `rfgen_jax.models.generator.Generator.__call__`) as numpy, for a host batch holding `INPUT_KEYS`.

  Jitted (compiled once per generator and input shape), on the default device of this process: not a
  collective; with a multi-process run's global `params`, fetch them to the host first. The app, the
  animator and the inner-map sample grids of the trainer and the evaluator use it (run op by op instead,
  the tiny test model took 40 s per grid on a 2-core CPU).
  """
  out = _apply_with_maps(generator, params, *(np.asarray(batch[k]) for k in INPUT_KEYS))
  return jax.tree.map(np.asarray, out)


def generate(generator, params, inputs: dict) -> np.ndarray:
  """Runs the generator on `prepare_inputs` output; returns (B, H, W, 3) float32 in [-1, 1]."""
  return np.asarray(make_generate(generator)(params, inputs))


def inner_maps_sample_grid(generator, params, batch: dict, max_rows: int = 8) -> np.ndarray:
  """`visualize.sample_grid_with_maps` of a host batch, running `generator` on this process alone.

  `params` are fetched to the host first (`jax.device_get`), so replicated global arrays of a
  multi-process run work; call it on one process only (it is not a collective). Used by the trainer's
  and the evaluator's sample grids when `eval.inner_maps` is True.
  """
  host_params = jax.device_get(params)
  n = min(max_rows, np.shape(batch["source_images"])[0])
  rows = {key: np.asarray(batch[key])[:n] for key in INPUT_KEYS}
  outputs = generator_outputs(generator, host_params, rows)
  return visualize.sample_grid_with_maps({key: np.asarray(v)[:n] for key, v in batch.items()}, outputs,
                                         max_rows)
