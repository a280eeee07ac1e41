"""Starting a run from existing weights (`train.init_from`): a training run's checkpoint or a released model.

`train.init_from` names the source (docs/training.md, "Fine-tuning from a pretrained model or a run"):
- a training run: its workdir (`RUN`: the latest checkpoint) or one checkpoint (`RUN/checkpoints/STEP`);
- a released model: its name or its folder (`rfgen_jax/runtime/pretrained.py`, `load_release`).

What is taken: the generator's parameters (a run's EMA parameters, the model its samples and evaluation
show, as a release holds; the raw ones from a checkpoint written before the EMA existed), and, from a run
whose discriminator has this config's shapes, the discriminator (parameters and spectral-norm vectors);
otherwise the discriminator is drawn as in a run from scratch. The generator's EMA starts equal to its
parameters; the optimizer states are fresh and the step is 0, so both stages run as configured (the flow
warm-up adapts the loaded flow estimator to the new data before the end-to-end stage; set
`train.flow_warmup_steps=0` to skip it).

A source whose generator has another shape is refused (`errors.BadInputError`, exit status 2 at the
entry points), naming the differing `config_utils.SHAPE_KEYS`, or, where those agree, the parameters whose
shapes differ. Model switches that change what the generator computes without changing its shapes (e.g.
`model.attention_activation`) are logged as a warning when they differ from the source's.

The trainer calls `load` only when its workdir holds no checkpoint: a run that has saved one resumes from
it and ignores `train.init_from` (a preempted fine-tune continues; it does not start again).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from rfgen_jax import config_utils, errors
from rfgen_jax.runtime import checkpointing, pretrained

# The discriminator's keys among SHAPE_KEYS: they do not shape the generator (a source whose
# discriminator differs gives its generator, and the discriminator is drawn).
_DISCRIMINATOR_KEYS = ("model.disc_channels", "model.disc_downsampling")
# model.* keys that change neither the parameters' shapes nor what a given set of parameters computes:
# not worth a warning when they differ from the source's.
_NOT_FUNCTIONAL = ("model.init", "model.dtype", "model.warp_impl", "model.conv_impl")


@dataclasses.dataclass(frozen=True)
class Initial:
  """The variables a run starts from (arguments of `runtime.state.create_state`).

  gen_params: the generator's parameters, arrays shaped like the state's `gen_params` (float32).
  disc_variables: {"params", "batch_stats"} of the discriminator, or None (drawn).
  description: what they came from, for the log.
  """
  gen_params: Any
  disc_variables: dict | None
  description: str


def load(config, abstract_state, sharding: jax.sharding.Sharding) -> Initial:
  """The variables named by `config.train.init_from`, placed with `sharding`.

  Args:
    config: the new run's config (checked against the source's model shape).
    abstract_state: `runtime.state.abstract_state(...)` of this config (the shapes to match).
    sharding: where every array goes (the trainer's replicated sharding).
  Raises:
    errors.BadInputError / MissingFileError: no such run, release or checkpoint step, or a source of
      another model shape (the message names the keys or parameters).
  """
  spec = str(config.train.init_from)
  run = _run_checkpoints(spec)
  if run is not None:
    initial = _from_run(config, spec, *run, abstract_state, sharding)
  else:
    initial = _from_release(config, spec, abstract_state, sharding)
  logging.info("Starting from %s: fresh optimizer states, step 0 (train.init_from; docs/training.md, "
               "\"Fine-tuning from a pretrained model or a run\").", initial.description)
  return initial


# ------------------------------------------------------------------------------------------ a run
def _run_checkpoints(spec: str) -> tuple[str, int | None] | None:
  """(the run's `checkpoints/` folder, the step or None for the latest) if `spec` names a training run
  (`RUN`, `RUN/checkpoints` or `RUN/checkpoints/STEP`); None otherwise (a release's name or folder)."""
  path = os.path.abspath(os.path.expanduser(spec))
  if os.path.isdir(os.path.join(path, "checkpoints")):
    return os.path.join(path, "checkpoints"), None
  if os.path.isdir(path) and os.path.basename(path) == "checkpoints":
    return path, None
  parent = os.path.dirname(path)
  if os.path.basename(path).isdigit() and os.path.basename(parent) == "checkpoints" and os.path.isdir(parent):
    return parent, int(os.path.basename(path))
  return None


def _from_run(config, spec: str, directory: str, step: int | None, abstract_state,
              sharding) -> Initial:
  """A partial Orbax restore of the generator's (EMA) parameters and, if its shapes match, the
  discriminator of the checkpoint `step` (None: the latest) in `directory`."""
  # The PyTree handler reads the trainer's format and restores a subtree (as rfgen_jax/inference.py does).
  manager = checkpointing.read_only_manager(directory, state_handler=ocp.PyTreeCheckpointHandler())
  try:
    steps = sorted(manager.all_steps())
    if not steps:
      raise errors.MissingFileError(f"--config.train.init_from={spec}: no checkpoint in {directory}; "
                                    "name a run that has saved one, or a released model.")
    if step is None:
      step = steps[-1]
    elif step not in steps:
      raise errors.MissingFileError(f"--config.train.init_from={spec}: no checkpoint for step {step} in "
                                    f"{directory}; available steps: {steps}.")
    where = f"{directory}/{step}"
    saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    switches = _check_generator_config(spec, where, saved, config)
    tree = manager.item_metadata(step)["state"]
    tree = getattr(tree, "tree", tree)
    name = "ema_params" if "ema_params" in tree else "gen_params"   # no EMA before train.ema_decay existed
    _check_shapes(spec, where, abstract_state.gen_params, tree[name], switches)
    item = {name: abstract_state.gen_params}
    disc_matches = not (_shape_differences(abstract_state.disc_params, tree["disc_params"]) or
                        _shape_differences(abstract_state.disc_stats, tree.get("disc_stats", {})))
    if disc_matches:
      item["disc_params"] = abstract_state.disc_params
      if jax.tree.leaves(abstract_state.disc_stats):
        item["disc_stats"] = abstract_state.disc_stats
    item = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), item)
    restore_args = jax.tree.map(lambda _: ocp.ArrayRestoreArgs(sharding=sharding), item)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True)))["state"]
  finally:
    manager.close()
  what = "EMA" if name == "ema_params" else "raw (the checkpoint holds no EMA)"
  if disc_matches:
    disc_variables = {"params": restored["disc_params"], "batch_stats": restored.get("disc_stats", {})}
    disc = "its discriminator"
  else:
    disc_variables = None
    disc = "a new discriminator (the run's has other shapes)"
  return Initial(restored[name], disc_variables,
                 f"the run checkpoint {where}: its generator's {what} parameters and {disc}")


# ------------------------------------------------------------------------------------------ a release
def _from_release(config, spec: str, abstract_state, sharding) -> Initial:
  """The generator of a released model (by name or folder); the discriminator is drawn (none is released)."""
  try:
    release = pretrained.load_release(spec)
  except pretrained.UnknownReleaseError:
    raise errors.MissingEntryError(
        f"--config.train.init_from={spec} names neither a training run (a workdir holding checkpoints/, or "
        "RUN/checkpoints/STEP) nor a released model (available: "
        f"{', '.join(pretrained.available()) or 'none'}; python -m rfgen_jax.tools.pretrained --list).") from None
  where = f"the released model {release.name} ({release.directory})"
  switches = _check_generator_config(spec, where, json.loads(release.config.to_json_best_effort()), config)
  _check_shapes(spec, where, abstract_state.gen_params, release.params, switches)
  params = jax.tree.map(lambda a, x: jax.device_put(np.asarray(x, a.dtype), sharding),
                        abstract_state.gen_params, release.params)
  return Initial(params, None, f"{where}: its generator's parameters and a new discriminator")


# ------------------------------------------------------------------------------------------ checks
def _check_generator_config(spec: str, where: str, saved: dict, config) -> list[str]:
  """Refuses a source whose config differs in a key that shapes the generator; warns about model
  switches that change what the same parameters compute, and returns them ("key: source=... now=...")."""
  differences = [d for d in config_utils.differing_shape_keys(saved, config)
                 if not d.startswith(_DISCRIMINATOR_KEYS)]
  if differences:
    raise errors.BadInputError(
        f"--config.train.init_from={spec}: {where} has another model shape; differing keys: "
        + "; ".join(d.replace("checkpoint=", "source=") for d in differences) +
        ". Set them to the source's values, or train from scratch (--config.train.init_from='').")
  saved_model = saved.get("model", {})
  switches = [f"model.{key}: source={saved_model[key]!r} now={now!r}"
              for key, now in sorted(json.loads(config.model.to_json_best_effort()).items())
              if f"model.{key}" not in config_utils.SHAPE_KEYS + _NOT_FUNCTIONAL
              and key in saved_model and saved_model[key] != now]
  if switches:
    logging.warning("train.init_from: %s was trained with other model switches, which change what its "
                    "parameters compute: %s.", where, "; ".join(switches))
  return switches


def _shapes(tree) -> dict[str, tuple]:
  """{path: shape} of a tree's leaves (arrays, ShapeDtypeStructs or Orbax ArrayMetadata)."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path, simple=True, separator="/"): tuple(leaf.shape) for path, leaf in flat}


def _shape_differences(expected, found) -> list[str]:
  """'path: source=SHAPE now=SHAPE' for each parameter missing, extra or shaped otherwise, sorted."""
  want, have = _shapes(expected), _shapes(found)
  return [f"{path}: source={have.get(path, 'absent')} now={want.get(path, 'absent')}"
          for path in sorted(set(want) | set(have)) if want.get(path) != have.get(path)]


def _check_shapes(spec: str, where: str, expected, found, switches: list[str]) -> None:
  """Refuses a source whose generator parameters (`found`) are not shaped like this config's (`expected`);
  `switches`, the model switches that differ, are named as the likely cause (some add layers: jump_norm)."""
  differences = _shape_differences(expected, found)
  if differences:
    cause = f"; its model switches differ: {'; '.join(switches)}" if switches else ""
    raise errors.BadInputError(
        f"--config.train.init_from={spec}: the generator of {where} has parameters of other shapes than "
        f"this config's ({len(differences)}: {'; '.join(differences[:4])}"
        f"{'; ...' if len(differences) > 4 else ''}{cause}). Use the source's model settings (its config.json).")
