"""Side-by-side CPU benchmark: rfgen_jax against PyTorch twins of the same architectures.

  python -m benchmarks.torch_twin                                    # Market-1501 width 1 + the demo
  python -m benchmarks.torch_twin --configs=configs/market.py --parts=flow --repeats=5
  python -m benchmarks.torch_twin --conv_impl=xla                    # ours with plain XLA convolutions

Parts (each forward + backward, timed in one process, ours and torch alternating, medians):
- `flow`: the flow estimator alone on B*K source images (GFLA's PoseFlowNet layout, the widths of
  `model.flow_encoder_channels`), gradient of a sum over every head w.r.t. the parameters;
- `generator`: the whole generator with K sources (estimator, encoders, RF blocks with their warps,
  decoder), gradient of a sum over the image and the flows w.r.t. the parameters;
- `step`: one full stage-2 training step: generator forward, VGG19 taps of the fake, target and
  sources, L1 + perceptual + style + sampling correctness + affine regularisation + adversarial
  losses, generator backward, discriminator (spectral norm) forward/backward on real and fake, and
  both Adam updates. Ours is `rfgen_jax.train.steps.full_step` under `jax.jit`.

The torch twins (`benchmarks/torch_twin_models.py`) are written for this benchmark from our modules
(same layers, widths, norms, activations, paddings, alignments and losses; `grid_sample(align_corners=True)`
for the warp), with random weights: speed does not depend on the values. Inputs are random of the config's shapes.
torch runs with as many threads as XLA's CPU client (all cores), or both single-threaded (`--threads=1`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.torch_twin_models import TFlowEstimator  # pylint: disable=g-import-not-at-top
from benchmarks.torch_twin_models import TGenerator  # pylint: disable=g-import-not-at-top
from benchmarks.torch_twin_models import TorchStage2  # pylint: disable=g-import-not-at-top

# The rfgen_jax imports are inside the functions: jax must not be imported before `main` has set
# XLA_FLAGS for `--threads=1`.


# =============================================================================== ours
def _config(spec, conv_impl):
  from rfgen_jax import config_utils
  config = config_utils.load_config(spec)
  config.losses.allow_random_vgg = True
  config.losses.vgg19_weights = None
  config.model.conv_impl = conv_impl
  return config


def _inputs(config, rng):
  h, w = config.data.image_size
  b, k, p = config.train.batch_size, config.data.num_sources, config.data.pose_channels
  return (rng.uniform(-1, 1, (b, k, h, w, 3)).astype(np.float32),
          rng.uniform(0, 1, (b, k, h, w, p)).astype(np.float32),
          rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32),
          rng.uniform(0, 1, (b, h, w, p)).astype(np.float32))


def _nchw(a):
  a = torch.from_numpy(np.ascontiguousarray(a))
  return a.permute(0, 1, 4, 2, 3).contiguous() if a.ndim == 5 else a.permute(0, 3, 1, 2).contiguous()


def make_parts(config, parts):
  """{part: (ours() -> blocks until done, torch() -> done)}."""
  import jax
  import jax.numpy as jnp
  from rfgen_jax import models
  from rfgen_jax.models import layers
  from rfgen_jax.models.flow_estimator import FlowEstimator
  from rfgen_jax.nets import vgg19
  from rfgen_jax.train import steps
  from rfgen_jax.runtime import sharding, state as state_lib

  rng = np.random.default_rng(0)
  src, sp, tgt, tp = _inputs(config, rng)
  b, k = src.shape[:2]
  m = config.model
  gen = models.build_generator(config)
  out = {}
  if "flow" in parts:
    ch = models.model_channels(config)
    est = FlowEstimator(ch["flow_encoder"], tuple(m.levels), jump_norm=m.jump_norm,
                        options=layers.Options(init=m.init, conv_impl=m.conv_impl))
    fi = src.reshape((b * k,) + src.shape[2:]), sp.reshape((b * k,) + sp.shape[2:]), \
        np.repeat(tp, k, axis=0)
    params = jax.jit(est.init)(jax.random.key(0, impl="rbg"), *fi)["params"]

    def est_loss(p, *a):
      o = est.apply({"params": p}, *a)
      return sum(jnp.sum(x) for v in o.values() for x in v if x is not None)

    est_grad = jax.jit(jax.grad(est_loss))
    fi_j = tuple(jnp.asarray(a) for a in fi)
    tnet = TFlowEstimator(3 + 2 * config.data.pose_channels, ch["flow_encoder"], tuple(m.levels),
                          m.jump_norm)
    fi_t = tuple(torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()
                 for a in fi)

    def torch_flow():
      tnet.zero_grad(set_to_none=True)
      sum(x.sum() for lvl in tnet(*fi_t) for x in lvl).backward()

    out["flow"] = (lambda: jax.block_until_ready(est_grad(params, *fi_j)), torch_flow)
  if "generator" in parts:
    gi = tuple(jnp.asarray(a) for a in (src, sp, tp))
    variables = jax.jit(gen.init)(jax.random.key(0, impl="rbg"), *gi)

    def gen_loss(p, *a):
      o = gen.apply({"params": p}, *a)
      return jnp.sum(o["image"]) + sum(jnp.sum(f) for f in o["flows"])

    gen_grad = jax.jit(jax.grad(gen_loss))
    tgen = TGenerator(config)
    gi_t = (_nchw(src), _nchw(sp), _nchw(tp))

    def torch_gen():
      tgen.zero_grad(set_to_none=True)
      image, flows = tgen(*gi_t)
      (image.sum() + sum(f.sum() for f in flows)).backward()

    out["generator"] = (lambda: jax.block_until_ready(gen_grad(variables["params"], *gi)), torch_gen)
  if "step" in parts:
    config_utils_validate(config)
    mesh = sharding.make_mesh(config.train.mesh_shape)
    rep = sharding.replicated(mesh)
    disc = models.build_discriminator(config)
    vgg, vgg_params = vgg19.load_vgg19(config)
    vgg_params = jax.device_put(vgg_params, rep)
    state_sharding = jax.tree.map(lambda _: rep, state_lib.abstract_state(config, gen, disc))
    holder = {"state": state_lib.create_state(config, jax.random.PRNGKey(0), gen, disc, state_sharding)}
    batch = sharding.to_global_batch({"source_images": src, "source_poses": sp, "target_image": tgt,
                                      "target_pose": tp}, mesh)
    spec = steps.StepSpec.create(config, gen, disc, vgg, mesh)        # as the trainer runs it
    holder["health"] = steps.initial_health(2, spec, holder["state"], batch, vgg_params, rep)
    compiled = steps.make_train_step(2, spec, holder["state"], batch, vgg_params, holder["health"],
                                  state_sharding=state_sharding, batch_sharding=sharding.data_sharded(mesh),
                                  replicated_sharding=rep)

    def ours_step():    # the trainer's step: with the on-device finiteness record (state and it donated)
      holder["state"], metrics, holder["health"] = compiled(holder["state"], batch, vgg_params,
                                                            holder["health"])
      jax.block_until_ready(metrics)

    tstep = TorchStage2(config)
    tb = (_nchw(src), _nchw(sp), _nchw(tgt), _nchw(tp))
    out["step"] = (ours_step, lambda: tstep(tb))
  return out


def config_utils_validate(config):
  import jax
  from rfgen_jax import config_utils
  config_utils.validate_config(config, num_devices=jax.device_count())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="configs/market.py,configs/synthetic.py")
  parser.add_argument("--parts", default="flow,generator,step")
  parser.add_argument("--repeats", type=int, default=7, help="timed calls per side and part")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--conv_impl", default="auto", help="model.conv_impl for ours: auto | xla")
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch threads; 1 also makes XLA single-threaded (robust on a loaded machine)")
  args = parser.parse_args(argv)
  if args.threads == 1:   # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()
  import jax
  torch.set_num_threads(args.threads)
  parts = args.parts.split(",")
  print(f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; model.conv_impl={args.conv_impl}; median (min) ms per call over "
        f"{args.repeats} alternating calls; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
  print("| config | part | batch x K | ours ms | torch ms | ours / torch |")
  print("| --- | --- | --- | --- | --- | --- |", flush=True)
  for spec in args.configs.split(","):
    config = _config(spec, args.conv_impl)
    for part, (ours, theirs) in make_parts(config, parts).items():
      for _ in range(args.warmup):
        ours()
        theirs()
      t_ours, t_torch = [], []
      for _ in range(args.repeats):
        for fn, times in ((ours, t_ours), (theirs, t_torch)):
          start = time.perf_counter()
          fn()
          times.append((time.perf_counter() - start) * 1e3)
      mo, mt = statistics.median(t_ours), statistics.median(t_torch)
      print(f"| {spec} | {part} | {config.train.batch_size} x {config.data.num_sources} | "
            f"{mo:.0f} ({min(t_ours):.0f}) | {mt:.0f} ({min(t_torch):.0f}) | {mo / mt:.2f} |",
            flush=True)
  print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
