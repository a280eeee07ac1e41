r"""Converts Inception-v3 weights to the .npz files the two FIDs read.

GFLA's FID (the `fid` column, the paper's Table 1): torchvision's ImageNet Inception-v3,

  python -m rfgen_jax.tools.convert_inception --variant=gfla \
      --input inception_v3_google-0cc3c7bd.pth --output inception_gfla.npz

then `--config.eval.gfla_inception_weights=inception_gfla.npz`. The input is the file torchvision
downloads for `inception_v3(weights="IMAGENET1K_V1")` (usually in ~/.cache/torch/hub/checkpoints/).

pytorch-fid's FID (the `fid_pytorch` column): the TensorFlow FID Inception,

  python -m rfgen_jax.tools.convert_inception --variant=pytorch_fid \
      --input pt_inception-2015-12-05-6726825d.pth --output inception_fid.npz

then `--config.eval.inception_weights=inception_fid.npz`
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth).

Either input may also be an .npz of the same state dict (name -> numpy array). Reading a .pth needs
PyTorch (CPU build is enough), imported only here; the conversion itself
(`rfgen_jax.nets.inception.params_from_state_dict`) is numpy only. The two files have the same tensor
names; their classifiers (1000 vs 1008 classes) tell them apart, and a file given with the wrong
`--variant` is an error. The output records its variant, and the evaluator refuses the other one.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from rfgen_jax import cli
from rfgen_jax.nets import inception
from rfgen_jax.tools.state_dicts import read_state_dict

CONFIG_KEYS = {"gfla": "eval.gfla_inception_weights", "pytorch_fid": "eval.inception_weights"}


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.convert_inception", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--variant", choices=sorted(CONFIG_KEYS), default="pytorch_fid",
                      help="gfla: torchvision's inception_v3_google-*.pth (GFLA's FID); pytorch_fid: "
                           "pt_inception-2015-12-05-6726825d.pth (default)")
  parser.add_argument("--input", required=True, help="the .pth (or .npz) state dict")
  parser.add_argument("--output", required=True, help="output .npz")
  args = parser.parse_args(argv)
  state_dict = read_state_dict(args.input)
  params = inception.params_from_state_dict(state_dict, variant=args.variant)
  inception.save_params(args.output, params, variant=args.variant)
  count = sum(v.size for v in inception.flatten_params(params).values())
  print(f"Wrote {args.output}: {args.variant} Inception-v3, {count} values. "
        f"Use it with --config.{CONFIG_KEYS[args.variant]}={args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
