"""Building blocks shared by the generator's parts (GFLA-style, NHWC).

Every block takes `(B, H, W, C)` features and a compute `dtype`; parameters are always float32.
Normalisation is instance normalisation (per sample and channel over H x W, with a learned scale and
bias), activation LeakyReLU(0.1), as in GFLA's PoseFlowNet. Every convolution is a `Conv` (parameters
`kernel` (kh, kw, C_in, C_out) and `bias`, the same names and shapes as `flax.linen.Conv` /
`ConvTranspose`), computed by `rfgen_jax.models.conv_forms` in the form that is fastest on the platform
(docs/performance.md, "Convolutions"; docs/design.md, "## 2. Generator").

`Options` carries the model-wide choices of config `model.*` that every block needs: the weight
initialisation (`model.init`) and the convolution implementation (`model.conv_impl`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from rfgen_jax.models import conv_forms

Dtype = Any

LEAKY_SLOPE = 0.1
# Small init for the flow heads (init "lecun"): initial flows are O(1e-2) pixels, so training starts
# near identity.
FLOW_HEAD_INIT = nn.initializers.normal(stddev=1e-3)
# GFLA's `init_weights(init_type="orthogonal", gain=0.02)` (model/networks/base_network.py): every conv
# and transposed conv weight orthogonal with gain 0.02, biases zero.
ORTHOGONAL_GAIN = 0.02
INITS = ("orthogonal", "lecun")
# config model.dtype -> the computation dtype of the generator and the discriminator (parameters float32).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Options:
  """Model-wide layer options.

  Attributes:
    init: "orthogonal" (GFLA: orthogonal, gain 0.02, for every conv) or "lecun" (flax's default
      LeCun-normal; the flow heads then use normal(1e-3)).
    conv_impl: "auto" (fast forms chosen per platform at lowering time) or "xla" (plain XLA convs).
  """
  init: str = "orthogonal"
  conv_impl: str = "auto"

  def __post_init__(self):
    if self.init not in INITS:
      raise ValueError(f"model.init must be one of {INITS}, got {self.init!r}.")
    if self.conv_impl not in conv_forms.CONV_IMPLS:
      raise ValueError(f"model.conv_impl must be one of {conv_forms.CONV_IMPLS}, got {self.conv_impl!r}.")


DEFAULT = Options()


def kernel_init(options: Options, kind: str = "conv", head: bool = False) -> Callable:
  """The kernel initialiser for a conv of `kind` ("conv", "down", "up").

  Orthogonal: the (kh*kw*C_in, C_out) matrix has orthonormal columns times the gain, as torch's
  `orthogonal_` on its (C_out, C_in*kh*kw) weight; for the transposed conv torch's weight is
  (C_in, C_out, kh, kw), so the C_in axis is the orthogonal one.
  """
  if options.init == "orthogonal":
    return nn.initializers.orthogonal(ORTHOGONAL_GAIN, column_axis=-2 if kind == "up" else -1)
  return FLOW_HEAD_INIT if head else nn.initializers.lecun_normal()


def leaky_relu(x: jax.Array) -> jax.Array:
  """LeakyReLU with slope 0.1 (GFLA's `LeakyReLU` nonlinearity)."""
  return nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def scale_channels(channels: int, width: float) -> int:
  """Channel count `channels * width`, rounded, at least 1."""
  return max(1, int(round(channels * width)))


class Conv(nn.Module):
  """A square convolution with float32 `kernel` (k, k, C_in, features) and `bias` (features,).

  kind:
    "conv": stride 1, output size = input size; `padding` "zeros" or "reflect" (k odd).
    "down": torch `Conv2d(k=4, s=2, p=1)` (k must be 4): (H, W) -> (H/2, W/2).
    "up": torch `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)` (k must be 3): (H, W) -> (2H, 2W);
      kernel[th, tw, c, o] = torch weight[c, o, th, tw].
  """
  features: int
  kernel_size: int = 3
  kind: str = "conv"
  padding: str = "zeros"
  dtype: Dtype = jnp.float32
  options: Options = DEFAULT
  kernel_init: Callable | None = None
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    init = self.kernel_init or kernel_init(self.options, self.kind)
    kernel = self.param("kernel", init, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    impl = self.options.conv_impl
    if self.kind == "down":
      y = conv_forms.conv_down(x, kernel, impl)
    elif self.kind == "up":
      y = conv_forms.conv_up(x, kernel, impl)
    elif self.kind == "conv":
      lo, hi = (k - 1) // 2, k // 2
      if self.padding == "reflect":
        x = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode="reflect")
        pads = ((0, 0), (0, 0))
      elif self.padding == "zeros":
        pads = ((lo, hi), (lo, hi))
      else:
        raise ValueError(f"Conv padding must be 'zeros' or 'reflect', got {self.padding!r}.")
      y = conv_forms.conv2d(x, kernel, pads, impl)
    else:
      raise ValueError(f"Conv kind must be 'conv', 'down' or 'up', got {self.kind!r}.")
    return y + bias.astype(self.dtype)


def conv(features: int, kernel: int, dtype: Dtype, options: Options = DEFAULT, name: str | None = None,
         kind: str = "conv", padding: str = "zeros", head: bool = False, kernel_init=None) -> Conv:
  """A `Conv`; `head=True` marks the flow heads (normal(1e-3) init under init "lecun")."""
  init = kernel_init or globals()["kernel_init"](options, kind, head)
  return Conv(features, kernel, kind=kind, padding=padding, dtype=dtype, options=options,
              kernel_init=init, name=name)


def instance_norm(dtype: Dtype, name: str | None = None) -> nn.Module:
  """Instance normalisation with affine scale/bias (statistics reduced in float32)."""
  return nn.InstanceNorm(epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32, name=name)


class EncoderBlock(nn.Module):
  """GFLA's EncoderBlock: norm, act, conv4x4/2, norm, act, conv3x3.

  (B, H, W, C_in) -> (B, H/2, W/2, features). H and W must be even.
  """
  features: int
  dtype: Dtype = jnp.float32
  options: Options = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    o = self.options
    x = leaky_relu(instance_norm(self.dtype, "norm_0")(x))
    x = conv(self.features, 4, self.dtype, o, "conv_down", kind="down")(x)
    x = leaky_relu(instance_norm(self.dtype, "norm_1")(x))
    return conv(self.features, 3, self.dtype, o, "conv")(x)


class ResBlockUp(nn.Module):
  """GFLA's ResBlockDecoder: a residual up-block (x2).

  main: norm, act, conv3x3 (hidden), norm, act, transposed conv3x3/2 (features);
  shortcut: transposed conv3x3/2 (features). (B, H, W, C) -> (B, 2H, 2W, features). The transposed
  convs have torch's `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)` alignment.
  """
  features: int
  hidden: int | None = None
  dtype: Dtype = jnp.float32
  options: Options = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    o = self.options
    hidden = self.hidden or self.features
    y = leaky_relu(instance_norm(self.dtype, "norm_0")(x))
    y = conv(hidden, 3, self.dtype, o, "conv")(y)
    y = leaky_relu(instance_norm(self.dtype, "norm_1")(y))
    y = conv(self.features, 3, self.dtype, o, "conv_up", kind="up")(y)
    return y + conv(self.features, 3, self.dtype, o, "shortcut", kind="up")(x)


class Jump(nn.Module):
  """GFLA's Jump (skip-connection conv): [norm,] act, reflect-padded conv3x3.

  (B, H, W, C) -> (B, H, W, features). GFLA's PoseFlowNet builds it without normalisation
  (`norm=False`, the default of config `model.jump_norm`); `norm=True` adds an instance norm first.
  """
  features: int
  norm: bool = False
  dtype: Dtype = jnp.float32
  options: Options = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.norm:
      x = instance_norm(self.dtype, "norm")(x)
    x = leaky_relu(x)
    return conv(self.features, 3, self.dtype, self.options, "conv", padding="reflect")(x)


class OutputConv(nn.Module):
  """GFLA's Output: [norm,] act, reflect-padded conv3x3 to `features`, tanh. Result in [-1, 1].

  GFLA's generators build it without normalisation (`norm=False`, config `model.output_norm`).
  """
  features: int = 3
  norm: bool = False
  dtype: Dtype = jnp.float32
  options: Options = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.norm:
      x = instance_norm(self.dtype, "norm")(x)
    x = leaky_relu(x)
    return jnp.tanh(conv(self.features, 3, self.dtype, self.options, "conv", padding="reflect")(x))
