"""The generator G({I_s}, {P_s}, P_t) (docs/design.md, "## 2. Generator").

Per-source parts (flow estimator, source encoder, per-source warps of the RF blocks) are `nn.vmap`ped
over the K axis with shared parameters; nothing else depends on K except the softmax over it, so
parameters initialised with one K run with any other, and permuting the sources leaves the output
unchanged up to float rounding.

Parameter tree (top level): `flow_estimator` (all of F, and only F: stage 1 trains this subtree),
`source_encoder`, `target_encoder`, `rf_blocks_<i>` (one per level coarse to fine; only R_i has
parameters, so these are absent with `model.residual_flow=False`), `decoder` (D_i and the output conv).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from rfgen_jax.errors import BadInputError
from rfgen_jax.models.encoders import Decoder, SourceEncoder, TargetPoseEncoder
from rfgen_jax.models.flow_estimator import FlowEstimator
from rfgen_jax.models import layers
from rfgen_jax.models.layers import INITS, Options, scale_channels
from rfgen_jax.models.conv_forms import CONV_IMPLS
from rfgen_jax.models.rf_block import ATTENTION_ACTIVATIONS, RFBlock

Dtype = Any



def _log2(n: int) -> int:
  return int(n).bit_length() - 1


def _is_pow2(n) -> bool:
  return isinstance(n, int) and n >= 1 and (n & (n - 1)) == 0


def _pyramid(fine_to_coarse: Sequence[int], max_level: int, width: float) -> tuple[int, ...]:
  """Channels at H/2, H/4, ..., H/max_level; the list's last entry repeats past its end."""
  return tuple(scale_channels(fine_to_coarse[min(s, len(fine_to_coarse) - 1)], width)
               for s in range(_log2(max_level)))


def model_channels(config: ml_collections.ConfigDict) -> dict[str, tuple[int, ...]]:
  """The scaled channel counts the generator uses.

  Returns a dict with `flow_encoder` (H/2 ... H/2^n), `source` and `target` (H/2 ... H/max(levels),
  fine to coarse; `model.target_channels` is listed coarse to fine at H/8, H/4, H/2 and read as
  such: its last entry is at H/2), `decoder` (up-block outputs in call order, from H/max(levels)*2
  to H; the full-resolution block keeps the H/2 width) and `residual_hidden` (per level).
  """
  m = config.model
  max_level = max(m.levels)
  source = _pyramid(tuple(m.source_encoder_channels), max_level, m.width)
  target = _pyramid(tuple(reversed(tuple(m.target_channels))), max_level, m.width)
  decoder = tuple(target[s - 2] if s >= 2 else target[0] for s in range(_log2(max_level), 0, -1))
  hidden = tuple(scale_channels(m.residual_hidden, m.width) if m.residual_hidden > 0
                 else source[_log2(level) - 1] for level in m.levels)
  return {
      "flow_encoder": tuple(scale_channels(c, m.width) for c in m.flow_encoder_channels),
      "source": source,
      "target": target,
      "decoder": decoder,
      "residual_hidden": hidden,
  }


def validate_model_config(config: ml_collections.ConfigDict) -> None:
  """Checks the model and size keys before anything is compiled.

  The one check of these keys: `config_utils.validate_config` calls it for a run, `build_generator`
  for the config it is given.

  Raises:
    errors.BadInputError (a ValueError): listing every problem found (levels not strictly decreasing
      powers of two within the estimator's range, image size not divisible by every level or the
      discriminator's downsampling, K < 1, bad dtype/padding, mismatched source/target channels, ...).
  """
  m, d = config.model, config.data
  errors = []
  levels = tuple(m.levels)
  n_flow = len(tuple(m.flow_encoder_channels))
  if n_flow < 2:
    errors.append(f"--config.model.flow_encoder_channels needs at least 2 entries, got {n_flow}.")
  max_head = 2 ** (n_flow - 1)
  if not levels:
    errors.append("--config.model.levels is empty; give at least one fusion level, e.g. (8, 4, 2).")
  elif not all(_is_pow2(l) and 2 <= l <= max_head for l in levels):
    errors.append(f"--config.model.levels must be powers of two in [2, {max_head}] (the flow estimator's "
                  f"decoder range for {n_flow} encoder blocks), got {levels}.")
  elif any(a <= b for a, b in zip(levels, levels[1:])):
    errors.append(f"--config.model.levels must be strictly decreasing (coarse to fine), got {levels}.")
  h, w = tuple(d.image_size)
  if levels and all(_is_pow2(l) for l in levels):
    for level in levels:
      if h % level or w % level:
        errors.append(f"--config.data.image_size {(h, w)} is not divisible by level {level}.")
  nd = int(m.disc_downsampling)
  if nd < 1:
    errors.append(f"--config.model.disc_downsampling must be >= 1, got {nd}.")
  elif h % 2 ** nd or w % 2 ** nd:
    errors.append(f"--config.data.image_size {(h, w)} is not divisible by 2^model.disc_downsampling = {2 ** nd}.")
  if not isinstance(d.num_sources, int) or d.num_sources < 1:
    errors.append(f"--config.data.num_sources must be an integer >= 1 (K sources), got {d.num_sources!r}.")
  if int(d.pose_channels) < 1:
    errors.append(f"--config.data.pose_channels must be >= 1, got {d.pose_channels}.")
  if not m.width > 0:
    errors.append(f"--config.model.width must be > 0, got {m.width}.")
  if m.dtype not in layers.DTYPES:
    errors.append(f"--config.model.dtype must be one of {sorted(layers.DTYPES)}, got {m.dtype!r}.")
  if m.warp_padding not in ("zeros", "border"):
    errors.append(f"--config.model.warp_padding must be 'zeros' or 'border', got {m.warp_padding!r}.")
  if m.init not in INITS:
    errors.append(f"--config.model.init must be one of {INITS}, got {m.init!r}.")
  if m.conv_impl not in CONV_IMPLS:
    errors.append(f"--config.model.conv_impl must be one of {CONV_IMPLS}, got {m.conv_impl!r}.")
  if m.attention_activation not in ATTENTION_ACTIVATIONS:
    errors.append(f"--config.model.attention_activation must be one of {ATTENTION_ACTIVATIONS}, got "
                  f"{m.attention_activation!r}.")
  if m.warp_impl not in ("gather", "onehot", "reference"):
    errors.append(f"--config.model.warp_impl must be 'gather', 'onehot' or 'reference', got {m.warp_impl!r}.")
  if not errors:
    ch = model_channels(config)
    for level in levels:
      s, t = ch["source"][_log2(level) - 1], ch["target"][_log2(level) - 1]
      if s != t:
        errors.append(f"at level {level} the source encoder has {s} channels but the target path "
                      f"{t}; model.source_encoder_channels and model.target_channels must agree.")
  if errors:
    raise BadInputError("Invalid model config: " + " ".join(errors))


class Generator(nn.Module):
  """Pose-guided multi-source generator with residual-flow correction.

  Attributes (all static; use `build_generator(config)` rather than setting them by hand):
    pose_channels: P.
    image_size: (H, W) of the config (used by `example_inputs`; any size divisible by the levels runs).
    levels: fusion levels, coarse to fine.
    flow_encoder_channels, source_channels, target_channels, decoder_channels, residual_hidden:
      scaled channel counts, see `model_channels`.
    residual_flow, occlusion, attention: ablation switches.
    attention_activation: "sigmoid" (the paper) | "none", see `RFBlock`.
    jump_norm, output_norm: instance norm in the estimator's skip convs / before the output conv.
    warp_padding: "zeros" | "border".
    warp_impl: `rfgen_jax.ops.bilinear_warp` implementation (see docs/performance.md).
    weight_init, conv_impl: `layers.Options` (weight init; convolution forms, docs/performance.md).
    dtype: compute dtype (params are float32).
  """
  pose_channels: int
  image_size: tuple[int, int]
  levels: tuple[int, ...]
  flow_encoder_channels: tuple[int, ...]
  source_channels: tuple[int, ...]
  target_channels: tuple[int, ...]
  decoder_channels: tuple[int, ...]
  residual_hidden: tuple[int, ...]
  residual_flow: bool = True
  occlusion: bool = True
  attention: bool = True
  attention_activation: str = "sigmoid"
  jump_norm: bool = False
  output_norm: bool = False
  warp_padding: str = "zeros"
  warp_impl: str = "gather"
  weight_init: str = "orthogonal"
  conv_impl: str = "auto"
  dtype: Dtype = jnp.float32

  def setup(self):
    shared = dict(variable_axes={"params": None}, split_rngs={"params": False})
    options = Options(init=self.weight_init, conv_impl=self.conv_impl)
    self.flow_estimator = nn.vmap(FlowEstimator, in_axes=(1, 1, None), out_axes=1, **shared)(
        encoder_channels=self.flow_encoder_channels, levels=self.levels,
        occlusion=self.occlusion, attention=self.attention, jump_norm=self.jump_norm,
        dtype=self.dtype, options=options)
    self.source_encoder = nn.vmap(SourceEncoder, in_axes=1, out_axes=1, **shared)(
        channels=self.source_channels, levels=self.levels, dtype=self.dtype, options=options)
    self.target_encoder = TargetPoseEncoder(self.target_channels, dtype=self.dtype, options=options)
    self.rf_blocks = [
        RFBlock(residual_flow=self.residual_flow, occlusion=self.occlusion, attention=self.attention,
                attention_activation=self.attention_activation,
                hidden=hidden, padding=self.warp_padding, warp_impl=self.warp_impl,
                dtype=self.dtype, options=options)
        for hidden in self.residual_hidden]
    self.decoder = Decoder(self.decoder_channels, output_norm=self.output_norm, dtype=self.dtype,
                           options=options)

  # ------------------------------------------------------------------ inputs
  def _check_inputs(self, source_images, source_poses, target_pose):
    """Validates shapes (static, before any tracing of the network); returns K."""
    p = self.pose_channels
    si, sp, tp = (jnp.shape(a) for a in (source_images, source_poses, target_pose))
    if len(si) != 5 or si[-1] != 3:
      raise ValueError(f"source_images must be (B, K, H, W, 3), got shape {si}.")
    b, k, h, w, _ = si
    if k < 1:
      raise ValueError(f"source_images must hold at least one source (K >= 1), got shape {si}.")
    if tuple(sp) != (b, k, h, w, p):
      raise ValueError(f"source_poses must be (B, K, H, W, P) = {(b, k, h, w, p)} "
                       f"(B, K, H, W from source_images, P = data.pose_channels), got shape {sp}.")
    if tuple(tp) != (b, h, w, p):
      raise ValueError(f"target_pose must be (B, H, W, P) = {(b, h, w, p)} "
                       f"(B, H, W from source_images, P = data.pose_channels), got shape {tp}.")
    for level in self.levels:
      if h % level or w % level:
        raise ValueError(f"source_images: H and W must be divisible by every fusion level "
                         f"{tuple(self.levels)}; got H, W = {(h, w)}.")
    return k

  def _estimate(self, source_images, source_poses, target_pose):
    est = self.flow_estimator(source_images, source_poses, target_pose)
    out = {"flows": est["flows"], "occlusion": [], "attention_logits": []}
    for flow, occ, logits in zip(est["flows"], est["occlusion"], est["attention_logits"]):
      zeros = jnp.zeros(flow.shape[:-1] + (1,), jnp.float32)
      out["occlusion"].append(zeros if occ is None else occ)
      out["attention_logits"].append(zeros if logits is None else logits)
    return out

  # ------------------------------------------------------------------ public
  def estimate_flows(self, source_images, source_poses, target_pose):
    """Runs the flow estimator F alone (stage 1).

    Args: as `__call__`.
    Returns:
      dict of lists over levels (coarse to fine), float32: `flows` (B, K, h, w, 2) in pixels of the
      level's map, `occlusion` (B, K, h, w, 1) (zeros when `model.occlusion` is off) and
      `attention_logits` (B, K, h, w, 1) (zeros when `model.attention` is off).
    """
    self._check_inputs(source_images, source_poses, target_pose)
    return self._estimate(source_images, source_poses, target_pose)

  def __call__(self, source_images, source_poses, target_pose):
    """Generates the target image.

    Args:
      source_images: (B, K, H, W, 3) in [-1, 1].
      source_poses: (B, K, H, W, P) pose maps.
      target_pose: (B, H, W, P) pose map.
    Returns:
      dict: `image` (B, H, W, 3) float32 in [-1, 1]; per level coarse to fine (lists, float32):
      `flows` (refined, (B, K, h, w, 2), pixels of the level's map), `initial_flows` (the
      estimator's), `occlusion` (B, K, h, w, 1), `attention` (softmax weights over K, (B, K, h, w, 1)).
    """
    self._check_inputs(source_images, source_poses, target_pose)
    est = self._estimate(source_images, source_poses, target_pose)
    feats = self.source_encoder(source_images)
    x = self.target_encoder(target_pose)

    out = {"flows": [], "initial_flows": est["flows"], "occlusion": [], "attention": []}
    factor, step = max(self.levels), 0
    while factor > 1:
      if factor in self.levels:
        i = self.levels.index(factor)
        x, aux = self.rf_blocks[i](x, feats[i], est["flows"][i], est["occlusion"][i],
                                   est["attention_logits"][i])
        out["flows"].append(aux["flows"])
        out["occlusion"].append(aux["occlusion"])
        out["attention"].append(aux["attention"])
      x = self.decoder.up(x, step)
      factor, step = factor // 2, step + 1
    out["image"] = self.decoder.output(x)
    return out


# The model.* keys the Generator takes under their own name, unchanged (switches and implementation choices):
# a new switch is a key in configs/common.py, an attribute of `Generator` (and of the block that reads it)
# and its name here.
SWITCHES = ("residual_flow", "occlusion", "attention", "attention_activation", "jump_norm", "output_norm",
            "warp_padding", "warp_impl", "conv_impl")


def build_generator(config: ml_collections.ConfigDict) -> Generator:
  """The generator for a whole config (reads `data.pose_channels`, `data.image_size`, `model.*`)."""
  validate_model_config(config)
  m = config.model
  ch = model_channels(config)
  as_is = {key: type(getattr(Generator, key))(m[key]) for key in SWITCHES}   # bool or str, as declared
  return Generator(
      pose_channels=int(config.data.pose_channels),
      image_size=tuple(int(s) for s in config.data.image_size),
      levels=tuple(int(l) for l in m.levels),
      flow_encoder_channels=ch["flow_encoder"],
      source_channels=ch["source"],
      target_channels=ch["target"],
      decoder_channels=ch["decoder"],
      residual_hidden=ch["residual_hidden"],
      weight_init=str(m.init),
      dtype=layers.DTYPES[m.dtype],
      **as_is)


def example_inputs(config: ml_collections.ConfigDict, batch_size: int = 1,
                   num_sources: int | None = None, abstract: bool = False):
  """Zero inputs (or `jax.ShapeDtypeStruct`s) of the config's size for `init`/lowering.

  Returns (source_images (B, K, H, W, 3), source_poses (B, K, H, W, P), target_pose (B, H, W, P)),
  float32, K = `num_sources` or `data.num_sources`.
  """
  h, w = config.data.image_size
  p = config.data.pose_channels
  k = config.data.num_sources if num_sources is None else num_sources
  shapes = [(batch_size, k, h, w, 3), (batch_size, k, h, w, p), (batch_size, h, w, p)]
  if abstract:
    return tuple(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes)
  return tuple(jnp.zeros(s, jnp.float32) for s in shapes)
