"""DeepFashion In-shop at 256x176 (paper settings). `:runlocal` shrinks it for a laptop."""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.get_base_config()
  c.data.name = "deepfashion"
  c.data.root = "data/deepfashion"
  c.data.image_size = (256, 176)
  c.model.disc_downsampling = 4
  c.losses.affine_kernel_sizes = (3, 5, 0)   # GFLA: 3x3 at H/8, 5x5 at H/4 for DeepFashion
  c.losses.correctness_level_weights = (2 / 3, 2 / 3, 2 / 3)   # GFLA's total: H/8 and H/4, 1 each
  c.train.batch_size = 5
  c.eval.mask_lpips = False
  if arg.runlocal:
    common.runlocal(c)
  return c
