r"""Converts pytorch-fid's FID Inception-v3 weights to the .npz that `eval.inception_weights` names.

  python -m rfgen_jax.tools.convert_inception \
      --input pt_inception-2015-12-05-6726825d.pth --output inception_fid.npz

The input is pytorch-fid's released file
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth)
or an .npz of the same state dict (name -> numpy array). Reading a .pth needs PyTorch (CPU build is
enough), imported only here; the conversion itself (`rfgen_jax.nets.inception.params_from_state_dict`)
is numpy only.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from rfgen_jax.tools.state_dicts import read_state_dict


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.convert_inception", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--input", required=True, help="pt_inception-2015-12-05-6726825d.pth (or .npz)")
  parser.add_argument("--output", required=True, help="output .npz (set eval.inception_weights to it)")
  args = parser.parse_args(argv)
  from rfgen_jax.nets import inception  # pylint: disable=g-import-not-at-top
  params = inception.params_from_state_dict(read_state_dict(args.input))
  inception.save_params(args.output, params)
  count = sum(v.size for v in inception.flatten_params(params).values())
  print(f"Wrote {args.output}: FID Inception-v3, {count} values. "
        f"Use it with --config.eval.inception_weights={args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
