"""DeepFashion In-shop as GFLA trains and scores it: 256x256, keypoints in the 256x176 frame, no augmentation.

`:size=256x176` gives PATN's / PISE's image size; `:runlocal` shrinks the run for a laptop. The choices
and why: docs/protocol.md.
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False, size="256x256")
  c = common.get_base_config()
  c.data.name = "deepfashion"
  c.data.root = "data/deepfashion"
  sizes = {"256x256": (256, 256), "256x176": (256, 176)}
  if arg.size not in sizes:
    raise ValueError(f"Unknown size {arg.size!r} in configs/deepfashion.py:size=...; accepted: {sorted(sizes)}.")
  c.data.image_size = sizes[arg.size]
  c.data.keypoint_frame = (256, 176)   # GFLA's annotations (old_size), whatever the files' size
  c.data.augment = False               # GFLA augments Market-1501 only
  c.model.disc_downsampling = 4
  c.losses.affine_kernel_sizes = (3, 5, 0)   # GFLA: 3x3 at H/8, 5x5 at H/4 for DeepFashion
  c.losses.correctness_level_weights = (2 / 3, 2 / 3, 2 / 3)   # GFLA's total: H/8 and H/4, 1 each
  c.train.batch_size = 5
  c.eval.mask_lpips = False
  if arg.runlocal:
    common.runlocal(c)
  return c
