"""The embedded demo: synthetic multi-view people, generated on first use, trained on a CPU in minutes.

The image size, width and step counts are chosen so that `python -m rfgen_jax.main
--config=configs/synthetic.py --workdir=DIR` finishes both stages and the eval in about 15 minutes on a
2-core CPU (measured on the development VM: 8 min 49 s on a fast day, 17 min 26 s on a day when the same
host ran the train step 2x slower; README, "The demo: what it shows"). `:tiny` shrinks it further for tests.
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False)
  c = common.get_base_config()
  c.data.name = "synthetic"
  c.data.root = "data/synthetic"    # generated here if absent
  c.data.image_size = (64, 32)
  c.data.synthetic_train_ids = 200
  c.data.synthetic_test_ids = 20
  c.data.synthetic_views_per_id = 8
  c.data.synthetic_seed = 0
  c.data.num_workers = 0
  # The demo as measured (docs/protocol.md): sigma scaled with the height (3 px at 64 high) and the
  # sources' affine for the target too.
  c.data.heatmap_sigma_scaling = "height"
  c.data.augment_target = "same"
  c.model.width = 0.25
  c.model.disc_downsampling = 2
  c.losses.allow_random_vgg = True   # no ImageNet weights needed for the demo (a warning is logged)
  c.losses.affine_kernel_sizes = (0, 3, 0)
  # The demo's VGG19 has random weights (no download): its deep layers carry no meaning, and the Gram
  # matrices of the 512-channel taps cost 5x the rest of the step on a CPU. Shallow taps only
  # (benchmarks/train_step.py: 0.98 -> 0.20 s per stage-2 step at 64x32, batch 8, on 2 cores).
  c.losses.perceptual_layers = ("relu1_1", "relu2_1", "relu3_1")
  c.losses.style_layers = ("relu2_2",)
  c.train.batch_size = 8
  # A CPU budget of ~15 minutes allows ~2,400 steps; at the paper's lr (1e-4) the generator is still noise
  # after 1,200 end-to-end steps, at 1e-3 people appear (measured: SSIM 0.21 -> 0.28 at step 1,500).
  c.train.learning_rate = 1e-3
  c.train.disc_learning_rate = 1e-4
  # The demo's VGG19 has random weights, so sampling correctness gives the flows almost no signal (issue
  # 29: flows of ~1 px that brought no source closer to the target). The synthetic people's keypoints
  # supervise the flows instead (rfgen_jax/losses/keypoint_flow.py, not in the paper), over a longer
  # warm-up (stage-1 steps cost about half a stage-2 step); docs/architecture.md, "Training the flows".
  c.losses.warmup_keypoint_flow = 1.0
  c.losses.keypoint_flow = 1.0
  c.train.flow_warmup_steps = 600
  c.train.total_steps = 2400
  c.train.log_every_steps = 50
  c.train.sample_every_steps = 400
  c.checkpoint.every_steps = 800
  c.eval.max_tuples = 200
  c.eval.mask_lpips = True
  if not arg.tiny:
    demo_model_switches(c)
  if arg.tiny:       # the tests' model keeps GFLA's protocol defaults (those of market.py, deepfashion.py)
    c.losses.warmup_keypoint_flow = c.losses.keypoint_flow = 0.0
    common.tiny(c)
    c.data.image_size = (32, 32)
    c.data.synthetic_train_ids = 6
    c.data.synthetic_test_ids = 3
    c.data.synthetic_views_per_id = 4
  return c


def demo_model_switches(c) -> None:
  """The demo's model and loss switches: the earlier rfgen_jax choices, not GFLA's (docs/protocol.md).

  GFLA's init (orthogonal, gain 0.02), skip and output convs without norm, sigmoid-then-softmax attention,
  VGG19 fed [-1, 1] images and flow-loss weights split over the levels were made for ImageNet VGG19
  weights and full-size data. With the demo's random-weight VGG19, quarter width and 2,400 steps they
  score lower; measured on 2026-12-03/04, the quick-start command, K = 3 SSIM 0.2882 with GFLA's switches
  against 0.3496 with these (README, "The demo: what it shows").
  """
  c.model.init = "lecun"
  c.model.attention_activation = "none"
  c.model.jump_norm = True
  c.model.output_norm = True
  c.losses.vgg_input = "imagenet"
  c.losses.correctness_level_weights = (1.0, 1.0, 1.0)
