r"""Prints how a trained run's flows use the sources (rfgen_jax/evaluation/source_use.py).

    python -m rfgen_jax.tools.flow_report --workdir=RUN [--config=configs/synthetic.py] [--step N]
        [--num_sources 2] [--max_tuples 64] [--json out.json]

For each level (coarse to fine) it prints, as means over the first `--max_tuples` test tuples of
`--num_sources` sources (default: the run's data.num_sources), the person-region L1 between the target and
the best source as is, warped by the flow estimator's flow, and warped by the refined flow (estimator +
RF residual); the generated image's L1; the flow's mean length in image pixels and the occlusion maps'
mean over the person. A flow that aligns gives a warped L1 well below the unwarped one. Needs a data set
with body keypoints (the person region is the target pose's limb mask).
"""
from __future__ import annotations

import argparse
import json
import sys

import jax

from rfgen_jax import cli
from rfgen_jax import data, errors, inference, models
from rfgen_jax.evaluation import source_use
from rfgen_jax.tools import generate as generate_tool


def table(values: dict, num_levels: int, factors) -> str:
  """The markdown table of `source_use.measure`'s values; level index 0 = finest."""
  lines = ["| level | best source as is | warped by the flow | warped by flow + residual | generated | "
           "mean flow length (px) | occlusion mean |", "| --- | --- | --- | --- | --- | --- | --- |"]
  for i in range(num_levels - 1, -1, -1):
    lines.append(f"| H/{factors[num_levels - 1 - i]} | {values['l1_unwarped']:.4f} | {values[f'l1_warped_{i}']:.4f} | "
                 f"{values[f'l1_refined_{i}']:.4f} | {values['l1_generated']:.4f} | "
                 f"{values[f'flow_px_{i}']:.2f} | {values[f'occlusion_{i}']:.3f} |")
  if "l1_keypoint_reference" in values:
    lines.append(reference_line(values))
  return "\n".join(lines)


def reference_line(values: dict) -> str:
  """The keypoint reference (rfgen_jax/evaluation/keypoint_reference_flow.py) and the share of its gain
  that the finest level's predicted flow reaches."""
  gap = values["l1_unwarped"] - values["l1_keypoint_reference"]
  share = lambda key: (values["l1_unwarped"] - values[key]) / gap if gap > 0 else float("nan")
  return (f"\nReference, the sources warped by a thin-plate spline through the true keypoint correspondences: "
          f"L1 {values['l1_keypoint_reference']:.4f} ({_change(values, 'l1_keypoint_reference')}), mean "
          f"length {values['flow_px_keypoint_reference']:.2f} px. The finest level's flow reaches "
          f"{share('l1_warped_0'):.0%} of the reference's gain, with the residual {share('l1_refined_0'):.0%}.")


def _change(values: dict, key: str) -> str:
  return f"{values[key] / values['l1_unwarped'] - 1.0:+.1%} vs as is" if values["l1_unwarped"] > 0 else "n/a"


@cli.exit_2_on_user_error
def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
  parser.add_argument("--workdir", required=True, help="the training run")
  parser.add_argument("--config", default=None, help="config spec; default: <workdir>/config.json")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--num_sources", type=int, default=None, help="K (default: the run's data.num_sources)")
  parser.add_argument("--max_tuples", type=int, default=64, help="test tuples measured (0 = all)")
  parser.add_argument("--json", default=None, help="also write the values to this JSON file")
  args = parser.parse_args(argv)
  config = generate_tool.load_config(args.config, args.workdir)
  k = int(args.num_sources or config.data.num_sources)
  if k < 1:
    raise errors.BadInputError(f"--num_sources must be >= 1, got {k}.")
  if data.pose_kind(config) != "keypoints":
    raise errors.BadInputError(f"data set {config.data.name!r} has no body keypoints: the person region of "
                               "the source-use measures is the target pose's limb mask.")
  config.eval.max_tuples = args.max_tuples
  generator, params, step = inference.restore_generator(config, args.workdir, args.step)
  data.ensure_dataset(config)
  values = source_use.measure(generator, jax.device_get(params), data.create_eval_batches(config, k, 0, 1),
                              config.data.image_size, inference.generator_outputs)
  levels = tuple(models.build_generator(config).levels)
  print(f"{args.workdir}, step {step}, K = {k}, {args.max_tuples or 'all'} test tuples; person-region L1 "
        "(images in [0, 1]) of the best source:")
  print(table(values, len(levels), levels))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"step": int(step), "num_sources": k, "values": values}, f, indent=2, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
