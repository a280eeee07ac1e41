"""People from real footage: the Market-1501-layout set that `rfgen_jax.tools.video_to_dataset` builds
from OpenCV's sample video `vtest.avi` (Debian's opencv-doc), at a size a 2-core CPU trains in ~20 min.

    ~/.venvs/rfgen-keypoints/bin/python -m rfgen_jax.tools.video_to_dataset \
        --video /usr/share/doc/opencv-doc/examples/data/vtest.avi --out data/vtest --frame_step 2 --crop_every 1
    python -m rfgen_jax.main --config=configs/vtest.py --workdir=runs/vtest

configs/market.py's data and losses at 64x32 (the crops are 128x64 files, resized by the pipeline) and
the CPU training settings of configs/synthetic.py: width 0.25, learning rates x10, shallow VGG taps.
Without ImageNet VGG19 weights (`--config.losses.vgg19_weights=vgg19.npz`, see README) the losses use
a random-weight VGG19 (`allow_random_vgg`, a warning in the log), as the demo does.
`:steps=N` sets the number of steps (a tenth of them flow warm-up); the default, 240, is the README's run,
which took ~20 minutes on the 2-core machine while other jobs loaded it (load average ~17).
"""
from configs import common
from configs import market


def get_config(arg=None):
  arg = common.parse_arg(arg, steps=240)
  c = market.get_config()
  c.data.root = "data/vtest"
  c.data.image_size = (64, 32)
  c.data.num_workers = 0
  c.model.width = 0.25
  c.model.disc_downsampling = 2
  c.losses.allow_random_vgg = True
  c.losses.perceptual_layers = ("relu1_1", "relu2_1", "relu3_1")
  c.losses.style_layers = ("relu2_2",)
  c.train.learning_rate = 1e-3
  c.train.disc_learning_rate = 1e-4
  c.train.total_steps = arg.steps
  c.train.flow_warmup_steps = max(1, arg.steps // 10)
  c.train.log_every_steps = 50
  c.train.sample_every_steps = max(1, arg.steps // 4)
  c.checkpoint.every_steps = max(1, arg.steps // 3)
  c.eval.max_tuples = 200
  return c
