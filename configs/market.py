"""Market-1501 at 128x64 (paper settings). `configs/market.py:runlocal` shrinks it for a laptop."""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.get_base_config()
  c.data.name = "market"
  c.data.root = "data/market1501"
  c.data.image_size = (128, 64)
  c.model.disc_downsampling = 3
  c.losses.affine_kernel_sizes = (0, 3, 0)   # GFLA: 3x3 at H/4 for Market
  c.train.batch_size = 8
  if arg.runlocal:
    common.runlocal(c)
  return c
