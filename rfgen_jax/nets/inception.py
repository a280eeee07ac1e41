"""Inception-v3 of the FID (pytorch-fid `pt_inception-2015-12-05`) graph, in Flax linen.

The network is the TensorFlow 2015-12-05 Inception-v3 that FID is defined with, in the layout of
pytorch-fid's port: torchvision's Inception-v3 with the FID-specific blocks

- `Mixed_5b..5d` (A), `Mixed_6b..6e` (C), `Mixed_7b` (E_1): the 3x3/1 average pool of the pool branch
  ignores the zero padding (`count_include_pad=False`),
- `Mixed_7c` (E_2): the pool branch uses a 3x3/1 *max* pool instead,

and returns the 2048-d global-average-pooled output of `Mixed_7c` ("pool3").

Every convolution is `conv (no bias) -> BatchNorm (inference, eps 1e-3) -> ReLU`. The batch-norm
statistics are frozen weights and live in the `params` collection beside the kernel:
`{..., "conv": {"kernel": (kh, kw, in, out)}, "bn": {"scale", "bias", "mean", "var": (out,)}}`.
Submodule names follow the PyTorch state dict (`Mixed_6b/branch7x7dbl_3/...`), so conversion is a
renaming: `params_from_state_dict`. Layout is NHWC.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FEATURE_DIM = 2048
INPUT_SIZE = 299
BN_EPSILON = 1e-3
# Smallest input side the pooling/stride chain accepts (pool3 map of 1x1).
MIN_INPUT_SIZE = 75

_Padding = Tuple[Tuple[int, int], Tuple[int, int]]


def _pad(padding) -> _Padding:
  """(ph, pw) or int -> explicit ((ph, ph), (pw, pw))."""
  if isinstance(padding, int):
    padding = (padding, padding)
  return ((padding[0], padding[0]), (padding[1], padding[1]))


class BasicConv(nn.Module):
  """Conv (no bias) -> frozen BatchNorm (eps 1e-3) -> ReLU, as torchvision's `BasicConv2d`.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: (ph, pw) zero padding on each side.
  """
  features: int
  kernel_size: Tuple[int, int] = (1, 1)
  strides: Tuple[int, int] = (1, 1)
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H', W', features)."""
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides, padding=_pad(self.padding),
                use_bias=False, name="conv")(x)
    bn = _FrozenBatchNorm(self.features, name="bn")
    return jax.nn.relu(bn(x))


class _FrozenBatchNorm(nn.Module):
  """Inference-mode batch norm whose statistics are parameters (never updated)."""
  features: int
  epsilon: float = BN_EPSILON

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.ones, (self.features,))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    return x * mul + (bias - mean * mul)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average pool with padding 1 that averages only the in-image taps.

  Equals `F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)` (TensorFlow's SAME average pool).
  Args:
    x: (B, H, W, C).
  Returns:
    (B, H, W, C).
  """
  window, strides, pads = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
  ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
  return total / count


def max_pool(x: jax.Array, size: int = 3, stride: int = 2, padding: int = 0) -> jax.Array:
  """Max pool (B, H, W, C) with -inf padding, as `F.max_pool2d` (floor mode)."""
  return nn.max_pool(x, (size, size), strides=(stride, stride),
                     padding=((padding, padding), (padding, padding)))


class InceptionA(nn.Module):
  """FIDInceptionA (Mixed_5b/5c/5d): 64 + 64 + 96 + pool_features channels."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name="branch1x1")(x)
    b5 = BasicConv(48, name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, name="branch_pool")(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """InceptionB (Mixed_6a): stride-2 reduction, 384 + 96 + in channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
    bd = BasicConv(64, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  """FIDInceptionC (Mixed_6b..6e): factorised 7x7 branches, 4 x 192 channels."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, name="branch1x1")(x)
    b7 = BasicConv(c7, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, name="branch_pool")(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """InceptionD (Mixed_7a): stride-2 reduction, 320 + 192 + in channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
    b7 = BasicConv(192, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (`pool="avg"`, Mixed_7b) / FIDInceptionE_2 (`pool="max"`, Mixed_7c): 2048 channels."""
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name="branch1x1")(x)
    b3 = BasicConv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv(448, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.pool == "avg":
      pooled = avg_pool_exclude_pad(x)
    elif self.pool == "max":
      pooled = max_pool(x, 3, 1, 1)
    else:
      raise ValueError(f"InceptionE: pool must be 'avg' or 'max', got {self.pool!r}.")
    bp = BasicConv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def resize_bilinear(images: jax.Array, size: Tuple[int, int]) -> jax.Array:
  """Bilinear resize without antialiasing, = `F.interpolate(mode="bilinear", align_corners=False)`.

  Args:
    images: (B, H, W, C).
    size: (H', W') output size in pixels.
  Returns:
    (B, H', W', C) float32.
  """
  b, _, _, c = images.shape
  return jax.image.resize(images.astype(jnp.float32), (b, size[0], size[1], c), method="bilinear",
                          antialias=False)


class InceptionV3(nn.Module):
  """FID Inception-v3 returning pool3 features.

  Attributes:
    resize_to: side the inputs are bilinearly resized to first (299 for FID); None keeps the input
      size (must then be >= 75; used by tests to run small inputs).
  """
  resize_to: Optional[int] = INPUT_SIZE

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    """Pool3 features.

    Args:
      images: (B, H, W, 3) RGB in [-1, 1] (the range the network was trained on; pytorch-fid's
        `2 * x - 1` of [0, 1] images, applied after the resize, is the same map since resizing
        is linear).
    Returns:
      (B, 2048) float32 features.
    """
    x = images.astype(jnp.float32)
    if self.resize_to is not None:
      x = resize_bilinear(x, (self.resize_to, self.resize_to))
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f"InceptionV3: input side must be >= {MIN_INPUT_SIZE}, got {x.shape[1:3]}.")
    x = BasicConv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = max_pool(x)
    x = BasicConv(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = max_pool(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


# ---------------------------------------------------------------------------------------------
# Weights: PyTorch state dict (numpy arrays) <-> linen params <-> .npz file.

_BN_LEAVES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def params_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """Converts pytorch-fid's FID Inception state dict to this module's `params`. Torch-free.

  Args:
    state_dict: name -> array (numpy or anything `np.asarray` accepts), PyTorch names such as
      `Mixed_5b.branch1x1.conv.weight` (O, I, kh, kw) and `Mixed_5b.branch1x1.bn.running_var`.
      `fc.*`, `AuxLogits.*` and `*.num_batches_tracked` are ignored.
  Returns:
    Nested dict of float32 numpy arrays matching `InceptionV3().init(...)["params"]`.
  Raises:
    ValueError: on a key that is neither a conv nor a batch-norm entry, or on missing weights.
  """
  params: dict = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    if parts[0] in ("fc", "AuxLogits") or parts[-1] == "num_batches_tracked":
      continue
    if len(parts) < 3 or parts[-2] not in ("conv", "bn"):
      raise ValueError(f"params_from_state_dict: unexpected Inception key {key!r}.")
    array = np.asarray(value, dtype=np.float32)
    node = params
    for name in parts[:-2]:
      node = node.setdefault(name, {})
    if parts[-2] == "conv":
      if parts[-1] != "weight" or array.ndim != 4:
        raise ValueError(f"params_from_state_dict: unexpected conv entry {key!r} {array.shape}.")
      node.setdefault("conv", {})["kernel"] = np.transpose(array, (2, 3, 1, 0))
    else:
      if parts[-1] not in _BN_LEAVES:
        raise ValueError(f"params_from_state_dict: unexpected batch-norm entry {key!r}.")
      node.setdefault("bn", {})[_BN_LEAVES[parts[-1]]] = array
  check_params(params)
  return params


def param_shapes() -> dict:
  """Shapes of `InceptionV3` params, nested dict of `jax.ShapeDtypeStruct` (no computation)."""
  model = InceptionV3(resize_to=None)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3))))
  return shapes["params"]


def check_params(params: Mapping[str, Any]) -> None:
  """Raises ValueError naming the first missing, extra or mis-shaped weight."""
  expected = {"/".join(str(getattr(k, "key", k)) for k in path): leaf.shape
              for path, leaf in jax.tree_util.tree_flatten_with_path(param_shapes())[0]}
  got = {"/".join(str(getattr(k, "key", k)) for k in path): np.shape(leaf)
         for path, leaf in jax.tree_util.tree_flatten_with_path(dict(params))[0]}
  missing = sorted(set(expected) - set(got))
  extra = sorted(set(got) - set(expected))
  if missing or extra:
    raise ValueError(f"Inception weights do not match the FID Inception-v3: missing {missing[:5]}"
                     f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
                     f"{' ...' if len(extra) > 5 else ''}.")
  for name, shape in expected.items():
    if tuple(got[name]) != tuple(shape):
      raise ValueError(f"Inception weight {name}: shape {tuple(got[name])}, expected {tuple(shape)}.")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict:
  """Nested dict -> {"a/b/c": array} (the .npz layout)."""
  flat = {}
  for key, value in params.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(flatten_params(value, name + "/"))
    else:
      flat[name] = np.asarray(value)
  return flat


def unflatten_params(flat: Mapping[str, Any]) -> dict:
  """{"a/b/c": array} -> nested dict."""
  params: dict = {}
  for name, value in flat.items():
    node = params
    parts = name.split("/")
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = np.asarray(value)
  return params


def save_params(path: str, params: Mapping[str, Any]) -> None:
  """Writes params as an uncompressed .npz of "/"-joined names."""
  with open(path, "wb") as f:
    np.savez(f, **flatten_params(params))


def load_params(path: str) -> dict:
  """Reads and checks an .npz written by `save_params` / `convert_inception`.

  Returns:
    Nested dict of float32 numpy arrays for `InceptionV3().apply({"params": ...}, images)`.
  """
  with np.load(path) as data:
    params = unflatten_params({k: data[k].astype(np.float32) for k in data.files})
  check_params(params)
  return params


def random_params(seed: int = 0) -> dict:
  """Random weights of the right shapes (tests and dry runs; not meaningful features), numpy float32.

  He-normal kernels, unit batch-norm scale/variance, zero bias/mean; built from `param_shapes`
  without running the network (eager `init` of Inception takes tens of seconds on CPU).
  """
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:3]))
      return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return (np.ones if name in ("scale", "var") else np.zeros)(leaf.shape, np.float32)

  return jax.tree_util.tree_map_with_path(fill, param_shapes())


__all__: Sequence[str] = (
    "InceptionV3", "FEATURE_DIM", "INPUT_SIZE", "MIN_INPUT_SIZE", "params_from_state_dict",
    "check_params", "load_params", "save_params", "random_params", "resize_bilinear",
    "avg_pool_exclude_pad")
