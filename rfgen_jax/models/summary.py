"""Parameter counts per part and forward-pass GFLOPs of the generator and discriminator.

  python -m rfgen_jax.models.summary --config=configs/market.py [--config.model.width=0.5]

Parameters are counted from abstract shapes (`jax.eval_shape`, nothing is allocated); GFLOPs come
from XLA's cost analysis of the compiled forward pass (`jit(...).lower(...).compile().cost_analysis()`)
for one sample (B = 1) with the config's image size and training K (`data.num_sources`). XLA counts a
multiply-add as 2 flops.
"""
from __future__ import annotations

from absl import flags
import jax
import jax.numpy as jnp
import ml_collections

from rfgen_jax.models.discriminator import build_discriminator
from rfgen_jax.models.generator import build_generator, example_inputs

# Generator parameter groups: (label, predicate on the top-level key of params).
_GROUPS = (
    ("flow estimator", lambda k: k == "flow_estimator"),
    ("source encoder", lambda k: k == "source_encoder"),
    ("target pose encoder", lambda k: k == "target_encoder"),
    ("RF blocks (residual predictors R_i)", lambda k: k.startswith("rf_blocks")),
    ("decoder (D_i + output conv)", lambda k: k == "decoder"),
)


def _count(tree) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):   # older jax returned one dict per device
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", float("nan")))


def generator_stats(config: ml_collections.ConfigDict, with_flops: bool = True) -> dict:
  """Parameter counts per generator part (dict label -> int, plus "total") and `gflops` (B = 1)."""
  gen = build_generator(config)
  inputs = example_inputs(config, batch_size=1, abstract=True)
  variables = jax.eval_shape(gen.init, jax.random.PRNGKey(0), *inputs)
  params = variables["params"]
  counts = {label: _count({k: v for k, v in params.items() if pred(k)}) for label, pred in _GROUPS}
  counts["total"] = _count(params)
  stats = {"params": counts, "gflops": float("nan")}
  if with_flops:
    compiled = jax.jit(gen.apply).lower(variables, *inputs).compile()
    stats["gflops"] = _flops(compiled) / 1e9
  return stats


def discriminator_stats(config: ml_collections.ConfigDict, with_flops: bool = True) -> dict:
  """Discriminator parameter count and GFLOPs of one forward pass on one image."""
  disc = build_discriminator(config)
  h, w = config.data.image_size
  images = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
  variables = jax.eval_shape(disc.init, jax.random.PRNGKey(0), images)
  stats = {"params": _count(variables["params"]), "gflops": float("nan")}
  if with_flops:
    compiled = jax.jit(disc.apply).lower(variables, images).compile()
    stats["gflops"] = _flops(compiled) / 1e9
  return stats


def model_summary(config: ml_collections.ConfigDict, with_flops: bool = True) -> str:
  """A printable table of parameter counts per part and forward GFLOPs."""
  g = generator_stats(config, with_flops)
  d = discriminator_stats(config, with_flops)
  h, w = config.data.image_size
  k = config.data.num_sources
  lines = [
      f"rfgen_jax model summary: data={config.data.name} image {h}x{w}, P={config.data.pose_channels}, "
      f"K={k}, width={config.model.width}, levels={tuple(config.model.levels)}, "
      f"residual_flow={config.model.residual_flow}, occlusion={config.model.occlusion}, "
      f"attention={config.model.attention}, dtype={config.model.dtype}",
      f"{'part':<40}{'params':>14}",
  ]
  for label, _ in _GROUPS:
    lines.append(f"{label:<40}{g['params'][label]:>14,}")
  lines.append(f"{'generator total':<40}{g['params']['total']:>14,}")
  lines.append(f"{'discriminator':<40}{d['params']:>14,}")
  lines.append(f"generator forward, one sample with K={k}: {g['gflops']:.2f} GFLOPs (XLA cost analysis)")
  lines.append(f"discriminator forward, one image: {d['gflops']:.2f} GFLOPs (XLA cost analysis)")
  return "\n".join(lines)


def main(argv):
  del argv
  print(model_summary(flags.FLAGS.config))


if __name__ == "__main__":
  from ml_collections import config_flags   # pylint: disable=g-import-not-at-top
  from rfgen_jax import cli   # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/market.py.",
                                  lock_config=True)
  cli.run(main)
