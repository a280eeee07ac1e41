"""The training state: one pytree with generator and discriminator variables, three optimizer states,
the exponential moving average (EMA) of the generator's parameters, and the step.

The flow warm-up (stage 1) has its own Adam state over `params["flow_estimator"]` only; stage 2 starts a
fresh Adam over the whole generator, as when the paper's two stages are separate runs.

A run starts from drawn parameters, or from given ones (`train.init_from`, rfgen_jax/train/init_from.py:
the generator's, and the discriminator's when the source has one of this shape); either way the
optimizer states are fresh and the step is 0.
"""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array                 # int32 scalar: number of updates done
  gen_params: Any
  ema_params: Any                 # EMA of gen_params (train.ema_decay); used by eval, samples, export
  disc_params: Any
  disc_stats: Any                 # spectral-norm power-iteration vectors ("batch_stats")
  flow_opt_state: Any             # stage 1: Adam over gen_params["flow_estimator"]
  gen_opt_state: Any              # stage 2: Adam over all of gen_params
  disc_opt_state: Any             # stage 2: Adam over disc_params


def make_optimizers(config) -> tuple[optax.GradientTransformation, ...]:
  """(flow, generator, discriminator) optimizers: Adam(b1, b2) with the configured learning rates."""
  t = config.train

  def adam(lr):
    chain = [optax.clip_by_global_norm(t.grad_clip_norm)] if t.grad_clip_norm > 0 else []
    return optax.chain(*chain, optax.adam(lr, b1=t.adam_b1, b2=t.adam_b2))

  return adam(t.learning_rate), adam(t.learning_rate), adam(t.disc_learning_rate)


def ema_decay(config, step: jax.Array) -> jax.Array:
  """The EMA decay used for the update that makes `step` updates: min(train.ema_decay, (1+t)/(10+t)).

  The ramp (as in TensorFlow's `ExponentialMovingAverage(num_updates=...)`) keeps the average from being
  dominated by the random initialisation early on; `train.ema_decay=0` makes the EMA equal the raw
  parameters. See docs/scaling.md ("EMA of the generator") for the default.
  """
  t = step.astype(jnp.float32)
  return jnp.minimum(jnp.float32(config.train.ema_decay), (1.0 + t) / (10.0 + t))


def update_ema(config, ema_params, new_params, step: jax.Array):
  """ema <- d * ema + (1 - d) * params, with d = `ema_decay(config, step)`; float32 like the params."""
  d = ema_decay(config, step)
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(p.dtype), ema_params, new_params)


def dummy_inputs(config, batch_size: int, num_sources: int):
  """Zero arrays of the model's input shapes (for init and shape inference)."""
  h, w = config.data.image_size
  p = config.data.pose_channels
  return (jnp.zeros((batch_size, num_sources, h, w, 3), jnp.float32),
          jnp.zeros((batch_size, num_sources, h, w, p), jnp.float32),
          jnp.zeros((batch_size, h, w, p), jnp.float32))


def init_state(config, rng: jax.Array, generator, discriminator, gen_params=None,
               disc_variables=None) -> TrainState:
  """Initialises every variable. Pure: call under `jax.jit(..., out_shardings=...)`, as `create_state`.

  Args:
    config: experiment config.
    rng: a raw threefry key, `jax.random.PRNGKey(train.seed)` (uint32[2]).
    gen_params: None (drawn), or the generator's parameters to start from (a pytree of float32 arrays
      shaped like `abstract_state(...).gen_params`); the EMA starts equal to them.
    disc_variables: None (drawn), or {"params", "batch_stats"} of the discriminator, shaped like the
      state's `disc_params` and `disc_stats`. A drawn discriminator is the same whether or not the
      generator's parameters are given (its key does not depend on them).
  The optimizer states are always fresh (Adam's moments are zeros of the parameters' shapes) and the
  step is 0.
  """
  flow_tx, gen_tx, disc_tx = make_optimizers(config)
  # Parameters are drawn with the RngBitGenerator PRNG: its init compiles ~3x faster on CPU than
  # threefry's (hundreds of initialisers). Deterministic for a seed on a given backend.
  init_key = jax.random.wrap_key_data(jnp.concatenate([rng, rng]).astype(jnp.uint32), impl="rbg")
  gen_rng, disc_rng = jax.random.split(init_key)
  sources, source_poses, target_pose = dummy_inputs(config, 1, config.data.num_sources)
  if gen_params is None:
    gen_params = generator.init(gen_rng, sources, source_poses, target_pose)["params"]
  disc_vars = disc_variables if disc_variables is not None else discriminator.init(disc_rng, sources[:, 0])
  disc_params = disc_vars["params"]
  disc_stats = disc_vars.get("batch_stats", {})
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      gen_params=gen_params,
      ema_params=gen_params,
      disc_params=disc_params,
      disc_stats=disc_stats,
      flow_opt_state=flow_tx.init(gen_params["flow_estimator"]),
      gen_opt_state=gen_tx.init(gen_params),
      disc_opt_state=disc_tx.init(disc_params),
  )


# What `init_state` and the train steps (rfgen_jax/train/steps.py) read of a config, and nothing else.
_PROGRAM_SECTIONS = ("losses", "model")
_PROGRAM_KEYS = {
    "train": ("learning_rate", "disc_learning_rate", "adam_b1", "adam_b2", "grad_clip_norm", "ema_decay",
              "grad_reduction"),
    "data": ("image_size", "num_sources", "pose_channels"),
}


def program_config(config) -> ml_collections.FrozenConfigDict:
  """The part of `config` that the state's initialisation and the train steps read, frozen: the whole
  `losses` and `model` sections, the optimizer, EMA and gradient-reduction keys of `train` and the input
  shapes of `data`.

  It is a static argument of their jitted forms (`abstract_state`, `create_state`,
  `rfgen_jax.train.steps.StepSpec`): hashable, and equal for two runs that differ only in what these
  programs do not read (total steps, data root, checkpoint, logging and eval settings), so such runs in
  one process share one trace. A program that reads a key left out here fails with an AttributeError
  naming it (add it to `_PROGRAM_KEYS`) instead of reusing a trace made for another value of it.
  Idempotent: a program config passes through unchanged.
  """
  view = {name: config[name] for name in _PROGRAM_SECTIONS}
  view.update({section: {key: config[section][key] for key in keys} for section, keys in _PROGRAM_KEYS.items()})
  return ml_collections.FrozenConfigDict(view)


def abstract_state(config, generator, discriminator) -> TrainState:
  """The state's shapes and dtypes (`jax.ShapeDtypeStruct` leaves), nothing computed.

  Traced once per (`program_config(config)`, networks) in a process, and `create_state` reuses that trace.
  """
  return jax.jit(init_state, static_argnums=(0, 2, 3)).eval_shape(
      program_config(config), jax.random.PRNGKey(0), generator, discriminator)


def create_state(config, rng: jax.Array, generator, discriminator, state_sharding=None, *,
                 gen_params=None, disc_variables=None) -> TrainState:
  """`init_state` under `jax.jit`, each leaf created on the devices with its `state_sharding` (a pytree of
  shardings like `abstract_state`'s; None: placed as jit places it, on the default device).
  `rng`: `jax.random.PRNGKey(train.seed)`. `gen_params`, `disc_variables`: given variables to start from
  instead of drawn ones (`init_state`; rfgen_jax/train/init_from.py loads them)."""
  shardings = {} if state_sharding is None else {"out_shardings": state_sharding}
  # Only given variables are passed: a call without them is the one `abstract_state` traced.
  given = {name: value for name, value in (("gen_params", gen_params), ("disc_variables", disc_variables))
           if value is not None}
  return jax.jit(init_state, static_argnums=(0, 2, 3), **shardings)(
      program_config(config), rng, generator, discriminator, **given)
