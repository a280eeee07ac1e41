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
    c.model.width = 0.25
    c.train.batch_size = 2
    c.train.flow_warmup_steps = 10
    c.train.total_steps = 20
    c.train.log_every_steps = 5
    c.train.sample_every_steps = 10
    c.checkpoint.every_steps = 10
    c.data.num_workers = 0
    c.eval.max_tuples = 16
  return c
