"""Scalars that show, while a run trains, whether its flows move (issue: flows that stayed near zero).

At every sample step (`train.sample_every_steps`) the trainer's sample grid comes from one forward pass
that also returns these scalars (`make_generate_with_flow_scalars`: outside the train step, so training
computes the same bits with or without them), on the fixed sample batch of test tuples with the
parameters the samples show (the EMA with `eval.use_ema`). They go to TensorBoard, for each fusion level
i counted from the finest (0 = finest, as in `rfgen_jax/evaluation/source_use.py`):
- `flow/estimator_px_{i}`: the mean length of the flow estimator's flow, in image pixels (the flow is in
  pixels of its level's map; times the level's downsampling factor);
- `flow/residual_px_{i}`: the mean length of the RF block's residual (refined minus estimator flow), in
  image pixels; 0 with `model.residual_flow = False`.
Means over the batch, the K sources and every position. A run whose flows do not learn shows
`flow/estimator_px_0` near 0 px; the person-region measures of how much the flows help are
`--mode=eval`'s `source_use_K{k}` (`rfgen_jax/evaluation/source_use.py`).
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, Sequence

import jax
import jax.numpy as jnp


def flow_scalars(initial_flows: Sequence[jax.Array], flows: Sequence[jax.Array],
                 levels: Sequence[int]) -> Dict[str, jax.Array]:
  """The scalars of the module docstring.

  Args:
    initial_flows, flows: per fusion level, coarse to fine, the estimator's and the refined flows
      (B, K, h, w, 2) in pixels of the level's map (the generator's `initial_flows`, `flows`).
    levels: the levels' downsampling factors, coarse to fine (`model.levels`).
  Returns:
    {"flow/estimator_px_{i}", "flow/residual_px_{i}": float32 scalars}, i = 0 the finest level.
  """
  out = {}
  for i, (initial, refined, factor) in enumerate(zip(initial_flows[::-1], flows[::-1], levels[::-1])):
    initial, refined = initial.astype(jnp.float32), refined.astype(jnp.float32)
    out[f"flow/estimator_px_{i}"] = factor * jnp.mean(jnp.linalg.norm(initial, axis=-1))
    out[f"flow/residual_px_{i}"] = factor * jnp.mean(jnp.linalg.norm(refined - initial, axis=-1))
  return out


@functools.lru_cache(maxsize=None)
def _jitted(generator, params_sharding, batch_sharding):
  levels = tuple(int(level) for level in generator.levels)

  def forward(params, source_images, source_poses, target_pose):
    out = generator.apply({"params": params}, source_images, source_poses, target_pose)
    return out["image"].astype("float32"), flow_scalars(out["initial_flows"], out["flows"], levels)

  return jax.jit(forward, in_shardings=(params_sharding,) + (batch_sharding,) * 3,
                 out_shardings=(batch_sharding, params_sharding))


def make_generate_with_flow_scalars(generator, params_sharding, batch_sharding) -> Callable:
  """`fn(params, batch) -> (image (B, H, W, 3) float32 in [-1, 1], flow_scalars)`: the trainer's sample
  grids and these scalars from one forward pass (one compiled program, cached per generator and
  shardings). `params_sharding`: replicated; `batch_sharding`: split on the mesh's `data` axis (the image
  comes back sharded like the batch, the scalars replicated)."""
  jitted = _jitted(generator, params_sharding, batch_sharding)
  return lambda params, batch: jitted(params, batch["source_images"], batch["source_poses"],
                                      batch["target_pose"])
