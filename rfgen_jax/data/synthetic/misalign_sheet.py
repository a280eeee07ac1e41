"""Contact sheet of the per-camera misalignment of the synthetic people (`misalign.py`).

    python -m rfgen_jax.data.synthetic.misalign_sheet --out docs/images/synthetic_misalign.png --identities 2
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np
from PIL import Image

from rfgen_jax.data import keypoints as kp_lib
from rfgen_jax.data.synthetic import people
from rfgen_jax.data.synthetic.misalign import MODERATE, Misalign, apply, camera_offsets, parse
from rfgen_jax.data.synthetic.people_body import NUM_CAMERAS
from rfgen_jax.data.synthetic.people_render import make_backgrounds, render
from rfgen_jax.visualize import hstack_with_separator


# -------------------------------------------------------------------------------------------- contact sheet
def contact_sheet(settings: Misalign = MODERATE, height: int = 128, width: int = 64, seed: int = 0,
                  identities=(1, 2, 3), skeleton: bool = True) -> np.ndarray:
  """One pose of each identity through every camera: per identity a row without and a row with `settings`.

  Returns (rows * height + gaps, NUM_CAMERAS * width + gaps, 3) uint8; keypoints drawn when `skeleton`.
  """
  backgrounds = make_backgrounds(height, width, seed)
  offsets = camera_offsets(seed, settings)
  rows = []
  for pid in identities:
    identity, views = people.plan_identity(seed, pid, 1)
    base = views[0][1]
    for on in (False, True):
      cells = []
      for cam in range(1, NUM_CAMERAS + 1):
        view = dataclasses.replace(base, camera=cam)
        if on:
          view = apply(view, offsets[cam])
        img, kp = render(identity, view, height, width, backgrounds, seed)
        cells.append(kp_lib.draw_skeleton(img, kp) if skeleton else img)
      rows.append(hstack_with_separator(cells, 2))
  gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
  return np.concatenate([r for row in rows for r in (row, gap)][:-1], axis=0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m rfgen_jax.data.synthetic.misalign_sheet",
      description="Contact sheet of the per-camera misalignment: one pose per identity through cameras "
                  "c1..c6, rows without / with the offsets.")
  parser.add_argument("--out", required=True, help="output PNG")
  parser.add_argument("--misalign", default="moderate", help="moderate | scale=F,shift_y=PX,... (see above)")
  parser.add_argument("--height", type=int, default=128)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--identities", type=int, default=3)
  args = parser.parse_args(argv)
  try:
    settings = parse(args.misalign)
  except ValueError as e:
    parser.error(str(e))
  sheet = contact_sheet(settings, args.height, args.width, args.seed, range(1, args.identities + 1))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  Image.fromarray(sheet).save(args.out, optimize=True)
  print(f"Wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}): {settings}.")
  return 0



if __name__ == "__main__":
  sys.exit(main())
