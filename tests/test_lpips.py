"""LPIPS v0.1 AlexNet-lin against PyTorch references, with a random AlexNet.

Two oracles:
1. A PyTorch twin written here following lpips 0.1.4's code (`ScalingLayer`, `pretrained_networks.alexnet`
   slices over torchvision's AlexNet `features`, `normalize_tensor` eps 1e-10, `NetLinLayer` 1x1 conv
   without bias, `spatial_average`, sum over layers). Always runs.
2. The `lpips` package itself, when its files are installed (`pip install lpips --no-deps`; it is not
   in requirements-test.txt because its dependencies pull torchvision and a CUDA torch): imported with
   a stub `torchvision.models` whose `alexnet()` returns the same random AlexNet twin (and a stub
   `tqdm` if that is missing), so the real `lpips.LPIPS` forward is checked. Skipped otherwise.

The heads are the shipped `lpips/weights/v0.1/alex.pth` when the lpips package files are present
(located with importlib without importing lpips), else random non-negative heads.
"""
import importlib.util
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch  # a test dependency (requirements-test.txt): missing is an error, not a skip
F = torch.nn.functional

from rfgen_jax.nets import alexnet as anet  # noqa: E402


def _alexnet_features_twin(seed):
  """torchvision.models.alexnet().features layout, random weights."""
  torch.manual_seed(seed)
  nn = torch.nn
  features = nn.Sequential(
      nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2),
      nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2),
      nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
      nn.MaxPool2d(kernel_size=3, stride=2))
  with torch.no_grad():
    for m in features:
      if isinstance(m, nn.Conv2d):
        fan_in = m.weight[0].numel()
        m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
        m.bias.normal_(0.0, 0.05)
  return features.eval()


def _shipped_heads_path():
  spec = importlib.util.find_spec("lpips")
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "v0.1", "alex.pth")
  return path if os.path.exists(path) else None


def _heads_state_dict():
  """{lin{k}.model.1.weight: (1, C, 1, 1)} torch tensors: shipped if available, else random >= 0."""
  path = _shipped_heads_path()
  if path is not None:
    return torch.load(path, map_location="cpu", weights_only=True), True
  gen = torch.Generator().manual_seed(7)
  return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) * 0.2
          for i, c in enumerate(anet.CHANNELS)}, False


def _torch_lpips(features, heads_sd, in0, in1):
  """lpips.LPIPS(net='alex', version='0.1').forward re-written (NCHW tensors in [-1, 1])."""
  shift = torch.tensor([-.030, -.088, -.188])[None, :, None, None]
  scale = torch.tensor([.458, .448, .450])[None, :, None, None]
  slices = [range(0, 2), range(2, 5), range(5, 8), range(8, 10), range(10, 12)]

  def taps(x):
    out, h = [], (x - shift) / scale
    for sl in slices:
      for i in sl:
        h = features[i](h)
      out.append(h)
    return out

  def normalize_tensor(x, eps=1e-10):
    return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)

  with torch.no_grad():
    o0, o1 = taps(in0), taps(in1)
    val = 0
    for k in range(5):
      d = (normalize_tensor(o0[k]) - normalize_tensor(o1[k])) ** 2
      lin = F.conv2d(d, heads_sd[f"lin{k}.model.1.weight"])
      val = val + lin.mean([2, 3], keepdim=True)
  return val[:, 0, 0, 0].numpy()


def _images(seed, b=3, h=128, w=64):
  """Random and structured images in [-1, 1], and a perturbed copy."""
  rng = np.random.default_rng(seed)
  yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
  smooth = np.stack([np.sin(3 * xx + yy), np.cos(2 * yy), xx * yy], -1)
  a = np.stack([smooth * 0.8, rng.uniform(-1, 1, (h, w, 3)), np.clip(smooth + 0.3 * rng.normal(size=(h, w, 3)), -1, 1)])[:b]
  b_ = np.clip(a + 0.25 * rng.normal(size=a.shape), -1, 1)
  return a.astype(np.float32), b_.astype(np.float32)


def _ours(features, heads_sd, a, b):
  sd = {f"features.{k}": v.detach().numpy() for k, v in features.state_dict().items()}
  params = anet.lpips_params(anet.alexnet_params_from_state_dict(sd),
                             anet.heads_from_state_dict({k: v.numpy() for k, v in heads_sd.items()}))
  fn = jax.jit(lambda p, x, y: anet.LPIPS().apply({"params": p}, x, y))
  return np.asarray(fn(params, jnp.asarray(a), jnp.asarray(b)))


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_lpips_matches_torch_twin():
  features = _alexnet_features_twin(0)
  heads_sd, _ = _heads_state_dict()
  a, b = _images(0)
  ref = _torch_lpips(features, heads_sd, _nchw(a), _nchw(b))
  ours = _ours(features, heads_sd, a, b)
  assert ours.shape == (3,)
  assert np.all(ref > 1e-3), ref
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
  # Identical images: distance 0.
  same = _ours(features, heads_sd, a, a)
  np.testing.assert_allclose(same, 0.0, atol=1e-7)


def test_lpips_taps_shapes_other_size():
  features = _alexnet_features_twin(1)
  heads_sd, _ = _heads_state_dict()
  a, b = _images(1, b=2, h=96, w=80)
  np.testing.assert_allclose(_ours(features, heads_sd, a, b),
                             _torch_lpips(features, heads_sd, _nchw(a), _nchw(b)), rtol=1e-5, atol=1e-6)


@pytest.fixture
def lpips_package(monkeypatch):
  """Imports the real lpips package with stub torchvision.models (and tqdm) modules."""
  if _shipped_heads_path() is None:
    pytest.skip("lpips package files not installed (pip install lpips --no-deps)")
  twin_holder = {}

  def alexnet(pretrained=False, **unused_kwargs):
    del pretrained
    return types.SimpleNamespace(features=twin_holder["features"])

  tv = types.ModuleType("torchvision")
  tv_models = types.ModuleType("torchvision.models")
  tv_models.alexnet = alexnet
  tv.models = tv_models
  monkeypatch.setitem(sys.modules, "torchvision", tv)
  monkeypatch.setitem(sys.modules, "torchvision.models", tv_models)
  if importlib.util.find_spec("tqdm") is None:
    tqdm = types.ModuleType("tqdm")
    tqdm.tqdm = lambda x, *a, **k: x
    monkeypatch.setitem(sys.modules, "tqdm", tqdm)
  for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
    monkeypatch.delitem(sys.modules, name)
  import lpips  # pylint: disable=g-import-not-at-top
  yield lpips, twin_holder
  for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
    del sys.modules[name]


def test_lpips_matches_lpips_package(lpips_package):
  lpips, holder = lpips_package
  features = _alexnet_features_twin(2)
  holder["features"] = features
  model = lpips.LPIPS(net="alex", version="0.1", verbose=False)  # loads the shipped heads
  heads_sd = {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
  a, b = _images(2)
  with torch.no_grad():
    ref = model(_nchw(a), _nchw(b))[:, 0, 0, 0].numpy()
  np.testing.assert_allclose(_ours(features, heads_sd, a, b), ref, rtol=1e-5, atol=1e-6)


def test_convert_script_and_loaders(tmp_path):
  features = _alexnet_features_twin(3)
  heads_sd, _ = _heads_state_dict()
  alex_pth, heads_pth = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
  torch.save({f"features.{k}": v for k, v in features.state_dict().items()} |
             {"classifier.1.weight": torch.zeros(4096, 9216)}, alex_pth)
  torch.save(heads_sd, heads_pth)
  out = tmp_path / "lpips_alex.npz"
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run([sys.executable, "-m", "rfgen_jax.tools.convert_lpips", "--alexnet", str(alex_pth),
                  "--heads", str(heads_pth), "--output", str(out)], check=True, cwd=root,
                 env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True)
  params = anet.lpips_params(anet.load_alexnet(str(out)), anet.load_heads(str(out)))
  a, b = _images(3, b=2)
  ours = np.asarray(anet.LPIPS().apply({"params": params}, jnp.asarray(a), jnp.asarray(b)))
  np.testing.assert_allclose(ours, _torch_lpips(features, heads_sd, _nchw(a), _nchw(b)), rtol=1e-5, atol=1e-6)


def test_heads_conversion_rejects_wrong_shapes():
  with pytest.raises(ValueError, match="lin2"):
    anet.heads_from_state_dict({f"lin{i}.model.1.weight": np.ones((1, 8 if i == 2 else c, 1, 1))
                                for i, c in enumerate(anet.CHANNELS)})
  with pytest.raises(ValueError, match="features.10"):
    sd = {f"features.{k}": v.numpy() for k, v in _alexnet_features_twin(0).state_dict().items()}
    del sd["features.10.bias"]
    anet.alexnet_params_from_state_dict(sd)
