"""The flagship: synthetic people at 128x64 (Market-1501's size) with misaligned sources, K = 1..4.

    nice -n 19 python -m rfgen_jax.main --config=configs/people_128x64.py --workdir=runs/people_128x64

The demo's recipe (`configs/synthetic.py`: its model switches, shallow VGG19 taps, lr 1e-3 and the keypoint
flow loss that makes the flows align without ImageNet VGG19 weights, docs/architecture.md "Training the
flows"; here in its dense form) at twice the demo's size, on people whose six cameras are each offset in
distance, height, roll, colour and brightness (`rfgen_jax/data/synthetic/misalign.py`, MODERATE: the sources the paper's method is
for), with twice the identities. A CPU run: many hours on 2 cores, so it is meant to be resumed (the same
command continues from the workdir's last checkpoint); `eval.every_steps` writes the learning curves
(person SSIM / L1 vs step) to TensorBoard. The released model (`python -m rfgen_jax.tools.pretrained`)
comes from this config. `:tiny` shrinks it for tests.
"""
from configs import common
from configs import synthetic
from rfgen_jax.data.synthetic import misalign


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False)
  c = synthetic.get_config("tiny" if arg.tiny else None)
  c.data.root = "data/synthetic_128x64_misaligned"    # generated here if absent (~2 min)
  c.data.synthetic_misalign.update(misalign.MODERATE.as_dict())
  c.eval.num_sources = (1, 2, 3, 4)
  if arg.tiny:
    c.data.root = "data/synthetic_tiny_misaligned"
    return c
  c.data.image_size = (128, 64)
  c.data.synthetic_train_ids = 400
  c.data.synthetic_test_ids = 40
  c.data.synthetic_views_per_id = 8
  # The keypoint flow loss at every position near the person (the spline through the correspondences)
  # instead of at the correspondences only: after 600 stage-1 steps of the demo's config (145 test tuples,
  # K = 2) the finest flow reaches 58% of the keypoint reference's gain against 50% (docs/architecture.md).
  c.losses.keypoint_flow_form = "dense"
  c.train.flow_warmup_steps = 1500
  c.train.total_steps = 30000
  c.train.log_every_steps = 100
  c.train.sample_every_steps = 1000
  c.checkpoint.every_steps = 500
  c.checkpoint.max_to_keep = 2
  c.eval.every_steps = 2500          # learning curves: person SSIM / L1 on eval.max_tuples test tuples
  c.eval.train_evaluators = ("ssim_psnr_l1",)
  c.eval.max_tuples = 200
  return c
