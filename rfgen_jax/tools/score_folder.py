r"""Scores a folder of generated images against the real ones, with the evaluators `--mode=eval` runs.

  python -m rfgen_jax.tools.score_folder --generated eval_results/market --real market/test \
      --train market/train --annotations market/market-annotation-test.csv \
      --gfla_inception_weights inception_gfla.npz --inception_weights inception_fid.npz \
      --alexnet_weights lpips_alex.npz --output scores.json

Any method's outputs can be put in one table this way (GFLA's, PISE's, ours: `<workdir>/eval/images_K{k}`).
Each generated file is paired with the real file of its target (`rfgen_jax.evaluation.image_files`:
GFLA's `<from>_2_<to>_vis.png` names and ours both work; a file named like a real one pairs with it).
All images must have one size (no resizing here). FID's real statistics: the `--train` images (GFLA: the
whole training set at the evaluated size); without `--train`, the `--real` images paired with the
generated ones (reported as `"fid_real": "test"`). `--annotations` (a `name:keypoints_y:keypoints_x`
CSV, keypoints in the real images' pixel frame) enables Mask-LPIPS and the person-region metrics.

Exit status 2, with one line naming the file, for bad input: a missing folder or file, an unreadable
image, a generated image without its real one, images of different sizes, a target without keypoints.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import jax
import ml_collections
import numpy as np

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax.data import annotations as annotations_lib
from rfgen_jax.evaluation import evaluators as ev
from rfgen_jax.evaluation import image_files, loop, real_images, tables
from rfgen_jax.runtime import sharding

DEFAULT_EVALUATORS = "fid_gfla,fid_pytorch,lpips,mask_lpips,ssim_psnr_l1"


def make_config(image_size, batch_size: int, weights: dict) -> ml_collections.ConfigDict:
  """The keys the evaluators read (`eval.*` as in configs/common.py, `data.image_size`)."""
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict({"image_size": tuple(image_size)})
  c.eval = ml_collections.ConfigDict({"batch_size": batch_size, "mask_lpips": True, "num_sample_grids": 0,
                                      "gfla_inception_weights": None, "inception_weights": None,
                                      "alexnet_weights": None, "lpips_heads": None, "fid_real": "train"})
  for key, value in weights.items():
    c.eval[key] = value
  return c


def folder_batches(pairs, image_size, global_batch: int, mesh, keypoints=None):
  """`evaluators.Batch`es of (generated, real) files; rows past the end are padding (valid False)."""
  gen = real_images.folder_images("", [p[0] for p in pairs], image_size, "Generated")
  real = real_images.folder_images("", [p[1] for p in pairs], image_size, "Real")
  both = zip(real_images.host_batches(gen, global_batch), real_images.host_batches(real, global_batch))
  for i, ((fake, valid), (target, _)) in enumerate(both):
    rows = np.where(valid, i * global_batch + np.arange(global_batch), 0)
    names = [(pairs[r][0], pairs[r][1]) for r in rows]
    arrays = {"fake": fake, "real": target}
    if keypoints is not None:
      arrays["mask"] = loop.person_masks(np.stack([keypoints[r] for r in rows]), image_size)
    arrays = sharding.to_global_batch(arrays, mesh)
    yield ev.Batch(fake=arrays["fake"], real=arrays["real"], valid=valid, names=names,
                   mask=arrays.get("mask"), host=None, index=i)


def score(generated: str, real: str, train: Optional[str] = None, annotations: Optional[str] = None,
          evaluator_names: Sequence[str] = DEFAULT_EVALUATORS.split(","), batch_size: int = 8,
          weights: Optional[dict] = None, k: int = 1) -> dict:
  """Scores `generated` against `real` (see the module docstring); returns the report dict.

  Raises:
    errors.UserError (image_files.ImageFolderError, ...): bad input (the message names it).
  """
  pairs = image_files.pair_folders(generated, real)
  image_size = image_files.read_image(pairs[0][0]).shape[:2]
  devices = jax.local_device_count()
  global_batch = -(-batch_size // devices) * devices
  mesh = sharding.make_mesh((-1, 1), devices=jax.local_devices())
  config = make_config(image_size, global_batch, weights or {})
  keypoints = None
  if annotations:
    table = annotations_lib.read_annotations(annotations)
    missing = [p[1] for p in pairs if _base(p[1]) not in table]
    if missing:
      raise errors.MissingEntryError(f"{annotations} has no keypoints for the real image {missing[0]} "
                                     f"({len(missing)} of {len(pairs)} targets missing).")
    keypoints = [table[_base(p[1])] for p in pairs]
  fid_reals = None
  if train:
    images = real_images.folder_images(train, None, image_size, "Train")
    fid_reals = (images.description, lambda: real_images.host_batches(images, global_batch))
    config.eval.fid_real = "train"
  else:
    config.eval.fid_real = "test"
  env = ev.Env(config=config, mesh=mesh, keypoint_data=keypoints is not None, out_dir=None,
               fid_reals=fid_reals, cache_dir=None)
  built, skipped = ev.build(list(evaluator_names), env)
  stream = folder_batches(pairs, image_size, global_batch, mesh, keypoints)
  row, counts = loop.score_batches(built, stream, k, total=-(-len(pairs) // global_batch), label="score")
  counts["tuples"] = len(pairs)
  return {"generated": generated, "real": real, "train": train or "", "results": {str(k): row},
          "num_tuples": {str(k): counts["scored"]}, "counts": {str(k): counts}, "skipped": skipped,
          "evaluators": list(evaluator_names), "fid_real": config.eval.fid_real}


def _base(path: str) -> str:
  return os.path.basename(path)


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--generated", required=True, help="folder of generated images")
  parser.add_argument("--real", required=True, help="folder of the real (ground-truth) test images")
  parser.add_argument("--train", default=None, help="folder of training images for FID's real statistics")
  parser.add_argument("--annotations", default=None, help="keypoint CSV of the real images (Mask-LPIPS)")
  parser.add_argument("--evaluators", default=DEFAULT_EVALUATORS, help=f"comma list (default {DEFAULT_EVALUATORS})")
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--k", type=int, default=1, help="K to report the row under (the outputs' source count)")
  for key in ("gfla_inception_weights", "inception_weights", "alexnet_weights", "lpips_heads"):
    parser.add_argument(f"--{key}", default=None, help=f"as --config.eval.{key}")
  parser.add_argument("--output", default=None, help="write the report as JSON here")
  args = parser.parse_args(argv)
  weights = {key: getattr(args, key) for key in ("gfla_inception_weights", "inception_weights",
                                                  "alexnet_weights", "lpips_heads")}
  if args.batch_size < 1 or args.k < 1:
    raise errors.BadInputError(f"--batch_size and --k must be >= 1, got {args.batch_size} and {args.k}.")
  report = score(args.generated, args.real, args.train, args.annotations,
                 [n for n in args.evaluators.split(",") if n], args.batch_size, weights, args.k)
  row = report["results"][str(args.k)]
  print(f"{report['counts'][str(args.k)]['scored']} images: " +
        ", ".join(f"{n}={v:.4f}" for n, v in sorted(row.items())))
  for s in report["skipped"]:
    print(f"skipped {s['metric']}: {s['reason']}")
  if args.output:
    with open(args.output, "w") as f:
      json.dump(report, f, indent=2, sort_keys=True)
    tables.write_table(args.output + ".md", report["results"], 0, report["skipped"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
