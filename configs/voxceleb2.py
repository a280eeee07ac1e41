"""VoxCeleb2 faces with 68 landmarks at 256x256 (paper Table 3). `:runlocal` shrinks it for a laptop.

Data: extracted frames and per-video `landmarks.csv` files (layout in `rfgen_jax/data/datasets/voxceleb.py`).
Poses: 68 Gaussian landmark heatmaps; sources: other frames of the identity, other videos first.
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.get_base_config()
  c.data.name = "voxceleb2"
  c.data.root = "data/voxceleb2"
  c.data.num_landmarks = 68
  c.data.pose_channels = 68
  c.data.heatmap_sigma = 1.5             # pixels at a 128-high image: 3 px at 256 (landmarks lie close)
  c.data.heatmap_sigma_scaling = "height"
  c.data.augment_target = "same"
  c.data.augment = True                  # the same affine moves a frame and its landmarks
  common.novel_view_settings(c, arg.runlocal)
  return c
