"""Your own images: a folder per split and a keypoint CSV per split (docs/own_dataset.md).

    python -m rfgen_jax.main --config=configs/folder.py --workdir=DIR --config.data.root=PATH

Layout and identity rules: `rfgen_jax/data/datasets/image_folder.py`. Defaults are Market-1501's
(128x64, 18 OpenPose keypoints, GFLA's augmentation); set `data.image_size` to your images' aspect.
`:runlocal` shrinks the run for a laptop; `:tiny` to a 4-step smoke test at 32x32 with a random-weight
VGG19 (the worked example of docs/own_dataset.md).
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False, tiny=False)
  c = common.get_base_config()
  c.data.name = "folder"
  c.data.root = "data/my_images"
  c.data.image_size = (128, 64)
  c.data.folder_annotation = "annotations-{split}.csv"
  c.data.folder_identity = "prefix"
  c.data.folder_identity_separator = "_"
  c.model.disc_downsampling = 3
  c.losses.affine_kernel_sizes = (0, 3, 0)
  if arg.runlocal:
    common.runlocal(c)
  if arg.tiny:
    common.tiny(c)
    c.data.image_size = (32, 32)
    c.data.num_workers = 0
    c.model.disc_downsampling = 2
    c.losses.allow_random_vgg = True            # no ImageNet weights needed (a warning is logged)
    c.losses.perceptual_layers = ("relu1_1", "relu2_1", "relu3_1")
    c.losses.style_layers = ("relu2_2",)
  return c
