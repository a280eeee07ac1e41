r"""Generates a person in a new pose from one's own photos with a trained model.

    python -m rfgen_jax.tools.generate (--workdir=RUN | --pretrained=NAME) --sources a.jpg,b.jpg \
        --keypoints kp.json|annotations.csv --target_pose target.json|NAME --out out.png \
        [--config=configs/market.py] [--step N] [--target_size H,W] [--fit pad|stretch]

The model: a training run's latest checkpoint (`--workdir`), or a released model (`--pretrained`: a
name from `python -m rfgen_jax.tools.pretrained --list`, or a release folder; docs/pretrained.md),
which needs no training; `--config`, `--step` and `--raw_params` apply to a run only.

Inputs:
- `--sources`: K >= 1 image files of one person (any K: the model is not tied to its training K).
- `--keypoints`: their 18 OpenPose/COCO-order keypoints, `(y, x)` pixels of each file's own size, -1
  where missing, found by file name (the base name of each source), either
  - the PATN/GFLA annotation CSV (`name:keypoints_y:keypoints_x`, as written by
    `python -m rfgen_jax.tools.pose_keypoints`), or
  - JSON `{"a.jpg": {"keypoints_y": [18 numbers], "keypoints_x": [18 numbers]}, ...}`.
- `--target_pose`: the pose to generate, either a file in one of these formats with one entry (a JSON
  file may also hold the bare `{"keypoints_y": [...], "keypoints_x": [...]}`; pick an entry of a
  larger file with `--target_name`), or the name of an entry of the `--keypoints` file.
  The target keypoints refer to a frame whose size is, in this order: the entry's `"image_size": [H, W]`
  (JSON), `--target_size H,W`, the size of an image file of the entry's name found beside the keypoints
  file or the sources, or the size of the first source image. The frame is mapped to the model's
  image size like the sources (see `--fit` and `rfgen_jax.inference`).
- `--config`: the run's config spec (`configs/market.py[:arg]`); default: the run's own
  `<workdir>/config.json`, which holds every override used in training (a release uses its own).

Outputs: `--out` (the generated image, at the model's `data.image_size`) and beside it
`<out stem>_grid.png`: the sources with their skeletons | the target skeleton | the generated image,
scaled up (nearest) to at least 256 pixels high.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Sequence

import ml_collections
import numpy as np
from PIL import Image

from rfgen_jax import cli
from rfgen_jax import config_utils
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.data import annotations
from rfgen_jax.data import keypoints as keypoints_lib
from rfgen_jax.runtime import pretrained


@dataclasses.dataclass(frozen=True)
class PoseEntry:
  """One keypoint entry: (J, 2) float32 (y, x), -1 missing; the frame size if the file gives it."""
  name: str
  keypoints: np.ndarray
  image_size: tuple[int, int] | None = None


# ------------------------------------------------------------------------------------------ reading
def _entry_from_json(value, path: str, name: str, num_joints: int) -> PoseEntry:
  where = f"{path}, entry {name!r}"
  if not isinstance(value, dict) or "keypoints_y" not in value or "keypoints_x" not in value:
    raise errors.BadInputError(f"{where}: expected an object with 'keypoints_y' and 'keypoints_x' lists.")
  ys, xs = value["keypoints_y"], value["keypoints_x"]
  for column, values in (("keypoints_y", ys), ("keypoints_x", xs)):
    if not isinstance(values, list):
      raise errors.BadInputError(f"{where}: {column} must be a list of {num_joints} numbers.")
    if len(values) != num_joints:
      raise errors.BadInputError(f"{where}: expected {num_joints} joints in {column} (OpenPose/COCO-18 order), "
                       f"got {len(values)}.")
  try:
    kp = np.stack([np.asarray(ys, np.float32), np.asarray(xs, np.float32)], axis=-1)
  except (TypeError, ValueError) as e:
    raise errors.BadInputError(f"{where}: keypoints must be numbers ({e}).") from None
  size = value.get("image_size")
  if size is not None:
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
      raise errors.BadInputError(f"{where}: image_size must be [H, W] positive integers, got {size!r}.")
    size = (size[0], size[1])
  kp[(kp < 0).any(axis=-1)] = -1.0
  return PoseEntry(name, kp, size)


def read_keypoints_file(path: str, num_joints: int = 18) -> dict[str, PoseEntry]:
  """Reads an annotation CSV or a keypoint JSON file into {name: PoseEntry}.

  A JSON file holding a bare `{"keypoints_y": ..., "keypoints_x": ...}` object gives one entry named
  after the file. Errors name the file and the entry (CSV: and the line).
  """
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"Keypoint file not found: {path}")
  if path.lower().endswith(".json"):
    try:
      with open(path) as f:
        content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise errors.BadInputError(f"{path}: not valid JSON ({e}).") from None
    if isinstance(content, dict) and "keypoints_y" in content:
      name = os.path.basename(path)
      return {name: _entry_from_json(content, path, name, num_joints)}
    if not isinstance(content, dict) or not content:
      raise errors.BadInputError(f"{path}: expected a JSON object {{image name: {{keypoints_y, keypoints_x}}}}.")
    return {str(k): _entry_from_json(v, path, str(k), num_joints) for k, v in content.items()}
  try:
    table = annotations.read_annotations(path, num_joints)
  except ValueError as e:
    match = re.search(r", line (\d+):", str(e))
    if match:
      with open(path) as f:
        lines = f.read().splitlines()
      lineno = int(match.group(1))
      if 0 < lineno <= len(lines):
        raise errors.BadInputError(f"{e} (entry {lines[lineno - 1].split(':', 1)[0].strip()!r})") from None
    raise
  if not table:
    raise errors.BadInputError(f"{path}: no keypoint rows.")
  return {name: PoseEntry(name, kp) for name, kp in table.items()}


def read_image(path: str) -> np.ndarray:
  """(H, W, 3) uint8 RGB; FileNotFoundError / ValueError naming the file."""
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"Source image not found: {path}")
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert("RGB"))
  except Exception as e:  # PIL raises several types for broken files
    raise errors.BadInputError(f"Cannot read image {path} ({type(e).__name__}: {e}).") from None


def image_size_of(path: str) -> tuple[int, int]:
  try:
    with Image.open(path) as im:
      return im.size[1], im.size[0]
  except Exception as e:  # PIL raises several types for broken files
    raise errors.BadInputError(f"Cannot read image {path} ({type(e).__name__}: {e}).") from None


def _lookup(table: dict[str, PoseEntry], key: str, path: str, what: str) -> PoseEntry:
  for candidate in (key, os.path.basename(key)):
    if candidate in table:
      return table[candidate]
  names = sorted(table)
  shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
  raise errors.MissingEntryError(f"No keypoints for {what} {os.path.basename(key)!r} in {path} (entries: {shown}).")


def parse_size(text: str | None) -> tuple[int, int] | None:
  """'H,W' -> (H, W) positive ints; None/'' -> None."""
  if not text:
    return None
  parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
  try:
    size = tuple(int(p) for p in parts)
  except ValueError:
    size = ()
  if len(size) != 2 or min(size) <= 0:
    raise errors.BadInputError(f"--target_size must be 'H,W' with positive integers, got {text!r}.")
  return size  # type: ignore[return-value]


def resolve_target(target_pose: str, keypoints_path: str, table: dict[str, PoseEntry], sources: Sequence[str],
                   num_joints: int, target_name: str | None = None,
                   target_size: tuple[int, int] | None = None) -> tuple[PoseEntry, tuple[int, int], str]:
  """Finds the target entry and the size of its frame; returns (entry, (h, w), how the size was found)."""
  if os.path.isfile(target_pose):
    target_table = read_keypoints_file(target_pose, num_joints)
    if target_name is not None:
      entry = _lookup(target_table, target_name, target_pose, "target")
    elif len(target_table) == 1:
      entry = next(iter(target_table.values()))
    else:
      raise errors.BadInputError(f"{target_pose} holds {len(target_table)} poses; choose one with --target_name "
                       f"(entries: {', '.join(sorted(target_table)[:10])}).")
    search_dirs = [os.path.dirname(os.path.abspath(target_pose))]
  else:
    if target_pose.lower().endswith((".json", ".csv")) and (target_name or target_pose) not in table:
      raise errors.MissingFileError(f"Target pose file not found: {target_pose}")
    entry = _lookup(table, target_name or target_pose, keypoints_path, "the target pose")
    search_dirs = [os.path.dirname(os.path.abspath(keypoints_path))]
  if entry.image_size is not None:
    return entry, entry.image_size, "its image_size entry"
  if target_size is not None:
    return entry, target_size, "--target_size"
  search_dirs += [os.path.dirname(os.path.abspath(s)) for s in sources]
  for directory in search_dirs:
    candidate = os.path.join(directory, entry.name)
    if os.path.isfile(candidate):
      return entry, image_size_of(candidate), f"the image {candidate}"
  return entry, image_size_of(sources[0]), f"the first source image {sources[0]}"


# ------------------------------------------------------------------------------------------ drawing
def _scale_keypoints(kp: np.ndarray, factor: int) -> np.ndarray:
  out = (np.asarray(kp, np.float32) + 0.5) * factor - 0.5
  out[(np.asarray(kp) < 0).any(axis=-1)] = -1.0
  return out


def make_grid(inputs: dict, generated: np.ndarray, min_height: int = 256) -> np.ndarray:
  """(rows, cols, 3) uint8: sources with skeletons | target skeleton on black | generated.

  Args:
    inputs: `inference.prepare_inputs` output (batch of one).
    generated: (1, H, W, 3) or (H, W, 3) in [-1, 1].
    min_height: cells are scaled up by an integer factor (nearest) to at least this height.
  """
  draw_skeleton = keypoints_lib.draw_skeleton   # limbs + joints
  generated = np.asarray(generated).reshape(inputs["source_images"].shape[2:])
  h = generated.shape[0]
  factor = max(1, -(-min_height // h))

  def up(image_uint8):
    return np.repeat(np.repeat(image_uint8, factor, axis=0), factor, axis=1)

  cells = [draw_skeleton(up(visualize.to_uint8(img)), _scale_keypoints(kp, factor))
           for img, kp in zip(inputs["source_images"][0], inputs["source_keypoints"][0])]
  cells.append(draw_skeleton(up(np.zeros(generated.shape, np.uint8)),
                                           _scale_keypoints(inputs["target_keypoints"][0], factor)))
  cells.append(up(visualize.to_uint8(generated)))
  return visualize.hstack_with_separator(cells, 4)


def grid_path(out: str) -> str:
  stem, _ = os.path.splitext(out)
  return stem + "_grid.png"


# ------------------------------------------------------------------------------------------ running
def load_config(config_spec: str | None, workdir: str) -> ml_collections.ConfigDict:
  """`config_spec` via `config_utils.load_config`, or the run's `<workdir>/config.json`."""
  if config_spec:
    return config_utils.load_config(config_spec)
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"No --config given and no {path}; pass --config=configs/<name>.py[:arg] "
                            "(the config the run was trained with).")
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise errors.BadInputError(f"{path} cannot be read as a run's config ({e}); pass --config="
                               "configs/<name>.py[:arg] (the config the run was trained with).") from None
  missing = config_utils.keys_missing_from(saved)
  if missing:
    raise errors.BadInputError(
        f"{path} was written by an older rfgen_jax: it lacks {len(missing)} config key(s) this version "
        f"reads ({', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''}), and their defaults may not "
        "be what the run was trained with. Retrain with this version, or add the keys to the file with "
        "the values the run used (docs/protocol.md lists the earlier behaviour of each new switch).")
  return ml_collections.ConfigDict(config_utils.with_reading_irrelevant_defaults(saved))


PRETRAINED_HELP = ("a released model instead of --workdir: its name (python -m rfgen_jax.tools.pretrained "
                   "--list) or its folder (docs/pretrained.md)")


def load_model_config(args) -> tuple[ml_collections.ConfigDict, pretrained.Release | None]:
  """The model a tool's flags name: exactly one of `--workdir` (a training run) and `--pretrained`.

  Args:
    args: parsed flags with `workdir`, `pretrained` and optionally `config`, `step`, `raw_params`.

  Returns:
    (config, release): a run's config (`load_config`) and None, or a verified release's config and the
    `pretrained.Release` (its parameters are restored by `inference.released_generator`).

  Raises:
    errors.BadInputError: neither or both given, or a run-only flag with `--pretrained`; the release
      errors of `pretrained.load_release` (an unknown name, a damaged file).
  """
  workdir, name = getattr(args, "workdir", None), getattr(args, "pretrained", None)
  if bool(workdir) == bool(name):
    raise errors.BadInputError(
        ("--workdir and --pretrained both name a model; pass one of them" if workdir else
         "No model given: pass --workdir=RUN (a training run's folder) or --pretrained=NAME (a released "
         "model, listed by `python -m rfgen_jax.tools.pretrained --list`)") + ".")
  if name:
    for flag, value in (("--config", getattr(args, "config", None)), ("--step", getattr(args, "step", None)),
                        ("--raw_params", getattr(args, "raw_params", False))):
      if value not in (None, False):
        raise errors.BadInputError(
            f"{flag} applies to --workdir only: the release --pretrained={name} holds one set of "
            f"parameters (the EMA of its last step) and its own config.json; leave {flag} out.")
    release = pretrained.load_release(name)
    return release.config, release
  return load_config(args.config, workdir), None


def run(config, workdir: str | None, sources: Sequence[str], keypoints: str, target_pose: str, out: str,
        step: int | None = None, target_name: str | None = None,
        target_size: tuple[int, int] | None = None, fit: str = "pad",
        raw_params: bool = False, release: pretrained.Release | None = None) -> dict[str, str]:
  """Generates one image; see the module docstring for the arguments. Returns {"image", "grid"} paths.

  The generator's EMA parameters are used (train.ema_decay), its raw ones with `raw_params`
  (`--raw_params`); with `release` (`pretrained.load_release`), the release's instead of `workdir`'s."""
  sources = [s for s in sources if s]
  if not sources:
    raise errors.BadInputError("No source images given (K = 0): pass --sources a.jpg[,b.jpg,...].")
  if not out.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")):
    raise errors.BadInputError(f"--out must name an image file (.png, .jpg), got {out!r}.")
  num_joints = int(config.data.num_keypoints)
  table = read_keypoints_file(keypoints, num_joints)
  images = [read_image(path) for path in sources]
  source_kps = [_lookup(table, path, keypoints, "source image").keypoints for path in sources]
  entry, frame, how = resolve_target(target_pose, keypoints, table, sources, num_joints, target_name,
                                     target_size)
  inputs = inference.prepare_inputs(
      config, images, source_kps, entry.keypoints, target_size=frame,
      names=[os.path.basename(s) for s in sources], target_name=f"target pose {entry.name!r}", fit=fit)
  if release is not None:
    generator, params, _ = inference.released_generator(release)
  else:
    generator, params = inference.load_generator(config, workdir, step, use_ema=not raw_params)
  generated = inference.generate(generator, params, inputs)
  image = np.clip(np.round((generated[0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  Image.fromarray(image).save(out)
  Image.fromarray(make_grid(inputs, generated)).save(grid_path(out))
  print(f"Target pose {entry.name!r}: frame {frame[0]}x{frame[1]} (from {how}).")
  print(f"Wrote {out} ({image.shape[0]}x{image.shape[1]}) and {grid_path(out)}.")
  return {"image": out, "grid": grid_path(out)}


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m rfgen_jax.tools.generate",
      description="Generate the person of K source photos in a target pose with a trained model.")
  parser.add_argument("--workdir", default=None, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--pretrained", default=None, help=PRETRAINED_HELP)
  parser.add_argument("--config", default=None,
                      help="config spec, e.g. configs/market.py[:arg]; default: <workdir>/config.json")
  parser.add_argument("--sources", required=True, help="comma-separated source image files")
  parser.add_argument("--keypoints", required=True, help="annotation CSV or keypoint JSON of the sources")
  parser.add_argument("--target_pose", required=True,
                      help="a keypoint file with the target pose, or an entry name of --keypoints")
  parser.add_argument("--target_name", default=None, help="entry of a --target_pose file with several")
  parser.add_argument("--target_size", default=None, help="H,W of the target pose's frame")
  parser.add_argument("--out", required=True, help="output image (.png); the grid goes beside it")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--fit", default="pad", choices=inference.FIT_MODES,
                      help="other aspect ratios: pad (default) or stretch to the model's size")
  parser.add_argument("--raw_params", action="store_true",
                      help="use the raw generator parameters, not their EMA (the default)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out and its grid")
  args = parser.parse_args(argv)
  if not args.overwrite:
    errors.check_output_free(args.out)
    errors.check_output_free(grid_path(args.out))
  config, release = load_model_config(args)
  run(config, args.workdir, args.sources.split(","), args.keypoints, args.target_pose, args.out,
      step=args.step, target_name=args.target_name, target_size=parse_size(args.target_size),
      fit=args.fit, raw_params=args.raw_params, release=release)
  return 0


if __name__ == "__main__":
  sys.exit(main())
