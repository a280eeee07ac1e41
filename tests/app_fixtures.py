"""Tiny runs for the app and animation tests: a checkpoint of seeded random parameters (the shapes of
`rfgen_jax.runtime.state.init_state`, written with the trainer's Checkpointer, as in tests/test_generate.py)
and the config with its data set under a temporary folder (generated on first use)."""
from __future__ import annotations

import os

import jax
import numpy as np

from rfgen_jax import models
from rfgen_jax.config_utils import load_config
from rfgen_jax.runtime import checkpointing
from rfgen_jax.runtime import state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_run(workdir: str, config_name: str = "synthetic", seed: int = 0, step: int = 4, arg: str = "tiny",
             overrides=None, root: str | None = None):
  """Writes `<workdir>/config.json` and a checkpoint at `step`; returns the config.

  `overrides`: {"section.key": value} applied after `configs/<config_name>.py:<arg>`; `root`: the data
  set's folder (default: generated under the workdir)."""
  config = load_config(os.path.join(ROOT, "configs", f"{config_name}.py") + ":" + arg)
  config.checkpoint.async_save = False
  for key, value in (overrides or {}).items():
    section, name = key.split(".")
    config[section][name] = value
  config.data.root = root or os.path.join(workdir, "data", config_name)
  config.data.tfds_data_dir = os.path.join(workdir, "tfds")
  abstract = state_lib.abstract_state(config, models.build_generator(config),
                                      models.build_discriminator(config))
  rng = np.random.default_rng(seed)

  def fill(a):
    if np.issubdtype(a.dtype, np.floating):
      return jax.numpy.asarray((0.2 * rng.standard_normal(a.shape)).astype(a.dtype))
    return jax.numpy.zeros(a.shape, a.dtype)

  checkpointer = checkpointing.Checkpointer(workdir, config)
  checkpointer.save(step, jax.tree.map(fill, abstract), None, config)
  checkpointer.close()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  return config
