"""The two training steps (docs/design.md, "## 5. Training") as pure functions of (state, batch).

* `flow_step`: stage 1, the flow warm-up. Only `params["flow_estimator"]` is updated, with
  L_flow = λ_cor L_cor + λ_reg L_reg on the estimator's flows.
* `full_step`: stage 2, end to end. Generator loss L_flow + λ_l1 L1 + λ_per L_per + λ_sty L_sty +
  λ_adv L_adv(G), discriminator loss L_adv(D); both gradients and both updates in one step.

L_flow is always taken on the estimator's flows (`initial_flows`): the residual flow is trained by the
image losses through the refined warp, as the paper's F is the module the flow losses constrain.
The trainer runs both through `make_train_step` (the end of this file): `stage_step` (jitted with a
hashable `StepSpec` static, so a process traces each stage once per config) plus the finiteness record,
with shardings and a donated state. With `axis_name` (set by `per_device_with_fixed_order_mean` when
`train.grad_reduction = "fixed_order"`, the default) a step runs per device inside `jax.shard_map` and
averages its gradients and metrics over the devices in a fixed order (`rfgen_jax/runtime/reduction.py`);
without it, on global arrays, XLA's all-reduce does.
"""
from __future__ import annotations

import dataclasses
import functools

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from rfgen_jax import losses as losses_lib
from rfgen_jax.ops import resize_flow
from rfgen_jax.runtime import reduction, sharding
from rfgen_jax.runtime.state import TrainState, make_optimizers, program_config, update_ema


# What the steps read of a batch (NHWC float32 in [-1, 1] images, pose maps): the trainer puts only these
# on the devices (the pipeline's keypoints and `valid` flags stay on the host).
BATCH_KEYS = ("source_images", "source_poses", "target_image", "target_pose")
# Added when the keypoint-correspondence flow loss is on (rfgen_jax/losses/keypoint_flow.py).
KEYPOINT_KEYS = ("source_keypoints", "target_keypoints")


def uses_keypoint_flow(config) -> bool:
  """Whether either stage weights the keypoint-correspondence flow loss."""
  return bool(config.losses.warmup_keypoint_flow or config.losses.keypoint_flow)


def batch_keys(config) -> tuple[str, ...]:
  """What the steps of `config` read of a batch: BATCH_KEYS, plus the keypoints when the
  keypoint-correspondence flow loss is on."""
  return BATCH_KEYS + (KEYPOINT_KEYS if uses_keypoint_flow(config) else ())


def vgg_taps(config) -> tuple[str, ...]:
  """Every VGG19 tap the losses read."""
  c = config.losses
  return tuple(sorted(set(c.correctness_layers) | set(c.perceptual_layers) | set(c.style_layers)))


def _merge_k(x):
  return x.reshape((-1,) + x.shape[2:])


def _split_k(x, k):
  return x.reshape((-1, k) + x.shape[1:])


def keypoint_flow_losses(config, flows, batch, levels):
  """The keypoint-correspondence flow loss (rfgen_jax/losses/keypoint_flow.py; its points or its dense form,
  losses.keypoint_flow_form), weighted per fusion level
  with losses.correctness_level_weights and summed; 0 when the loss is off (no keypoints in the batch).

  Args: flows per level coarse to fine (B, K, h, w, 2), the batch (with `*_keypoints`), and the levels'
  downsampling factors (model.levels)."""
  if not uses_keypoint_flow(config):
    return jnp.zeros((), jnp.float32)
  total = jnp.zeros((), jnp.float32)
  fractions = tuple(config.losses.keypoint_flow_limb_fractions)
  for flow, level, weight in zip(flows, levels, config.losses.correctness_level_weights):
    if config.losses.keypoint_flow_form == "dense":
      term = losses_lib.dense_keypoint_flow_loss(flow, batch["source_keypoints"], batch["target_keypoints"],
                                                 int(level), int(config.data.image_size[0]), fractions)
    else:
      term = losses_lib.keypoint_flow_loss(flow, batch["source_keypoints"], batch["target_keypoints"],
                                           int(level), fractions)
    total = total + float(weight) * term
  return total


def flow_losses(config, flows, source_feats, target_feats):
  """Sampling correctness and affine regularisation, weighted per fusion level and summed.

  L_cor = sum_l w_cor[l] * mean_k L_cor(level l, source k); L_reg = sum_l w_reg[l] * L_reg(level l)
  over the levels whose affine window is > 0, with w_cor = losses.correctness_level_weights and
  w_reg = losses.regularization_level_weights (aligned with model.levels; GFLA's totals by default).

  Args:
    config: experiment config (reads losses.correctness_layers, losses.affine_kernel_sizes,
      losses.correctness_level_weights, losses.regularization_level_weights).
    flows: per level, coarse to fine, (B, K, h, w, 2) flows in pixels of the level.
    source_feats: VGG taps of the sources, {tap: (B, K, h', w', C)}.
    target_feats: VGG taps of the target, {tap: (B, h', w', C)}.
  Returns:
    (L_cor, L_reg) scalars.
  """
  c = config.losses
  per_level = (tuple(c.correctness_layers), tuple(c.affine_kernel_sizes),
               tuple(c.correctness_level_weights), tuple(c.regularization_level_weights))
  if any(len(v) != len(flows) for v in per_level):
    raise ValueError(
        "losses.correctness_layers, affine_kernel_sizes, correctness_level_weights and "
        f"regularization_level_weights need one entry per fusion level ({len(flows)}), got "
        f"{per_level}.")
  cor = jnp.zeros((), jnp.float32)
  reg = jnp.zeros((), jnp.float32)
  for flow, tap, kernel, w_cor, w_reg in zip(flows, *per_level):
    flow = flow.astype(jnp.float32)
    k = flow.shape[1]
    if w_cor:
      src = source_feats[tap].astype(jnp.float32)
      tgt = target_feats[tap].astype(jnp.float32)
      feat_hw = tgt.shape[1:3]
      flow_at_feat = flow
      if flow.shape[2:4] != feat_hw:   # a level whose resolution differs from its VGG tap
        flow_at_feat = _split_k(resize_flow(_merge_k(flow), feat_hw), k)
      correctness = functools.partial(losses_lib.sampling_correctness, sampling=c.correctness_sampling,
                                      kernel_size=c.correctness_sampling_kernel,
                                      sigma=c.correctness_sampling_sigma)
      per_source = jax.vmap(correctness, in_axes=(1, None, 1))(src, tgt, flow_at_feat)
      cor = cor + float(w_cor) * jnp.mean(per_source)
    if kernel and w_reg:
      reg = reg + float(w_reg) * losses_lib.affine_regularization(_merge_k(flow), int(kernel))
  return cor, reg


def _vgg_features(vgg, vgg_params, images, taps):
  return vgg.apply({"params": vgg_params}, images, taps=taps)


def _source_and_target_feats(vgg, vgg_params, batch, taps):
  k = batch["source_images"].shape[1]
  src = _vgg_features(vgg, vgg_params, _merge_k(batch["source_images"]), taps)
  src = {name: _split_k(v, k) for name, v in src.items()}
  tgt = _vgg_features(vgg, vgg_params, batch["target_image"], taps)
  return jax.lax.stop_gradient(src), jax.lax.stop_gradient(tgt)


def _device_mean(tree, axis_name):
  """`tree` averaged over `axis_name` in a fixed order, or `tree` itself without an axis (global arrays)."""
  return tree if axis_name is None else reduction.fixed_order_mean(tree, axis_name)


def flow_step(state: TrainState, batch: dict, vgg_params, *, config, generator, vgg, axis_name=None):
  """Stage 1: one Adam step on the flow estimator with L_flow. Returns (new_state, metrics).

  `axis_name`: the mapped mesh axis the batch is split over when called per device
  (`per_device_with_fixed_order_mean`); the gradients and metrics are then averaged over it before the
  update.
  """
  flow_tx, _, _ = make_optimizers(config)
  c = config.losses
  src_feats, tgt_feats = _source_and_target_feats(vgg, vgg_params, batch, tuple(c.correctness_layers))

  def loss_fn(flow_params):
    params = {**state.gen_params, "flow_estimator": flow_params}
    est = generator.apply({"params": params}, batch["source_images"], batch["source_poses"],
                          batch["target_pose"], method="estimate_flows")
    cor, reg = flow_losses(config, est["flows"], src_feats, tgt_feats)
    kp = keypoint_flow_losses(config, est["flows"], batch, generator.levels)
    total = c.warmup_correctness * cor + c.warmup_regularization * reg + c.warmup_keypoint_flow * kp
    return total, {"loss/correctness": cor, "loss/regularization": reg, "loss/keypoint_flow": kp,
                   "loss/flow_total": total}

  flow_params = state.gen_params["flow_estimator"]
  grads, metrics = _device_mean(jax.grad(loss_fn, has_aux=True)(flow_params), axis_name)
  updates, flow_opt_state = flow_tx.update(grads, state.flow_opt_state, flow_params)
  new_gen = {**state.gen_params, "flow_estimator": optax.apply_updates(flow_params, updates)}
  metrics["grad_norm/flow_estimator"] = optax.tree.norm(grads)
  ema = update_ema(config, state.ema_params, new_gen, state.step)
  return state.replace(step=state.step + 1, gen_params=new_gen, ema_params=ema,
                       flow_opt_state=flow_opt_state), metrics


def full_step(state: TrainState, batch: dict, vgg_params, *, config, generator, discriminator, vgg,
              axis_name=None):
  """Stage 2: generator and discriminator updated together. Returns (new_state, metrics).

  `axis_name`: as in `flow_step`. The discriminator's spectral-norm vectors depend on its weights only,
  so they are the same on every device without averaging.
  """
  _, gen_tx, disc_tx = make_optimizers(config)
  c = config.losses
  taps = vgg_taps(config)
  src_feats, tgt_feats = _source_and_target_feats(vgg, vgg_params, batch, taps)
  target = batch["target_image"]

  def disc_apply(params, stats, images, update_stats):
    out, mutated = discriminator.apply({"params": params, "batch_stats": stats}, images,
                                       update_stats=update_stats, mutable=["batch_stats"])
    return out.astype(jnp.float32), mutated.get("batch_stats", stats)

  def gen_loss_fn(gen_params):
    out = generator.apply({"params": gen_params}, batch["source_images"], batch["source_poses"],
                          batch["target_pose"])
    fake = out["image"].astype(jnp.float32)
    fake_feats = _vgg_features(vgg, vgg_params, fake, taps)
    l1 = losses_lib.l1_loss(fake, target)
    per = losses_lib.perceptual_loss(fake_feats, tgt_feats, tuple(c.perceptual_layers))
    sty = losses_lib.style_loss(fake_feats, tgt_feats, tuple(c.style_layers))
    cor, reg = flow_losses(config, out["initial_flows"], src_feats, tgt_feats)
    kp = keypoint_flow_losses(config, out["initial_flows"], batch, generator.levels)
    fake_logits, _ = disc_apply(state.disc_params, state.disc_stats, fake, False)
    adv = losses_lib.generator_gan_loss(fake_logits, c.gan)
    total = (c.l1 * l1 + c.perceptual * per + c.style * sty + c.correctness * cor
             + c.regularization * reg + c.keypoint_flow * kp + c.adversarial * adv)
    metrics = {"loss/l1": l1, "loss/perceptual": per, "loss/style": sty, "loss/correctness": cor,
               "loss/regularization": reg, "loss/keypoint_flow": kp, "loss/gen_adversarial": adv,
               "loss/gen_total": total}
    return total, (metrics, fake)

  (_, (metrics, fake)), gen_grads = jax.value_and_grad(gen_loss_fn, has_aux=True)(state.gen_params)
  fake = jax.lax.stop_gradient(fake)

  def disc_loss_fn(disc_params):
    real_logits, stats = disc_apply(disc_params, state.disc_stats, target, True)
    fake_logits, stats = disc_apply(disc_params, stats, fake, True)
    loss = losses_lib.discriminator_gan_loss(real_logits, fake_logits, c.gan)
    return loss, (stats, jnp.mean(real_logits), jnp.mean(fake_logits))

  (disc_loss, (disc_stats, real_mean, fake_mean)), disc_grads = jax.value_and_grad(
      disc_loss_fn, has_aux=True)(state.disc_params)
  metrics.update({"loss/disc": disc_loss, "disc/real_logit": real_mean, "disc/fake_logit": fake_mean})
  gen_grads, disc_grads, metrics = _device_mean((gen_grads, disc_grads, metrics), axis_name)
  gen_updates, gen_opt_state = gen_tx.update(gen_grads, state.gen_opt_state, state.gen_params)
  disc_updates, disc_opt_state = disc_tx.update(disc_grads, state.disc_opt_state, state.disc_params)
  metrics.update({
      "grad_norm/generator": optax.tree.norm(gen_grads),
      "grad_norm/discriminator": optax.tree.norm(disc_grads),
  })
  new_gen = optax.apply_updates(state.gen_params, gen_updates)
  new_state = state.replace(
      step=state.step + 1,
      gen_params=new_gen,
      ema_params=update_ema(config, state.ema_params, new_gen, state.step),
      disc_params=optax.apply_updates(state.disc_params, disc_updates),
      disc_stats=disc_stats, gen_opt_state=gen_opt_state, disc_opt_state=disc_opt_state)
  return new_state, metrics


# ----------------------------------------------------------------------------------------- the train step
# make_train_step(stage, spec, ...) is the whole step as the trainer runs it:
#   stage_step (flow_step or full_step, per device with the fixed-order mean)  -> (state, metrics)
#   + record_finiteness                                                         -> (state, metrics, health)
#   jitted with explicit shardings, the state and the record donated, compiled ahead of time.


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """What a run's train steps are built from besides their array arguments: the part of the config they
  read (`rfgen_jax.runtime.state.program_config`), the three networks and the mesh.

  Hashable, so it is a static argument of `stage_step`: JAX traces a stage once per distinct spec in a
  process, and every trainer whose config differs only in what the steps do not read (total steps, data
  root, checkpoint and eval settings) on the same devices reuses that trace, its lowering and its
  executable (a resumed run in the same interpreter, a sweep, the test suite's many short runs) instead of
  tracing the whole model again (seconds per stage). Build it with `StepSpec.create`.
  """
  config: ml_collections.FrozenConfigDict
  generator: nn.Module
  discriminator: nn.Module
  vgg: nn.Module
  mesh: jax.sharding.Mesh

  @classmethod
  def create(cls, config, generator, discriminator, vgg, mesh) -> "StepSpec":
    return cls(program_config(config), generator, discriminator, vgg, mesh)


def per_device_with_fixed_order_mean(step_fn, config, mesh):
  """`step_fn(state, batch, vgg_params)` as configured by `train.grad_reduction` for `mesh`.

  "fixed_order": `jax.shard_map` over the mesh of `step_fn(..., axis_name="data")`, state and VGG
  parameters replicated, the batch split on `data`; the step averages its gradients and metrics over the
  devices in a fixed order (`rfgen_jax/runtime/reduction.py`): the same bits on any process layout.
  "all_reduce": `step_fn` itself, for `jax.jit` on global arrays (XLA places the all-reduce).

  Args:
    step_fn: `flow_step` or `full_step` with its keyword arguments bound, except `axis_name`.
    config: reads train.grad_reduction.
    mesh: the (data, model) mesh of the run (`rfgen_jax/runtime/sharding.py`).
  """
  if reduction.check_grad_reduction(config.train.grad_reduction) == "all_reduce":
    return step_fn
  spec = jax.sharding.PartitionSpec
  # check_vma=False: the all-gather's result is the same on every device, which the varying-axis check
  # cannot infer; the spectral-norm vectors are the same because the weights are.
  return jax.shard_map(functools.partial(step_fn, axis_name=sharding.DATA_AXIS), mesh=mesh,
                       in_specs=(spec(), spec(sharding.DATA_AXIS), spec()), out_specs=(spec(), spec()),
                       check_vma=False)


@functools.partial(jax.jit, static_argnames=("stage", "spec"))
def stage_step(state: TrainState, batch: dict, vgg_params, *, stage: int, spec: StepSpec):
  """One train step of `stage` (1: `flow_step`, 2: `full_step`) on `spec.mesh`:
  `(state, batch, vgg_params) -> (state, metrics)`, per device with the fixed-order mean
  (`per_device_with_fixed_order_mean`).

  Jitted with `stage` and `spec` static at module level, so its trace is kept across trainers: traced once
  per (stage, spec, input shapes) in a process. `initial_health` traces it for its metric shapes and
  `make_train_step` nests it (a call XLA inlines), so the model is traced once for both.
  """
  if stage == 1:
    fn = functools.partial(flow_step, config=spec.config, generator=spec.generator, vgg=spec.vgg)
  elif stage == 2:
    fn = functools.partial(full_step, config=spec.config, generator=spec.generator,
                           discriminator=spec.discriminator, vgg=spec.vgg)
  else:
    raise ValueError(f"stage must be 1 (flow warm-up) or 2 (end to end), got {stage!r}")
  return per_device_with_fixed_order_mean(fn, spec.config, spec.mesh)(state, batch, vgg_params)


def init_health(metrics_shape) -> dict:
  """The on-device finiteness record of one step function: no bad step yet (-1), zeroed metrics.

  Args:
    metrics_shape: the step's metrics (arrays or ShapeDtypeStructs, e.g. from `jax.eval_shape`).
  """
  return {"step": jnp.full((), -1, jnp.int32),
          "metrics": jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)}


def record_finiteness(health: dict, metrics: dict, step) -> dict:
  """The finiteness record after a step: the first step (1-based, = `step + 1`, the state's step after it)
  whose metrics held a NaN or infinity, and those metrics; unchanged once a bad step is recorded.
  Computed on the device, so the loop reads it only when it logs or saves."""
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(m)) for m in jax.tree.leaves(metrics)]))
  first = jnp.logical_and(health["step"] < 0, jnp.logical_not(finite))
  return {"step": jnp.where(first, step + 1, health["step"]),
          "metrics": jax.tree.map(lambda old, new: jnp.where(first, new, old), health["metrics"], metrics)}


def with_health(step_fn):
  """`step_fn(state, batch, vgg_params)` -> `fn(state, batch, vgg_params, health)` that also returns the
  updated finiteness record (`record_finiteness`)."""
  def fn(state, batch, vgg_params, health):
    new_state, metrics = step_fn(state, batch, vgg_params)
    return new_state, metrics, record_finiteness(health, metrics, state.step)
  return fn


def initial_health(stage: int, spec: StepSpec, state, batch, vgg_params, replicated_sharding) -> dict:
  """`init_health` for the metrics of `stage_step` (shapes from `jax.eval_shape`, nothing computed),
  placed with `replicated_sharding` (the replicated one of `spec.mesh`)."""
  shapes = jax.eval_shape(functools.partial(stage_step, stage=stage, spec=spec), state, batch, vgg_params)[1]
  return jax.jit(lambda: init_health(shapes), out_shardings=replicated_sharding)()


def make_train_step(stage: int, spec: StepSpec, state, batch, vgg_params, health, *, state_sharding,
                    batch_sharding, replicated_sharding) -> jax.stages.Compiled:
  """The train step of `stage` as the trainer runs it, compiled for these inputs:
  `(state, batch, vgg_params, health) -> (state, metrics, health)`: `stage_step` then
  `record_finiteness`, with explicit shardings; the state and the health record are donated.

  The VGG19 parameters are an argument (replicated), not a closure, so they are not baked into the
  compiled program as constants. `state`, `batch`, `vgg_params` and `health` may be arrays or
  `jax.ShapeDtypeStruct`s; only their shapes and dtypes are used.
  """
  step = with_health(functools.partial(stage_step, stage=stage, spec=spec))
  jitted = jax.jit(step,
                   in_shardings=(state_sharding, batch_sharding, replicated_sharding, replicated_sharding),
                   out_shardings=(state_sharding, replicated_sharding, replicated_sharding),
                   donate_argnums=(0, 3))
  return jitted.lower(state, batch, vgg_params, health).compile()
