"""The ablation study (paper Table 4) on misaligned synthetic people: `rfgen_jax/experiments/ablation.py`.

    python -m rfgen_jax.experiments.ablation --config=configs/ablation.py --workdir=DIR

The demo's setting (configs/synthetic.py: 64x32, width 0.25, batch 8, random-weight VGG19 with shallow
taps, lr 1e-3) with every camera misaligned (`rfgen_jax/data/synthetic/misalign.py`, MODERATE: camera
distance +-20%, height in frame +-10 px and sideways +-6 px at 128 high, roll +-8 degrees, colour +-12%,
brightness +-25%), shorter so that the 7 runs (5 variants, and a second seed of Full and Baseline) fit
about 90 minutes of a 2-core CPU (docs/ablation.md: how the steps were chosen). `:tiny` is the tests'
study (a few steps of a tiny model on a tiny set).
"""
from configs import common
from configs import synthetic
from rfgen_jax.data.synthetic import misalign


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False)
  c = synthetic.get_config("tiny" if arg.tiny else None)
  # The study was run (docs/ablation.md) with GFLA's model and loss defaults, not the demo's switches.
  base = common.get_base_config()
  for section, key in (("model", "init"), ("model", "attention_activation"), ("model", "jump_norm"),
                       ("model", "output_norm"), ("losses", "vgg_input"),
                       ("losses", "correctness_level_weights")):
    c[section][key] = base[section][key]
  c.data.synthetic_misalign.update(misalign.MODERATE.as_dict())
  c.eval.num_sources = (1, 2, 3)
  if not arg.tiny:
    c.train.flow_warmup_steps = 200
    c.train.total_steps = 1000
    c.train.log_every_steps = 25
    c.train.sample_every_steps = 500
    c.checkpoint.every_steps = 250    # an interrupted run loses at most 250 steps
    c.checkpoint.max_to_keep = 1
    c.eval.max_tuples = 200
  else:
    c.checkpoint.async_save = False

  # ---------------------------------------------------------------- study (read by the runner only)
  c.study = common.ml_collections.ConfigDict()
  c.study.variants = ("full", "wo_res", "wo_occ", "wo_attn", "baseline")
  c.study.seeds = (0, 1)
  c.study.seed_variants = ("full", "baseline")   # trained at every seed: the seed-to-seed spread
  c.study.parallel = 1                # runs side by side (each on its share of the devices)
  c.study.data_in_workdir = True      # data set and its prepared copy under --workdir (data/, tfds/)
  c.study.metrics = ("fid", "lpips", "mask_lpips", "ssim", "ssim_person", "l1_person")   # when computed
  c.study.plot_metrics = ("ssim_person", "l1_person", "lpips")
  return c
