"""VGG19: conversion from a torch twin of torchvision's `vgg19().features`, taps, loading and errors."""
import functools
import logging

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

from rfgen_jax.nets import vgg19
from rfgen_jax.tools import convert_vgg19

# torchvision's cfg "E": numbers are conv widths, "M" a 2x2 max-pool.
_CFG_E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"]


def torch_vgg19_features(seed=0):
  """torch.nn.Sequential laid out exactly as torchvision's vgg19().features, random weights."""
  torch.manual_seed(seed)
  layers, in_ch = [], 3
  for v in _CFG_E:
    if v == "M":
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      conv = torch.nn.Conv2d(in_ch, v, kernel_size=3, padding=1)
      torch.nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
      torch.nn.init.normal_(conv.bias, std=0.1)
      layers += [conv, torch.nn.ReLU(inplace=True)]
      in_ch = v
  return torch.nn.Sequential(*layers)


def torch_taps(features, images_nhwc, input_norm="gfla"):
  """Runs the torch twin on [-1, 1] NHWC images; {tap: NHWC array}.

  "gfla": the images go in as they are (GFLA's VGGLoss / PerceptualCorrectness feed the [-1, 1]
  tensors to `models.vgg19(pretrained=True).features`); "imagenet": torchvision's normalisation.
  """
  x = torch.tensor(np.asarray(images_nhwc), dtype=torch.float32).permute(0, 3, 1, 2)
  if input_norm == "imagenet":
    mean = torch.tensor(vgg19.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(vgg19.IMAGENET_STD).view(1, 3, 1, 1)
    x = ((x + 1) / 2 - mean) / std
  out, block, index = {}, 1, 0
  with torch.no_grad():
    for layer in features:
      if len(out) == len(vgg19.TAP_NAMES):
        break   # the 5th pool follows relu5_4; no tap needs it
      x = layer(x)
      if isinstance(layer, torch.nn.MaxPool2d):
        block, index = block + 1, 0
      elif isinstance(layer, torch.nn.ReLU):
        index += 1
        out[f"relu{block}_{index}"] = x.permute(0, 2, 3, 1).numpy().copy()
  return out


@functools.lru_cache(maxsize=None)
def _twin():
  features = torch_vgg19_features()
  state = {"features." + k: v.numpy() for k, v in features.state_dict().items()}
  state["classifier.0.weight"] = np.zeros((4, 2), np.float32)   # ignored by the conversion
  return features, state


def _config(weights=None, allow_random=False, dtype="float32", vgg_input="gfla"):
  c = ml_collections.ConfigDict()
  c.losses = ml_collections.ConfigDict({"vgg19_weights": weights, "allow_random_vgg": allow_random,
                                        "vgg_input": vgg_input})
  c.model = ml_collections.ConfigDict({"dtype": dtype})
  return c


@pytest.mark.parametrize("input_norm", ["gfla", "imagenet"])
def test_conversion_matches_torch_twin_on_all_taps(input_norm):
  features, state = _twin()
  params = convert_vgg19.convert_state_dict(state)
  images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 24, 3)).astype(np.float32)
  want = torch_taps(features, images, input_norm)
  assert sorted(want) == sorted(vgg19.TAP_NAMES)
  got = jax.jit(lambda p, x: vgg19.VGG19(input_norm=input_norm).apply({"params": p}, x))(params, images)
  assert sorted(got) == sorted(vgg19.TAP_NAMES)
  for tap in vgg19.TAP_NAMES:
    g, w = np.asarray(got[tap]), want[tap]
    assert g.shape == w.shape, tap
    scale = np.abs(w).max()
    assert scale > 0, tap
    assert np.abs(g - w).max() <= 1e-4 * scale, (tap, np.abs(g - w).max() / scale)


def test_taps_stop_at_deepest_requested():
  _, state = _twin()
  params = convert_vgg19.convert_state_dict(state)
  only_block1 = {k: params[k] for k in ("conv1_1", "conv1_2")}
  images = np.zeros((1, 8, 8, 3), np.float32)
  out = vgg19.VGG19().apply({"params": only_block1}, images, taps=("relu1_2",))
  assert list(out) == ["relu1_2"] and out["relu1_2"].shape == (1, 8, 8, 64)
  with pytest.raises(Exception):   # conv2_1 is needed and missing
    vgg19.VGG19().apply({"params": only_block1}, images, taps=("relu2_1",))
  with pytest.raises(ValueError, match="relu3_5"):
    vgg19.VGG19().apply({"params": params}, images, taps=("relu3_5",))


def test_bfloat16_close_to_float32():
  _, state = _twin()
  params = convert_vgg19.convert_state_dict(state)
  images = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  taps = ("relu2_1",)
  f32 = vgg19.VGG19().apply({"params": params}, images, taps=taps)["relu2_1"]
  bf16 = vgg19.VGG19(dtype=jnp.bfloat16).apply({"params": params}, images, taps=taps)["relu2_1"]
  assert bf16.dtype == jnp.bfloat16
  err = np.abs(np.asarray(bf16, np.float32) - np.asarray(f32)).max() / np.abs(np.asarray(f32)).max()
  assert err < 0.05


def test_cli_and_load_vgg19_round_trip(tmp_path):
  features, state = _twin()
  pth = str(tmp_path / "vgg19-dcbb9e9d.pth")
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
  out = str(tmp_path / "vgg19.npz")
  assert convert_vgg19.main(["--input", pth, "--output", out]) == 0
  with np.load(out) as data:
    assert "conv1_1/kernel" in data.files and data["conv5_4/kernel"].shape == (3, 3, 512, 512)
  module, params = vgg19.load_vgg19(_config(out))
  np.testing.assert_array_equal(np.asarray(params["conv3_2"]["kernel"]),
                                state["features.12.weight"].transpose(2, 3, 1, 0))
  images = np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  got = module.apply({"params": params}, images, taps=("relu3_1",))["relu3_1"]
  want = torch_taps(features, images)["relu3_1"]
  assert np.abs(np.asarray(got) - want).max() <= 1e-4 * np.abs(want).max()


def test_load_vgg19_missing_weights_message():
  with pytest.raises(FileNotFoundError) as info:
    vgg19.load_vgg19(_config(None, allow_random=False))
  msg = str(info.value)
  for part in ("vgg19-dcbb9e9d.pth", "download.pytorch.org/models/vgg19-dcbb9e9d.pth",
               "~/.cache/torch/hub/checkpoints/",
               "python -m rfgen_jax.tools.convert_vgg19 --input vgg19-dcbb9e9d.pth --output vgg19.npz",
               "--config.losses.vgg19_weights=vgg19.npz"):
    assert part in msg, part
  # An explicit path that does not exist is an error even when random weights are allowed.
  with pytest.raises(FileNotFoundError, match="nope.npz"):
    vgg19.load_vgg19(_config("/nonexistent/nope.npz", allow_random=True))


def test_load_vgg19_random_warns_and_is_deterministic(caplog):
  with caplog.at_level(logging.WARNING):
    module, params = vgg19.load_vgg19(_config(None, allow_random=True, dtype="bfloat16"))
  assert any("RANDOM-weight VGG19" in r.getMessage() and r.levelno == logging.WARNING
             for r in caplog.records)
  assert module.dtype == jnp.bfloat16
  shapes = vgg19.param_shapes()
  flat = vgg19.flatten_params(params)
  assert {k: v.shape for k, v in flat.items()} == shapes
  _, again = vgg19.load_vgg19(_config(None, allow_random=True))
  for k, v in vgg19.flatten_params(again).items():
    np.testing.assert_array_equal(v, flat[k])


def test_load_vgg19_shape_and_key_errors(tmp_path):
  _, state = _twin()
  flat = vgg19.flatten_params(convert_vgg19.convert_state_dict(state))
  bad = dict(flat)
  bad["conv2_2/kernel"] = np.zeros((3, 3, 128, 64), np.float32)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **bad)
  with pytest.raises(ValueError, match=r"bad\.npz.*conv2_2/kernel"):
    vgg19.load_vgg19(_config(path))
  missing = {k: v for k, v in flat.items() if k != "conv4_1/bias"}
  path = str(tmp_path / "missing.npz")
  np.savez(path, **missing)
  with pytest.raises(ValueError, match=r"missing\.npz.*conv4_1/bias"):
    vgg19.load_vgg19(_config(path))
  with pytest.raises(KeyError, match="features.34.weight"):
    convert_vgg19.convert_state_dict({k: v for k, v in state.items() if k != "features.34.weight"})


def test_vgg_input_switch_reaches_the_module_and_is_checked():
  assert vgg19.load_vgg19(_config(allow_random=True))[0].input_norm == "gfla"   # GFLA's default
  assert vgg19.load_vgg19(_config(allow_random=True, vgg_input="imagenet"))[0].input_norm == "imagenet"
  with pytest.raises(ValueError, match="losses.vgg_input"):
    vgg19.load_vgg19(_config(allow_random=True, vgg_input="caffe"))
  from configs import common
  assert common.get_base_config().losses.vgg_input == "gfla"
