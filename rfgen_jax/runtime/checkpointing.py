"""Orbax checkpoints holding the train state, the grain iterator state and the run's config.

A checkpoint is a step folder under `<workdir>/checkpoints/` with three items: `state` (the TrainState
pytree), `data` (the input iterator position, one file per process) and `config` (the config as JSON,
used to refuse a checkpoint of another model shape). Orbax writes each step into a temporary folder and
renames it when complete, so a process killed while saving leaves the previous checkpoint usable.
"""
from __future__ import annotations

import json
import os

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging

from rfgen_jax import config_utils, errors


class IncompatibleCheckpointError(errors.UserError, ValueError):
  """The checkpoint in a workdir was written by a config with other shapes (a user error)."""


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for the three items of a run."""

  def __init__(self, workdir: str, config, *, read_only: bool = False):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    if read_only:
      self.manager = read_only_manager(self.directory)
      return
    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.checkpoint.max_to_keep,
        enable_async_checkpointing=bool(config.checkpoint.async_save),
        create=True, cleanup_tmp_directories=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=item_handlers())
    _wait_for_temporary_folder_cleanup(self.manager)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state, data_iterator, config) -> None:
    """Starts an (async, if configured) save of `state`, the iterator position and `config`."""
    items = {"state": ocp.args.StandardSave(state),
             "config": ocp.args.JsonSave(json.loads(config.to_json_best_effort()))}
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    self.manager.save(step, args=ocp.args.Composite(**items), force=True)

  def saved_config(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

  def check_compatible(self, step: int, config) -> None:
    """Raises IncompatibleCheckpointError naming the config keys whose values differ."""
    differences = config_utils.differing_shape_keys(self.saved_config(step), config)
    if differences:
      raise IncompatibleCheckpointError(
          f"The checkpoint at {self.directory}/{step} was written with another model configuration; "
          "differing keys:\n  " + "\n  ".join(differences) +
          "\nUse the same settings (see config.json of that run) or another --workdir.")

  def restore(self, step: int, abstract_state, config, data_iterator=None):
    """Restores the state (sharded like `abstract_state`) and, if given, the iterator in place."""
    self.check_compatible(step, config)
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    logging.info("Restored checkpoint %s/%d.", self.directory, step)
    return restored["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _wait_for_temporary_folder_cleanup(manager: ocp.CheckpointManager) -> None:
  """Waits for the cleanup of unfinished checkpoint folders that orbax-checkpoint >= 0.11 starts in a
  background thread when a manager is made (0.10 cleans up before returning). Neither `close()` nor
  `wait_until_finished()` waits for it, so a run that fails to start and has its new workdir removed
  (`cli.removing_new_empty_folders`) would race it: the thread then lists a folder that is gone and
  prints a traceback. Waiting here (a listing of one folder) leaves no thread behind the constructor."""
  await_cleanup = getattr(manager, "_maybe_await_cleanup_tmp_directory", None)
  if await_cleanup is not None:
    await_cleanup()


def item_handlers(state_handler=None) -> dict:
  """Orbax handlers of the three items of a checkpoint (`state`, `data`, `config`).

  Every manager that opens the checkpoints registers all three, even to restore one: Orbax warns
  ("Item ... was found in the checkpoint, but could not be restored") about every item on disk it has no
  handler for. `state_handler` replaces the `state` handler (inference restores a subtree of the state
  with `ocp.PyTreeCheckpointHandler`, which reads the same format).
  """
  return {"state": state_handler or ocp.StandardCheckpointHandler(),
          "data": grain.checkpoint.CheckpointHandler(),
          "config": ocp.JsonCheckpointHandler()}


def read_only_manager(directory: str, state_handler=None) -> ocp.CheckpointManager:
  """A manager that reads the checkpoints of `directory` and can neither save, delete nor create.

  The options are those Orbax enforces for `read_only=True` (no saving interval, no `max_to_keep`, no
  clean-up of temporary folders), given here so that Orbax has none to correct and warn about.
  """
  options = ocp.CheckpointManagerOptions(
      read_only=True, create=False, save_interval_steps=0, max_to_keep=None,
      cleanup_tmp_directories=False)
  return ocp.CheckpointManager(directory, options=options, item_handlers=item_handlers(state_handler))


def abstract_with_sharding(abstract_tree, sharding_tree):
  """ShapeDtypeStructs carrying the target shardings (restore targets)."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract_tree, sharding_tree)
