"""VGG19 feature extractor for the perceptual, style and sampling-correctness losses.

Layout of torchvision's `vgg19().features` (16 conv3x3 + ReLU, a 2x2 max-pool after blocks 1-4; the
5th pool is never needed by a relu tap and is left out):

  block 1: conv1_1 conv1_2 (64)        pool    torchvision features indices 0, 2
  block 2: conv2_1 conv2_2 (128)       pool    5, 7
  block 3: conv3_1 .. conv3_4 (256)    pool    10, 12, 14, 16
  block 4: conv4_1 .. conv4_4 (512)    pool    19, 21, 23, 25
  block 5: conv5_1 .. conv5_4 (512)            28, 30, 32, 34

Taps are named relu{block}_{index}: the ReLU output after conv{block}_{index}, at 1/2^(block-1) of the
input size (floor, as torch's MaxPool2d). Note that GFLA's own VGG19 wrapper mislabels one tap (its
"relu3_2" runs conv3_2 and conv3_3); here every name is what it says.

Input: NHWC images in [-1, 1] (the project's convention). `input_norm` (config `losses.vgg_input`)
says what the network sees:
- "gfla" (default): the [-1, 1] images as they are, as GFLA's `VGG19` wrapper does
  (model/networks/external_function.py feeds the generator's tanh output straight in). GFLA's loss
  weights (perceptual 0.5, style 500, correctness 5) were tuned with these feature magnitudes.
- "imagenet": mapped to [0, 1] and normalised with the ImageNet mean (0.485, 0.456, 0.406) and std
  (0.229, 0.224, 0.225), as torchvision's weights were trained; features are then about 4x larger, which
  changes the effective perceptual and style weights (docs/protocol.md).

Weights: `load_vgg19(config)` reads the .npz written by `python -m rfgen_jax.tools.convert_vgg19` from
torchvision's `vgg19-dcbb9e9d.pth`. Parameters are {"conv1_1": {"kernel": (3, 3, I, O), "bias": (O,)},
...}; the file stores them flat as "conv1_1/kernel", "conv1_1/bias", ...
"""
from __future__ import annotations

import os
import zipfile
from typing import Any, Dict, Optional, Sequence, Tuple

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rfgen_jax import errors

# (block, index within block, output channels), in network order.
CONVS: Tuple[Tuple[int, int, int], ...] = tuple(
    (block, i, width)
    for block, (count, width) in enumerate(((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)), start=1)
    for i in range(1, count + 1))
LAYER_NAMES: Tuple[str, ...] = tuple(f"conv{b}_{i}" for b, i, _ in CONVS)
TAP_NAMES: Tuple[str, ...] = tuple(f"relu{b}_{i}" for b, i, _ in CONVS)
# Index of each conv in torchvision's `vgg19().features` Sequential.
TORCHVISION_FEATURE_INDICES: Tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NORMS = ("gfla", "imagenet")

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
RANDOM_INIT_SEED = 0


def param_shapes() -> Dict[str, Tuple[int, ...]]:
  """Flat parameter name ('conv1_1/kernel', ...) -> shape, for all 16 convolutions."""
  shapes = {}
  in_ch = 3
  for name, (_, _, out_ch) in zip(LAYER_NAMES, CONVS):
    shapes[f"{name}/kernel"] = (3, 3, in_ch, out_ch)
    shapes[f"{name}/bias"] = (out_ch,)
    in_ch = out_ch
  return shapes


class VGG19(nn.Module):
  """torchvision's VGG19 `features` as a linen module returning requested ReLU taps.

  Attributes:
    dtype: computation dtype (parameters stay float32), e.g. jnp.float32 or jnp.bfloat16.
    input_norm: "gfla" ([-1, 1] straight in) or "imagenet" (ImageNet-normalised); see the module doc.
  """
  dtype: Any = jnp.float32
  input_norm: str = "gfla"

  @nn.compact
  def __call__(self, images: jax.Array, taps: Optional[Sequence[str]] = None) -> Dict[str, jax.Array]:
    """Runs the network up to the deepest requested tap.

    Args:
      images: (B, H, W, 3) in [-1, 1].
      taps: names from TAP_NAMES (relu1_1 ... relu5_4); None = all 16. Only the layers up to the deepest
        one run (and need parameters).
    Returns:
      {tap: (B, H / 2^(block-1), W / 2^(block-1), C) features in `dtype`} for each requested tap.
    """
    taps = TAP_NAMES if taps is None else tuple(taps)
    unknown = [t for t in taps if t not in TAP_NAMES]
    if unknown:
      raise ValueError(f"VGG19: unknown taps {unknown}; accepted: {TAP_NAMES}.")
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"VGG19: images must be (B, H, W, 3) in [-1, 1], got {images.shape}.")
    if not taps:
      return {}
    deepest = max(TAP_NAMES.index(t) for t in taps)
    x = images.astype(jnp.float32)
    if self.input_norm == "imagenet":
      mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
      std = jnp.asarray(IMAGENET_STD, jnp.float32)
      x = ((x + 1.0) * 0.5 - mean) / std
    elif self.input_norm != "gfla":
      raise ValueError(f"VGG19: input_norm must be one of {INPUT_NORMS} (config losses.vgg_input), "
                       f"got {self.input_norm!r}.")
    x = x.astype(self.dtype)
    out = {}
    block = 1
    for n, ((b, _, width), conv_name, tap) in enumerate(zip(CONVS, LAYER_NAMES, TAP_NAMES)):
      if n > deepest:
        break
      if b != block:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        block = b
      x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                  name=conv_name)(x)
      x = nn.relu(x)
      if tap in taps:
        out[tap] = x
    return out


def flatten_params(params) -> Dict[str, np.ndarray]:
  """{'conv1_1': {'kernel', 'bias'}, ...} -> {'conv1_1/kernel': array, ...} (numpy)."""
  return {f"{layer}/{leaf}": np.asarray(value)
          for layer, leaves in params.items() for leaf, value in leaves.items()}


def unflatten_params(flat: Dict[str, np.ndarray]) -> Dict[str, Dict[str, np.ndarray]]:
  """Inverse of `flatten_params`."""
  params: Dict[str, Dict[str, np.ndarray]] = {}
  for key, value in flat.items():
    layer, _, leaf = key.partition("/")
    params.setdefault(layer, {})[leaf] = value
  return params


def save_params(path: str, params) -> None:
  """Writes parameters as an .npz with flat keys 'conv1_1/kernel', ... (float32)."""
  flat = {k: np.asarray(v, np.float32) for k, v in flatten_params(params).items()}
  with open(path, "wb") as f:
    np.savez(f, **flat)


def missing_weights_message(what: str) -> str:
  """What to do when the VGG19 weights file is not available: one sentence, `what` (no final period) first."""
  return (
      f"{what}: convert torchvision's ImageNet VGG19 `{TORCHVISION_FILE}` ({TORCHVISION_URL}; after any "
      "torchvision use it is usually in ~/.cache/torch/hub/checkpoints/) once with `python -m "
      f"rfgen_jax.tools.convert_vgg19 --input {TORCHVISION_FILE} --output vgg19.npz` (needs PyTorch, for "
      "the conversion only) and pass --config.losses.vgg19_weights=vgg19.npz, or, for tests and smoke runs "
      "only, pass --config.losses.allow_random_vgg=True (a random-weight VGG19).")


def load_params(path: str) -> Dict[str, Dict[str, np.ndarray]]:
  """Reads and checks a converted VGG19 .npz.

  Args:
    path: file written by `save_params` / `python -m rfgen_jax.tools.convert_vgg19`.
  Returns:
    the parameter tree (numpy float32).
  Raises:
    errors.MissingFileError (a FileNotFoundError): no such file (with how to make one).
    errors.BadInputError (a ValueError): the file cannot be read, or a key is missing, unexpected, or
      has the wrong shape (naming the file and the key).
  """
  if not os.path.isfile(path):
    raise errors.MissingFileError(missing_weights_message(
        f"VGG19 weights file {path!r} (--config.losses.vgg19_weights) does not exist"))
  expected = param_shapes()
  try:
    with np.load(path) as data:
      flat = {k: data[k] for k in data.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise errors.BadInputError(missing_weights_message(
        f"VGG19 weights file {path!r} (--config.losses.vgg19_weights) cannot be read as an .npz "
        f"({type(e).__name__}: {e})")) from None
  missing = [k for k in expected if k not in flat]
  if missing:
    raise errors.BadInputError(f"VGG19 weights file {path!r}: missing key {missing[0]!r} "
                     f"({len(missing)} missing); is it the output of rfgen_jax.tools.convert_vgg19?")
  unexpected = [k for k in flat if k not in expected]
  if unexpected:
    raise errors.BadInputError(f"VGG19 weights file {path!r}: unexpected key {unexpected[0]!r}; "
                     f"expected only {sorted(expected)}.")
  for key, shape in expected.items():
    if tuple(flat[key].shape) != shape:
      raise errors.BadInputError(f"VGG19 weights file {path!r}: key {key!r} has shape {tuple(flat[key].shape)}, "
                       f"expected {shape}.")
  return unflatten_params({k: v.astype(np.float32) for k, v in flat.items()})


def random_params(seed: int = RANDOM_INIT_SEED) -> Dict[str, Dict[str, np.ndarray]]:
  """Deterministic random VGG19 parameters, numpy float32 (for tests and smoke runs only).

  Kernels are He-normal with fan-out (std sqrt(2 / (9 * O))) and biases zero, torchvision's VGG init,
  so activations keep their scale through the 16 layers. Drawn with numpy (fast for 20M values).
  """
  rng = np.random.default_rng(seed)
  flat = {}
  for key, shape in param_shapes().items():
    if key.endswith("/kernel"):
      std = np.sqrt(2.0 / (shape[0] * shape[1] * shape[3]))
      flat[key] = (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
    else:
      flat[key] = np.zeros(shape, np.float32)
  return unflatten_params(flat)


def load_vgg19(config) -> Tuple[VGG19, Any]:
  """Builds the VGG19 module and its parameters from a config.

  Reads `config.losses.vgg19_weights` (path of the converted .npz), `config.losses.allow_random_vgg`
  and `config.losses.vgg_input` (default "gfla"); the compute dtype is `config.model.dtype` when the
  config has one.

  Args:
    config: experiment config (ml_collections.ConfigDict).
  Returns:
    (module, params): `module.apply({"params": params}, images, taps=...)` gives the feature dict.
  Raises:
    FileNotFoundError: no path configured and random weights not allowed, or the path does not exist
      (an explicit path that is missing is an error even with allow_random_vgg).
    ValueError: the file does not hold VGG19's parameters.
  """
  losses = config.losses
  dtype = jnp.dtype(config.model.get("dtype", "float32")) if "model" in config else jnp.float32
  input_norm = str(losses.get("vgg_input", "gfla"))
  if input_norm not in INPUT_NORMS:
    raise ValueError(f"losses.vgg_input must be one of {INPUT_NORMS}, got {input_norm!r}.")
  module = VGG19(dtype=dtype, input_norm=input_norm)
  path = losses.get("vgg19_weights", None)
  if path:
    params = load_params(os.fspath(path))
    logging.info("VGG19 weights loaded from %s.", path)
    return module, jax.tree.map(jnp.asarray, params)
  if losses.get("allow_random_vgg", False):
    logging.warning(
        "No VGG19 weights configured (losses.vgg19_weights is unset) and losses.allow_random_vgg=True: "
        "using a RANDOM-weight VGG19 (seed %d). Perceptual, style and sampling-correctness losses are "
        "then NOT the paper's; fine for tests and smoke runs only. To use ImageNet weights, run "
        "`python -m rfgen_jax.tools.convert_vgg19 --input %s --output vgg19.npz` and pass "
        "--config.losses.vgg19_weights=vgg19.npz.", RANDOM_INIT_SEED, TORCHVISION_FILE)
    return module, jax.tree.map(jnp.asarray, random_params(RANDOM_INIT_SEED))
  raise errors.MissingFileError(missing_weights_message(
      "No VGG19 weights file configured (--config.losses.vgg19_weights is unset and "
      "--config.losses.allow_random_vgg is False)"))
