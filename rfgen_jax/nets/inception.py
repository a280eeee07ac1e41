"""Inception-v3 pool3 features for FID, in Flax linen: two variants with one set of weight names.

`variant="pytorch_fid"`: the TensorFlow 2015-12-05 Inception-v3 that FID is defined with, in the layout
of pytorch-fid's port (`pt_inception-2015-12-05-*.pth`): torchvision's Inception-v3 with the FID blocks

- `Mixed_5b..5d` (A), `Mixed_6b..6e` (C), `Mixed_7b` (E_1): the 3x3/1 average pool of the pool branch
  ignores the zero padding (`count_include_pad=False`),
- `Mixed_7c` (E_2): the pool branch uses a 3x3/1 *max* pool instead;

input transform `2 x - 1` of [0, 1] images (= the [-1, 1] images themselves).

`variant="gfla"`: torchvision's ImageNet Inception-v3 (`inception_v3_google-*.pth`), as GFLA's FID
(`script/metrics.py` with its `script/inception.py`, an early pytorch-fid) runs it: every average pool
counts the padding (`F.avg_pool2d(x, 3, 1, 1)`), `Mixed_7c` pools by average too, and the [0, 1]
input, after the bilinear resize to 299, goes through `x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5` with
the ImageNet mean / std (GFLA's `normalize_input`; it is torchvision's `transform_input`, applied to
[0, 1] rather than to ImageNet-normalised images, kept as is because the published numbers use it).

Both return the 2048-d global-average-pooled output of `Mixed_7c` ("pool3"). Every convolution is
`conv (no bias) -> BatchNorm (inference, eps 1e-3) -> ReLU`. The batch-norm statistics are frozen weights
and live in the `params` collection beside the kernel:
`{..., "conv": {"kernel": (kh, kw, in, out)}, "bn": {"scale", "bias", "mean", "var": (out,)}}`.
Submodule names follow the PyTorch state dict (`Mixed_6b/branch7x7dbl_3/...`), which is the same for
both files, so conversion is a renaming: `params_from_state_dict`. Layout is NHWC.

This module: the network (`InceptionV3`), its input transforms and the weight files (PyTorch state dict
-> params -> .npz). The blocks (`BasicConv`, `InceptionA..E`, the pools) are in
`rfgen_jax/nets/inception_blocks.py`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rfgen_jax import errors   # weight files are the user's: their errors are user errors
from rfgen_jax.nets.inception_blocks import BasicConv
from rfgen_jax.nets.inception_blocks import InceptionA
from rfgen_jax.nets.inception_blocks import InceptionB
from rfgen_jax.nets.inception_blocks import InceptionC
from rfgen_jax.nets.inception_blocks import InceptionD
from rfgen_jax.nets.inception_blocks import InceptionE
from rfgen_jax.nets.inception_blocks import avg_pool_exclude_pad   # public here too (`__all__`)
from rfgen_jax.nets.inception_blocks import avg_pool_include_pad
from rfgen_jax.nets.inception_blocks import max_pool

FEATURE_DIM = 2048
INPUT_SIZE = 299
VARIANTS = ("pytorch_fid", "gfla")
# ImageNet channel statistics of torchvision's `transform_input` (GFLA's `normalize_input`).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Classifier rows of each released file (the classifier itself is not used; it tells the files apart).
NUM_CLASSES = {"pytorch_fid": 1008, "gfla": 1000}
# Smallest input side the pooling/stride chain accepts (pool3 map of 1x1).
MIN_INPUT_SIZE = 75


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


def gfla_input_transform(images: jax.Array) -> jax.Array:
  """GFLA's Inception input of [-1, 1] images: per channel `x01 * (std / 0.5) + (mean - 0.5) / 0.5`.

  Args:
    images: (B, H, W, 3) RGB in [-1, 1] (x01 = (images + 1) / 2 is what GFLA's script feeds).
  Returns:
    (B, H, W, 3) float32.
  """
  x01 = (images.astype(jnp.float32) + 1.0) * 0.5
  std = jnp.asarray(IMAGENET_STD, jnp.float32)
  mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
  return x01 * (std / 0.5) + (mean - 0.5) / 0.5


class InceptionV3(nn.Module):
  """Inception-v3 returning pool3 features (see the module docstring for the two variants).

  Attributes:
    resize_to: side the inputs are bilinearly resized to first (299 for FID); None keeps the input
      size (must then be >= 75; used by tests to run small inputs).
    variant: "pytorch_fid" (the FID network, pytorch-fid) or "gfla" (torchvision's ImageNet network with
      GFLA's input transform).
  """
  resize_to: Optional[int] = INPUT_SIZE
  variant: str = "pytorch_fid"

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    """Pool3 features.

    Args:
      images: (B, H, W, 3) RGB in [-1, 1]. pytorch_fid: the network's own range (pytorch-fid's
        `2 * x - 1` of [0, 1] images, applied after the resize, is the same map since resizing is
        linear). gfla: `gfla_input_transform` after the resize, as GFLA's script orders them.
    Returns:
      (B, 2048) float32 features.
    """
    if self.variant not in VARIANTS:
      raise ValueError(f"InceptionV3: variant must be one of {VARIANTS}, got {self.variant!r}.")
    tv = self.variant == "gfla"
    x = images.astype(jnp.float32)
    if self.resize_to is not None:
      x = resize_bilinear(x, (self.resize_to, self.resize_to))
    if tv:
      x = gfla_input_transform(x)
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f"InceptionV3: input side must be >= {MIN_INPUT_SIZE}, got {x.shape[1:3]}.")
    x = BasicConv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = max_pool(x)
    x = BasicConv(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = max_pool(x)
    x = InceptionA(32, include_pad=tv, name="Mixed_5b")(x)
    x = InceptionA(64, include_pad=tv, name="Mixed_5c")(x)
    x = InceptionA(64, include_pad=tv, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, include_pad=tv, name="Mixed_6b")(x)
    x = InceptionC(160, include_pad=tv, name="Mixed_6c")(x)
    x = InceptionC(160, include_pad=tv, name="Mixed_6d")(x)
    x = InceptionC(192, include_pad=tv, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", include_pad=tv, name="Mixed_7b")(x)
    x = InceptionE("avg" if tv else "max", include_pad=tv, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


# ---------------------------------------------------------------------------------------------
# Weights: PyTorch state dict (numpy arrays) <-> linen params <-> .npz file.

_FILES = {"pytorch_fid": "pt_inception-2015-12-05-6726825d.pth",
          "gfla": "torchvision's inception_v3_google-*.pth"}
VARIANT_KEY = "__variant__"   # .npz entry naming the variant a converted file holds
_BN_LEAVES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def params_from_state_dict(state_dict: Mapping[str, Any], variant: Optional[str] = None) -> dict:
  """Converts an Inception-v3 state dict (pytorch-fid's or torchvision's) to `params`. Torch-free.

  Args:
    state_dict: name -> array (numpy or anything `np.asarray` accepts), PyTorch names such as
      `Mixed_5b.branch1x1.conv.weight` (O, I, kh, kw) and `Mixed_5b.branch1x1.bn.running_var`.
      `fc.*`, `AuxLogits.*` and `*.num_batches_tracked` are ignored.
    variant: if given, "pytorch_fid" or "gfla": the classifier `fc.weight`, when present, must have
      `NUM_CLASSES[variant]` rows (1008 for pytorch-fid's file, 1000 for torchvision's), so that one file
      is not converted as the other.
  Returns:
    Nested dict of float32 numpy arrays matching `InceptionV3().init(...)["params"]`.
  Raises:
    ValueError: on a key that is neither a conv nor a batch-norm entry, on missing weights, or on a
      classifier that belongs to the other variant.
  """
  if variant is not None:
    if variant not in VARIANTS:
      raise errors.BadInputError(f"params_from_state_dict: variant must be one of {VARIANTS}, got {variant!r}.")
    fc = state_dict.get("fc.weight")
    if fc is not None and np.shape(fc)[0] != NUM_CLASSES[variant]:
      other = next(v for v in VARIANTS if v != variant)
      raise errors.BadInputError(
          f"This state dict has a {np.shape(fc)[0]}-class classifier, the {other} file "
          f"({_FILES[other]}), not the {variant} one ({_FILES[variant]}); pass --variant={other} or "
          f"the other file.")
  params: dict = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    if parts[0] in ("fc", "AuxLogits") or parts[-1] == "num_batches_tracked":
      continue
    if len(parts) < 3 or parts[-2] not in ("conv", "bn"):
      raise errors.BadInputError(f"params_from_state_dict: unexpected Inception key {key!r}.")
    array = np.asarray(value, dtype=np.float32)
    node = params
    for name in parts[:-2]:
      node = node.setdefault(name, {})
    if parts[-2] == "conv":
      if parts[-1] != "weight" or array.ndim != 4:
        raise errors.BadInputError(f"params_from_state_dict: unexpected conv entry {key!r} {array.shape}.")
      node.setdefault("conv", {})["kernel"] = np.transpose(array, (2, 3, 1, 0))
    else:
      if parts[-1] not in _BN_LEAVES:
        raise errors.BadInputError(f"params_from_state_dict: unexpected batch-norm entry {key!r}.")
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
    raise errors.BadInputError(f"Inception weights do not match the FID Inception-v3: missing {missing[:5]}"
                               f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
                               f"{' ...' if len(extra) > 5 else ''}.")
  for name, shape in expected.items():
    if tuple(got[name]) != tuple(shape):
      raise errors.BadInputError(f"Inception weight {name}: shape {tuple(got[name])}, expected {tuple(shape)}.")


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


def save_params(path: str, params: Mapping[str, Any], variant: Optional[str] = None) -> None:
  """Writes params as an uncompressed .npz of "/"-joined names (plus the variant's name, if given)."""
  flat = flatten_params(params)
  if variant is not None:
    flat[VARIANT_KEY] = np.asarray(variant)
  with open(path, "wb") as f:
    np.savez(f, **flat)


def load_params(path: str, variant: Optional[str] = None) -> dict:
  """Reads and checks an .npz written by `save_params` / `convert_inception`.

  Args:
    path: the .npz file.
    variant: if given, the file must not be marked as the other variant (files converted before the
      marker existed are pytorch_fid files and carry none).
  Returns:
    Nested dict of float32 numpy arrays for `InceptionV3().apply({"params": ...}, images)`.
  Raises:
    ValueError: wrong variant, or missing / mis-shaped weights.
  """
  with np.load(path) as data:
    stored = str(data[VARIANT_KEY]) if VARIANT_KEY in data.files else "pytorch_fid"
    params = unflatten_params({k: data[k].astype(np.float32) for k in data.files if k != VARIANT_KEY})
  if variant is not None and stored != variant:
    raise errors.BadInputError(f"{path} holds the {stored} Inception ({_FILES[stored]}), but the {variant} one "
                               f"({_FILES[variant]}) is needed; convert it with "
                               f"`python -m rfgen_jax.tools.convert_inception --variant={variant} ...`.")
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
    "InceptionV3", "FEATURE_DIM", "INPUT_SIZE", "MIN_INPUT_SIZE", "VARIANTS", "params_from_state_dict",
    "check_params", "load_params", "save_params", "random_params", "resize_bilinear",
    "avg_pool_exclude_pad", "avg_pool_include_pad", "gfla_input_transform")
