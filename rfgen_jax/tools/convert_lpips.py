r"""Converts torchvision's AlexNet and the LPIPS v0.1 linear heads to one .npz.

  python -m rfgen_jax.tools.convert_lpips \
      --alexnet alexnet-owt-7be5be79.pth --heads <lpips>/weights/v0.1/alex.pth \
      --output lpips_alex.npz

then set both `eval.alexnet_weights` and `eval.lpips_heads` to the output (or leave
`eval.lpips_heads` unset: the heads are then read from the `eval.alexnet_weights` file).

- AlexNet: https://download.pytorch.org/models/alexnet-owt-7be5be79.pth (torchvision).
- Heads: `weights/v0.1/alex.pth` inside the `lpips` package (https://github.com/richzhang/PerceptualSimilarity);
  `pip download lpips==0.1.4 --no-deps` and unzip the wheel to get it without installing lpips'
  dependencies.

Either input may be omitted to write a file with only the other part. Inputs may also be .npz
state dicts (name -> numpy array). Reading a .pth needs PyTorch (CPU), imported only here.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from rfgen_jax import cli
from rfgen_jax.nets import alexnet
from rfgen_jax.tools.state_dicts import read_state_dict


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.convert_lpips", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--alexnet", help="alexnet-owt-7be5be79.pth (torchvision AlexNet state dict)")
  parser.add_argument("--heads", help="lpips weights/v0.1/alex.pth (linear heads)")
  parser.add_argument("--output", required=True, help="output .npz")
  args = parser.parse_args(argv)
  if not args.alexnet and not args.heads:
    parser.error("give --alexnet and/or --heads")
  backbone = alexnet.alexnet_params_from_state_dict(read_state_dict(args.alexnet, "--alexnet")) if args.alexnet else None
  heads = alexnet.heads_from_state_dict(read_state_dict(args.heads, "--heads")) if args.heads else None
  alexnet.save_npz(args.output, backbone, heads)
  parts = [p for p, v in (("AlexNet features", backbone), ("LPIPS v0.1 heads", heads)) if v is not None]
  keys = ([f"--config.eval.alexnet_weights={args.output}"] if backbone is not None else []) + \
         ([f"--config.eval.lpips_heads={args.output}"] if heads is not None else [])
  print(f"Wrote {args.output}: {' + '.join(parts)}. Use it with {' '.join(keys)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
