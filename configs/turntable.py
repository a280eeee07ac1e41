"""The synthetic turntable (camera poses without a download), generated on first use; CPU-sized.

`python -m rfgen_jax.data.synthetic.turntable` writes it in M2N's object format
(`rfgen_jax/data/synthetic/turntable.py`);
`ensure_dataset` generates it at `data.root` when absent (about 30 s at 64x64). Poses: one-hot azimuth
(36) + elevation (3), as ShapeNet chairs; sources: other azimuths of the object at the target's elevation.
The step counts are chosen so that `python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR`
trains both stages and evaluates K = 1, 2, 4 in about 10 minutes on a 2-core CPU (stage 2 at 64x64,
batch 8, width 0.25: about 0.5 s per step). `:tiny` shrinks it for tests.
"""
from configs import common
from configs import shapenet_chair


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False)
  c = common.get_base_config()
  c.data.name = "turntable"
  c.data.root = "data/turntable"          # generated here if absent
  c.data.image_size = (64, 64)
  shapenet_chair.add_camera_keys(c, "one_hot_view")
  c.data.pose_channels = 36 + 3          # num_azimuths + num_elevations
  c.data.turntable_train_objects = 24
  c.data.turntable_test_objects = 6
  c.data.turntable_seed = 0
  c.data.num_test_tuples = 200           # seeded targets spread over all test objects and elevations
  c.data.num_workers = 0
  c.data.num_sources = 2
  c.model.width = 0.25
  c.model.disc_downsampling = 2
  c.losses.allow_random_vgg = True
  c.losses.affine_kernel_sizes = (0, 3, 0)
  c.losses.perceptual_layers = ("relu1_1", "relu2_1", "relu3_1")
  c.losses.style_layers = ("relu2_2",)
  c.train.batch_size = 8
  c.train.flow_warmup_steps = 200
  c.train.total_steps = 1200
  c.train.log_every_steps = 50
  c.train.sample_every_steps = 500
  c.checkpoint.every_steps = 500
  c.eval.num_sources = (1, 2, 4)
  c.eval.max_tuples = 200
  c.eval.mask_lpips = False
  if arg.tiny:
    common.tiny(c)
    c.data.image_size = (32, 32)
    c.data.turntable_train_objects = 3
    c.data.turntable_test_objects = 2
    c.data.num_test_tuples = 0
  return c
