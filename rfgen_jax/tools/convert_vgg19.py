r"""Converts torchvision's VGG19 ImageNet weights to the .npz that `losses.vgg19_weights` names.

  python -m rfgen_jax.tools.convert_vgg19 --input vgg19-dcbb9e9d.pth --output vgg19.npz

then train with `--config.losses.vgg19_weights=vgg19.npz`.

The input is torchvision's `vgg19-dcbb9e9d.pth` (https://download.pytorch.org/models/vgg19-dcbb9e9d.pth;
after any torchvision use it is usually in ~/.cache/torch/hub/checkpoints/), or an .npz of the same state
dict (name -> numpy array). Reading a .pth needs PyTorch (a CPU build is enough); it is imported only for
that, and only here: training never needs it. The conversion itself (`convert_state_dict`) is numpy only.

Mapping: `features.{i}.weight` (O, I, 3, 3) -> `conv{b}_{n}/kernel` (3, 3, I, O) (HWIO; both frameworks
compute cross-correlation, so no flip) and `features.{i}.bias` -> `conv{b}_{n}/bias`, for the 16 convs at
the indices `rfgen_jax.nets.vgg19.TORCHVISION_FEATURE_INDICES`. The classifier is dropped.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from rfgen_jax.nets import vgg19
from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax.tools.state_dicts import read_state_dict


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> Dict[str, Dict[str, np.ndarray]]:
  """Maps a torchvision VGG19 state dict to VGG19's flax parameters.

  Args:
    state_dict: name -> numpy array (torch tensors converted with `.numpy()`), with keys
      `features.{i}.weight` / `features.{i}.bias` (an optional `module.` prefix is removed; other keys,
      such as the classifier's, are ignored).
  Returns:
    {"conv1_1": {"kernel": (3, 3, 3, 64) float32, "bias": (64,) float32}, ...} for the 16 convs.
  Raises:
    KeyError: a conv weight or bias is missing.
    ValueError: a tensor has an unexpected shape.
  """
  sd = {(k[len("module."):] if k.startswith("module.") else k): np.asarray(v)
        for k, v in state_dict.items()}
  shapes = vgg19.param_shapes()
  params = {}
  for name, index in zip(vgg19.LAYER_NAMES, vgg19.TORCHVISION_FEATURE_INDICES):
    w_key, b_key = f"features.{index}.weight", f"features.{index}.bias"
    for key in (w_key, b_key):
      if key not in sd:
        raise errors.MissingEntryError(f"VGG19 state dict has no {key!r} (for {name}); is it torchvision's vgg19 "
                       f"({vgg19.TORCHVISION_FILE})? Keys seen: {sorted(sd)[:8]}...")
    kh, kw, i, o = shapes[f"{name}/kernel"]
    weight, bias = sd[w_key], sd[b_key]
    if weight.shape != (o, i, kh, kw) or bias.shape != (o,):
      raise errors.BadInputError(f"VGG19 state dict: {w_key} {weight.shape} / {b_key} {bias.shape}, expected "
                       f"{(o, i, kh, kw)} / {(o,)} for {name}.")
    params[name] = {"kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=np.float32),
                    "bias": bias.astype(np.float32)}
  return params


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.convert_vgg19", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--input", required=True, help=f"{vgg19.TORCHVISION_FILE} (or an .npz state dict)")
  parser.add_argument("--output", required=True, help="output .npz (set losses.vgg19_weights to it)")
  args = parser.parse_args(argv)
  params = convert_state_dict(read_state_dict(args.input))
  vgg19.save_params(args.output, params)
  vgg19.load_params(args.output)   # checks what was written
  count = sum(v.size for v in vgg19.flatten_params(params).values())
  print(f"Wrote {args.output}: VGG19 features, 16 convs, {count} values. "
        f"Use it with --config.losses.vgg19_weights={args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
