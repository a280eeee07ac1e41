"""AlexNet features (torchvision layout) and LPIPS v0.1 (AlexNet-lin), in Flax linen.

AlexNet `features` of torchvision (`alexnet-owt-7be5be79.pth`):

  conv1 11x11/4 pad 2 (3->64), relu1, maxpool 3/2,
  conv2 5x5 pad 2 (64->192),   relu2, maxpool 3/2,
  conv3 3x3 pad 1 (192->384),  relu3,
  conv4 3x3 pad 1 (384->256),  relu4,
  conv5 3x3 pad 1 (256->256),  relu5.

LPIPS (Zhang et al. 2018, package `lpips` v0.1, net="alex"): inputs in [-1, 1] go through the
ScalingLayer `(x - shift) / scale`, AlexNet taps relu1..relu5 are unit-normalised over channels
(`x / (||x||_2 + 1e-10)`), the squared difference of the two images' taps is weighted by a 1x1 linear
head without bias per tap (`lin0..lin4`, weights >= 0 in the released file), averaged over space, and
summed over taps. Layout is NHWC.

Params layout: `{"alexnet": {"conv1".."conv5": {"kernel": (kh, kw, in, out), "bias": (out,)}},
"lin0".."lin4": {"kernel": (C,)}}`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rfgen_jax import errors   # weight files are the user's: their errors are user errors

TAPS = ("relu1", "relu2", "relu3", "relu4", "relu5")
CHANNELS = (64, 192, 384, 256, 256)
# lpips.ScalingLayer constants (per RGB channel, for inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10
# torchvision `features.<index>` of each conv.
_TORCH_CONV_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
_CONV_SPECS = {  # name: (out, kernel, stride, pad)
    "conv1": (64, 11, 4, 2),
    "conv2": (192, 5, 1, 2),
    "conv3": (384, 3, 1, 1),
    "conv4": (256, 3, 1, 1),
    "conv5": (256, 3, 1, 1),
}


def _max_pool(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class AlexNetFeatures(nn.Module):
  """torchvision AlexNet `features` up to relu5 (no last max pool)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> Dict[str, jax.Array]:
    """Taps.

    Args:
      x: (B, H, W, 3) input as torchvision expects it (here: LPIPS-scaled images); H, W >= 63.
    Returns:
      {"relu1": (B, H1, W1, 64), "relu2": (.., 192), "relu3": (.., 384), "relu4": (.., 256),
       "relu5": (.., 256)}.
    """
    taps = {}
    for i, name in enumerate(("conv1", "conv2", "conv3", "conv4", "conv5")):
      if name in ("conv2", "conv3"):
        x = _max_pool(x)
      out, k, s, p = _CONV_SPECS[name]
      x = nn.Conv(out, (k, k), strides=(s, s), padding=((p, p), (p, p)), name=name)(x)
      x = jax.nn.relu(x)
      taps[TAPS[i]] = x
    return taps


def normalize_channels(x: jax.Array, eps: float = NORM_EPS) -> jax.Array:
  """`x / (||x||_2 over channels + eps)` for (..., C) maps."""
  return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + eps)


class LPIPS(nn.Module):
  """LPIPS v0.1 AlexNet-lin distance between two image batches."""

  @nn.compact
  def __call__(self, images_a: jax.Array, images_b: jax.Array, per_layer: bool = False):
    """Distance.

    Args:
      images_a, images_b: (B, H, W, 3) RGB in [-1, 1].
      per_layer: also return the five per-tap terms.
    Returns:
      (B,) float32 distances; with `per_layer`, also a (B, 5) array of the terms (sum = distance).
    """
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    b = images_a.shape[0]
    x = jnp.concatenate([images_a, images_b], axis=0).astype(jnp.float32)
    taps = AlexNetFeatures(name="alexnet")((x - shift) / scale)
    terms = []
    for i, (tap, c) in enumerate(zip(TAPS, CHANNELS)):
      f = normalize_channels(taps[tap])
      diff = (f[:b] - f[b:]) ** 2
      w = self.param(f"lin{i}", nn.initializers.uniform(1.0 / c), (c,))
      terms.append(jnp.mean(jnp.sum(diff * w, axis=-1), axis=(1, 2)))
    terms = jnp.stack(terms, axis=-1)
    dist = jnp.sum(terms, axis=-1)
    return (dist, terms) if per_layer else dist


# ---------------------------------------------------------------------------------------------
# Weights.

def alexnet_params_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """torchvision AlexNet state dict (numpy arrays) -> `AlexNetFeatures` params. Torch-free.

  Args:
    state_dict: `features.{0,3,6,8,10}.{weight,bias}` (weight (O, I, kh, kw)); `classifier.*` ignored.
      A `net.slice{k}.{i}.*` layout (lpips' own module) is accepted too.
  Returns:
    {"conv1".."conv5": {"kernel": (kh, kw, I, O) float32, "bias": (O,)}}.
  """
  by_index = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    if parts[0] == "classifier":
      continue
    if parts[0] == "features" and len(parts) == 3:
      by_index[(int(parts[1]), parts[2])] = value
    elif len(parts) >= 4 and parts[-3].isdigit() and parts[-4].startswith("slice"):
      by_index[(int(parts[-2]), parts[-1])] = value
  params = {}
  for name, index in _TORCH_CONV_INDEX.items():
    out, k, _, _ = _CONV_SPECS[name]
    try:
      weight, bias = by_index[(index, "weight")], by_index[(index, "bias")]
    except KeyError as e:
      raise errors.BadInputError(f"AlexNet state dict lacks features.{index}.{e.args[0][1]} ({name}).") from None
    weight = np.asarray(weight, np.float32)
    if weight.shape[0] != out or weight.shape[2:] != (k, k):
      raise errors.BadInputError(
          f"AlexNet features.{index}.weight has shape {weight.shape}, expected ({out}, *, {k}, {k}).")
    params[name] = {"kernel": np.transpose(weight, (2, 3, 1, 0)), "bias": np.asarray(bias, np.float32)}
  return params


def heads_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """lpips v0.1 linear heads (`lin{k}.model.{0|1}.weight`, (1, C, 1, 1)) -> {"lin{k}": (C,)}. Torch-free."""
  heads = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    if parts[0].startswith("lin") and parts[-1] == "weight":
      heads[parts[0]] = np.asarray(value, np.float32).reshape(-1)
  for i, c in enumerate(CHANNELS):
    if f"lin{i}" not in heads:
      raise errors.BadInputError(f"LPIPS heads lack lin{i} (expected keys like lin{i}.model.1.weight).")
    if heads[f"lin{i}"].shape != (c,):
      raise errors.BadInputError(f"LPIPS head lin{i} has {heads[f'lin{i}'].shape[0]} weights, expected {c}.")
  return {f"lin{i}": heads[f"lin{i}"] for i in range(len(CHANNELS))}


def lpips_params(alexnet: Mapping[str, Any], heads: Mapping[str, Any]) -> dict:
  """Combines converted AlexNet params and heads into `LPIPS` params."""
  params = {"alexnet": {k: dict(v) for k, v in alexnet.items()}}
  params.update({k: np.asarray(v, np.float32) for k, v in heads.items()})
  return params


def save_npz(path: str, alexnet: Optional[Mapping[str, Any]] = None,
             heads: Optional[Mapping[str, Any]] = None) -> None:
  """Writes `alexnet/convK/{kernel,bias}` and/or `linK` arrays to one .npz."""
  flat = {}
  for name, leaves in (alexnet or {}).items():
    for leaf, value in leaves.items():
      flat[f"alexnet/{name}/{leaf}"] = np.asarray(value, np.float32)
  for name, value in (heads or {}).items():
    flat[name] = np.asarray(value, np.float32)
  if not flat:
    raise ValueError("save_npz: nothing to write.")
  with open(path, "wb") as f:
    np.savez(f, **flat)


def load_alexnet(path: str) -> dict:
  """AlexNet params from an .npz written by `convert_lpips` (raises ValueError if absent/misshaped)."""
  with np.load(path) as data:
    names = [k for k in data.files if k.startswith("alexnet/")]
    if not names:
      raise errors.BadInputError(f"{path} holds no AlexNet weights (alexnet/conv*); convert with --alexnet.")
    params: dict = {}
    for k in names:
      _, conv, leaf = k.split("/")
      params.setdefault(conv, {})[leaf] = data[k].astype(np.float32)
  for name, (out, k, _, _) in _CONV_SPECS.items():
    if name not in params or params[name].get("kernel", np.zeros(0)).shape[-1:] != (out,) \
        or params[name]["kernel"].shape[:2] != (k, k) or params[name].get("bias", np.zeros(0)).shape != (out,):
      raise errors.BadInputError(f"{path}: AlexNet weight {name} missing or misshaped.")
  return params


def load_heads(path: str) -> dict:
  """LPIPS heads {"lin0".."lin4": (C,)} from an .npz written by `convert_lpips` (ValueError if absent)."""
  with np.load(path) as data:
    heads = {k: data[k].astype(np.float32) for k in data.files if k.startswith("lin")}
  if not heads:
    raise errors.BadInputError(f"{path} holds no LPIPS heads (lin0..lin4); convert with --heads.")
  return heads_from_state_dict({f"{k}.weight": v for k, v in heads.items()})


def random_alexnet_params(seed: int = 0) -> dict:
  """Random He-normal AlexNet params, numpy float32 (tests and dry runs only)."""
  rng = np.random.default_rng(seed)
  params, cin = {}, 3
  for name, (out, k, _, _) in _CONV_SPECS.items():
    kernel = rng.standard_normal((k, k, cin, out)) * np.sqrt(2.0 / (k * k * cin))
    params[name] = {"kernel": kernel.astype(np.float32), "bias": np.zeros((out,), np.float32)}
    cin = out
  return params


__all__: Sequence[str] = (
    "AlexNetFeatures", "LPIPS", "TAPS", "CHANNELS", "SHIFT", "SCALE", "normalize_channels",
    "alexnet_params_from_state_dict", "heads_from_state_dict", "lpips_params", "save_npz",
    "load_alexnet", "load_heads", "random_alexnet_params")
