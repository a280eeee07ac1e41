"""The training state: one pytree with generator and discriminator variables, three optimizer states,
the step and the base rng.

The flow warm-up (stage 1) has its own Adam state over `params["flow_estimator"]` only; stage 2 starts a
fresh Adam over the whole generator, as when the paper's two stages are separate runs.
"""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array                 # int32 scalar: number of updates done
  rng: jax.Array                  # base PRNG key; the step's key is fold_in(rng, step)
  gen_params: Any
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


def dummy_inputs(config, batch_size: int, num_sources: int):
  """Zero arrays of the model's input shapes (for init and shape inference)."""
  h, w = config.data.image_size
  p = config.data.pose_channels
  return (jnp.zeros((batch_size, num_sources, h, w, 3), jnp.float32),
          jnp.zeros((batch_size, num_sources, h, w, p), jnp.float32),
          jnp.zeros((batch_size, h, w, p), jnp.float32))


def init_state(config, rng: jax.Array, generator, discriminator) -> TrainState:
  """Initialises every variable. Pure: call under `jax.jit(..., out_shardings=...)`.

  Args:
    config: experiment config.
    rng: a raw threefry key, `jax.random.PRNGKey(train.seed)` (uint32[2]).
  """
  flow_tx, gen_tx, disc_tx = make_optimizers(config)
  # Parameters are drawn with the RngBitGenerator PRNG: its init compiles ~3x faster on CPU than
  # threefry's (hundreds of initialisers). Deterministic for a seed on a given backend.
  init_key = jax.random.wrap_key_data(jnp.concatenate([rng, rng]).astype(jnp.uint32), impl="rbg")
  gen_rng, disc_rng = jax.random.split(init_key)
  state_rng = jax.random.fold_in(rng, 1)
  sources, source_poses, target_pose = dummy_inputs(config, 1, config.data.num_sources)
  gen_params = generator.init(gen_rng, sources, source_poses, target_pose)["params"]
  disc_vars = discriminator.init(disc_rng, sources[:, 0])
  disc_params = disc_vars["params"]
  disc_stats = disc_vars.get("batch_stats", {})
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      rng=state_rng,
      gen_params=gen_params,
      disc_params=disc_params,
      disc_stats=disc_stats,
      flow_opt_state=flow_tx.init(gen_params["flow_estimator"]),
      gen_opt_state=gen_tx.init(gen_params),
      disc_opt_state=disc_tx.init(disc_params),
  )
