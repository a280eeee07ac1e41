"""FID Inception-v3: the linen port against a PyTorch twin of pytorch-fid's FID Inception.

The twin is written here from pytorch-fid's `fid_inception_v3` structure (torchvision's Inception-v3
blocks with FIDInceptionA/C/E_1/E_2 pooling patches), with the same state-dict names, random conv
weights and random batch-norm running statistics. Its state dict goes through the torch-free
conversion; both networks run on the same input.
"""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch  # a test dependency (requirements-test.txt): missing is an error, not a skip
F = torch.nn.functional

from rfgen_jax.nets import inception  # noqa: E402


# --- PyTorch twin --------------------------------------------------------------------------

class TBasicConv(torch.nn.Module):

  def __init__(self, cin, cout, **kw):
    super().__init__()
    self.conv = torch.nn.Conv2d(cin, cout, bias=False, **kw)
    self.bn = torch.nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class TA(torch.nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = TBasicConv(cin, 64, kernel_size=1)
    self.branch5x5_1 = TBasicConv(cin, 48, kernel_size=1)
    self.branch5x5_2 = TBasicConv(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = TBasicConv(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TBasicConv(96, 96, kernel_size=3, padding=1)
    self.branch_pool = TBasicConv(cin, pool_features, kernel_size=1)

  def forward(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class TB(torch.nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = TBasicConv(cin, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = TBasicConv(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = TBasicConv(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch3x3(x), bd, F.max_pool2d(x, 3, 2)], 1)


class TC(torch.nn.Module):

  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = TBasicConv(cin, 192, kernel_size=1)
    self.branch7x7_1 = TBasicConv(cin, c7, kernel_size=1)
    self.branch7x7_2 = TBasicConv(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = TBasicConv(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = TBasicConv(cin, c7, kernel_size=1)
    self.branch7x7dbl_2 = TBasicConv(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = TBasicConv(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = TBasicConv(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = TBasicConv(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = TBasicConv(cin, 192, kernel_size=1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f"branch7x7dbl_{i}")(bd)
    bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    return torch.cat([self.branch1x1(x), b7, bd, bp], 1)


class TD(torch.nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = TBasicConv(cin, 192, kernel_size=1)
    self.branch3x3_2 = TBasicConv(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = TBasicConv(cin, 192, kernel_size=1)
    self.branch7x7x3_2 = TBasicConv(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = TBasicConv(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = TBasicConv(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f"branch7x7x3_{i}")(b7)
    return torch.cat([b3, b7, F.max_pool2d(x, 3, 2)], 1)


class TE(torch.nn.Module):

  def __init__(self, cin, use_max):
    super().__init__()
    self.use_max = use_max
    self.branch1x1 = TBasicConv(cin, 320, kernel_size=1)
    self.branch3x3_1 = TBasicConv(cin, 384, kernel_size=1)
    self.branch3x3_2a = TBasicConv(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = TBasicConv(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = TBasicConv(cin, 448, kernel_size=1)
    self.branch3x3dbl_2 = TBasicConv(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = TBasicConv(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = TBasicConv(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = TBasicConv(cin, 192, kernel_size=1)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    if self.use_max:
      pooled = F.max_pool2d(x, 3, 1, 1)
    else:
      pooled = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class TInception(torch.nn.Module):
  """pytorch-fid's FID Inception (blocks 0-3, pool3 output), input in [0, 1] like pytorch-fid."""

  def __init__(self, resize):
    super().__init__()
    self.resize = resize
    self.Conv2d_1a_3x3 = TBasicConv(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = TBasicConv(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = TBasicConv(32, 64, kernel_size=3, padding=1)
    self.Conv2d_3b_1x1 = TBasicConv(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = TBasicConv(80, 192, kernel_size=3)
    self.Mixed_5b = TA(192, 32)
    self.Mixed_5c = TA(256, 64)
    self.Mixed_5d = TA(288, 64)
    self.Mixed_6a = TB(288)
    self.Mixed_6b = TC(768, 128)
    self.Mixed_6c = TC(768, 160)
    self.Mixed_6d = TC(768, 160)
    self.Mixed_6e = TC(768, 192)
    self.Mixed_7a = TD(768)
    self.Mixed_7b = TE(1280, use_max=False)
    self.Mixed_7c = TE(2048, use_max=True)
    self.fc = torch.nn.Linear(2048, 1008)  # present in the real file; ignored by the conversion

  def forward(self, x01):
    x = x01
    if self.resize:
      x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, 3, 2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, 2)
    for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
      x = getattr(self, f"Mixed_{name}")(x)
    return F.adaptive_avg_pool2d(x, (1, 1))[:, :, 0, 0]


def _randomised_twin(seed=0, resize=False):
  torch.manual_seed(seed)
  net = TInception(resize)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.Conv2d):
        fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
      elif isinstance(m, torch.nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0.0, 0.1)
        m.running_mean.normal_(0.0, 0.2)
        m.running_var.uniform_(0.5, 2.0)
  return net.eval()


def _state_dict_numpy(net):
  return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def _compare(images01, net, resize_to):
  with torch.no_grad():
    ref = net(torch.from_numpy(images01.transpose(0, 3, 1, 2))).numpy()
  params = inception.params_from_state_dict(_state_dict_numpy(net))
  model = inception.InceptionV3(resize_to=resize_to)
  ours = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, jnp.asarray(images01 * 2 - 1))
  ours = np.asarray(ours)
  assert ours.shape == ref.shape == (images01.shape[0], 2048)
  scale = np.abs(ref).max()
  assert scale > 1e-3, "twin produced degenerate features; the comparison would be vacuous"
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4 * scale)
  return ours, ref


def test_matches_torch_twin_small_input():
  """Random weights incl. BN statistics, no resize; 139x147 input leaves 3x3 maps in Mixed_7b/7c
  (so their pool branches matter; at the minimum 75x75 those maps are 1x1)."""
  net = _randomised_twin(seed=0)
  rng = np.random.default_rng(0)
  images01 = rng.uniform(0, 1, size=(2, 139, 147, 3)).astype(np.float32)
  ours, ref = _compare(images01, net, resize_to=None)
  # Features of different images must differ (catches a constant output).
  assert np.abs(ref[0] - ref[1]).max() > 1e-4 * np.abs(ref).max()


@pytest.mark.slow
def test_matches_torch_twin_299_with_resize():
  net = _randomised_twin(seed=1, resize=True)
  rng = np.random.default_rng(1)
  images01 = rng.uniform(0, 1, size=(2, 128, 64, 3)).astype(np.float32)
  _compare(images01, net, resize_to=299)


@pytest.mark.parametrize("shape", [(128, 64), (256, 176), (350, 320)])
def test_resize_matches_torch_interpolate(shape):
  """Up- and down-sampling to 299 equals F.interpolate(bilinear, align_corners=False, no antialias)."""
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2,) + shape + (3,)).astype(np.float32)
  ref = F.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=(299, 299), mode="bilinear",
                      align_corners=False).numpy().transpose(0, 2, 3, 1)
  ours = np.asarray(inception.resize_bilinear(jnp.asarray(x), (299, 299)))
  # Two programs (XLA's and torch's kernels) whose rounding depends on the CPU. Both compute each
  # output's sample position, (i + 0.5) * in / 299 - 0.5, in float32: exact to about one ulp of the
  # input size (2**-15 for sizes 256-511) on each side, whether or not the compiler fuses the
  # multiply-add (FMA). A tap weight can move by that much, and an output by that times the step
  # between the neighbouring inputs, along each axis. Measured (the largest |ours - ref|): 4.8e-7 with
  # FMA (this AVX2 host's default); 5.9e-5 in one output column of the 350x320 input with
  # `XLA_FLAGS=--xla_cpu_max_isa=AVX` (no FMA), which failed the earlier fixed atol=2e-5. The bound
  # below is 2 ulps per axis (8.5e-4 for 350x320) plus 2e-6 for the sums; a wrong convention
  # (align_corners, half-pixel offset) is off by ~0.1-1.
  tol = 2e-6 + sum(2 * np.spacing(np.float32(n)) * np.abs(np.diff(x, axis=axis)).max()
                   for n, axis in ((shape[0], 1), (shape[1], 2)))
  np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)


def test_avg_pool_excludes_padding():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(1, 6, 5, 2)).astype(np.float32)
  ref = F.avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3, 1, 1,
                     count_include_pad=False).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(inception.avg_pool_exclude_pad(jnp.asarray(x))), ref, atol=1e-6)


def test_conversion_rejects_incomplete_state_dict():
  sd = _state_dict_numpy(_randomised_twin(seed=0))
  del sd["Mixed_6c.branch7x7dbl_3.bn.running_var"]
  with pytest.raises(ValueError, match="Mixed_6c/branch7x7dbl_3/bn/var"):
    inception.params_from_state_dict(sd)


def test_convert_script_roundtrip(tmp_path):
  """`python -m rfgen_jax.tools.convert_inception` on a .pth written by torch, then load_params."""
  net = _randomised_twin(seed=4)
  pth = tmp_path / "pt_inception.pth"
  torch.save(net.state_dict(), pth)
  out = tmp_path / "inception_fid.npz"
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-m", "rfgen_jax.tools.convert_inception", "--input", str(pth),
                  "--output", str(out)], check=True, cwd=root, env=env, capture_output=True)
  params = inception.load_params(str(out))
  expected = inception.params_from_state_dict(_state_dict_numpy(net))
  np.testing.assert_array_equal(params["Mixed_7c"]["branch_pool"]["conv"]["kernel"],
                                expected["Mixed_7c"]["branch_pool"]["conv"]["kernel"])
  np.testing.assert_array_equal(params["Conv2d_1a_3x3"]["bn"]["mean"],
                                expected["Conv2d_1a_3x3"]["bn"]["mean"])


# --- GFLA's FID network: torchvision's inception_v3 with GFLA's wrapper ---------------------------
# Written from GFLA's `script/metrics.py` / `script/inception.py` (an early pytorch-fid): the blocks of
# torchvision's `inception_v3` up to the final average pool, the input bilinearly resized to 299
# (F.upsample's default, align_corners=False) and then mapped per channel by
# x * (std / 0.5) + (mean - 0.5) / 0.5 with the ImageNet statistics.

from tests.torchvision_compat import import_pytorch_fid, import_torchvision  # noqa: E402


def _randomise_bn(net, seed):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
        m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
        m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
  return net.eval()


def _torchvision_inception(seed):
  tv = import_torchvision()
  torch.manual_seed(seed)
  net = tv.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
  return _randomise_bn(net, seed)


def _gfla_features(net, images01, resize):
  """GFLA's InceptionV3 wrapper (blocks 0-3, pool3) around a torchvision Inception3, [0, 1] NCHW input."""
  blocks = torch.nn.Sequential(
      net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2),
      net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2),
      net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
      net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1)))
  x = torch.from_numpy(images01.transpose(0, 3, 1, 2))
  with torch.no_grad():
    if resize:
      x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    x = x.clone()
    x[:, 0] = x[:, 0] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x[:, 1] = x[:, 1] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x[:, 2] = x[:, 2] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return blocks(x)[:, :, 0, 0].numpy()


def _ours(state_dict, images01, resize_to, variant):
  params = inception.params_from_state_dict(state_dict, variant=variant)
  model = inception.InceptionV3(resize_to=resize_to, variant=variant)
  return np.asarray(jax.jit(lambda p, x: model.apply({"params": p}, x))(params, jnp.asarray(images01 * 2 - 1)))


def _close(ours, ref):
  assert ours.shape == ref.shape
  scale = np.abs(ref).max()
  assert scale > 1e-3, "degenerate reference features; the comparison would be vacuous"
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4 * scale)
  assert np.abs(ref[0] - ref[1]).max() > 1e-4 * scale


def test_gfla_variant_matches_torchvision_inception():
  """torchvision's own inception_v3 (random weights and BN statistics, no download) in GFLA's wrapper."""
  net = _torchvision_inception(seed=5)
  images01 = np.random.default_rng(5).uniform(0, 1, size=(2, 139, 147, 3)).astype(np.float32)
  _close(_ours(_state_dict_numpy(net), images01, None, "gfla"), _gfla_features(net, images01, False))


@pytest.mark.slow
def test_gfla_variant_matches_torchvision_inception_299():
  net = _torchvision_inception(seed=6)
  images01 = np.random.default_rng(6).uniform(0, 1, size=(2, 128, 64, 3)).astype(np.float32)
  _close(_ours(_state_dict_numpy(net), images01, 299, "gfla"), _gfla_features(net, images01, True))


def test_gfla_input_transform():
  """GFLA's per-channel map of [0, 1] images, from its script's constants (float64 oracle)."""
  x01 = np.random.default_rng(7).uniform(0, 1, size=(2, 5, 4, 3))
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  ref = x01 * (std / 0.5) + (mean - 0.5) / 0.5
  ours = np.asarray(inception.gfla_input_transform(jnp.asarray(x01 * 2 - 1, jnp.float32)))
  np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_avg_pool_includes_padding():
  x = np.random.default_rng(8).normal(size=(1, 6, 5, 2)).astype(np.float32)
  ref = F.avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3, 1, 1).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(inception.avg_pool_include_pad(jnp.asarray(x))), ref, atol=1e-6)


def _pytorch_fid_network(monkeypatch, seed, resize):
  """pytorch-fid's own InceptionV3 (FID blocks), its weight download patched to random weights."""
  pf_inception, _ = import_pytorch_fid()
  torch.manual_seed(seed)
  donor = _randomised_twin(seed=seed)     # same names and shapes as pt_inception-2015-12-05 (fc: 1008)
  state = donor.state_dict()
  monkeypatch.setattr(pf_inception, "load_state_dict_from_url", lambda *a, **k: state)
  net = pf_inception.InceptionV3([3], resize_input=resize, normalize_input=True).eval()
  return net, {k: v.numpy() for k, v in state.items()}


def test_pytorch_fid_variant_matches_the_pytorch_fid_package(monkeypatch):
  net, state = _pytorch_fid_network(monkeypatch, seed=9, resize=False)
  images01 = np.random.default_rng(9).uniform(0, 1, size=(2, 139, 147, 3)).astype(np.float32)
  with torch.no_grad():
    ref = net(torch.from_numpy(images01.transpose(0, 3, 1, 2)))[0][:, :, 0, 0].numpy()
  _close(_ours(state, images01, None, "pytorch_fid"), ref)


def test_variants_are_told_apart(tmp_path):
  """A torchvision file converted as pytorch_fid (or the converse) and a file of the other variant fail."""
  tv_state = _state_dict_numpy(_torchvision_inception(seed=10))
  with pytest.raises(ValueError, match="1000-class classifier"):
    inception.params_from_state_dict(tv_state, variant="pytorch_fid")
  fid_state = _state_dict_numpy(_randomised_twin(seed=10))
  with pytest.raises(ValueError, match="1008-class classifier"):
    inception.params_from_state_dict(fid_state, variant="gfla")
  path = str(tmp_path / "gfla.npz")
  inception.save_params(path, inception.params_from_state_dict(tv_state, variant="gfla"), variant="gfla")
  with pytest.raises(ValueError, match="holds the gfla Inception"):
    inception.load_params(path, variant="pytorch_fid")
  inception.load_params(path, variant="gfla")


def test_convert_script_gfla_variant(tmp_path):
  """convert_inception --variant=gfla on torchvision's state dict; the wrong variant exits 2 in one line."""
  net = _torchvision_inception(seed=11)
  pth = tmp_path / "inception_v3_google.pth"
  torch.save(net.state_dict(), pth)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  base = [sys.executable, "-m", "rfgen_jax.tools.convert_inception", "--input", str(pth)]
  ok = subprocess.run(base + ["--variant=gfla", "--output", str(tmp_path / "g.npz")], cwd=root, env=env,
                      capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert "eval.gfla_inception_weights" in ok.stdout
  params = inception.load_params(str(tmp_path / "g.npz"), variant="gfla")
  np.testing.assert_array_equal(params["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                net.Mixed_7c.branch_pool.bn.running_var.numpy())
  bad = subprocess.run(base + ["--variant=pytorch_fid", "--output", str(tmp_path / "b.npz")], cwd=root,
                       env=env, capture_output=True, text=True)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--variant=gfla" in bad.stderr


@pytest.mark.slow
def test_fid_pytorch_of_the_folder_scorer_equals_pytorch_fid(tmp_path, monkeypatch):
  """End to end at 299: pytorch-fid's own statistics and distance of two PNG folders vs score_folder."""
  pf_inception, fid_score = import_pytorch_fid()
  from rfgen_jax.evaluation import evaluators, image_files  # pylint: disable=g-import-not-at-top
  from rfgen_jax.tools import score_folder  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(evaluators, "_NETWORKS", {})
  donor = _randomised_twin(seed=12)
  state = donor.state_dict()
  monkeypatch.setattr(pf_inception, "load_state_dict_from_url", lambda *a, **k: state)
  rng = np.random.default_rng(12)
  gen, real = tmp_path / "gen", tmp_path / "real"
  gen.mkdir(), real.mkdir()
  base = rng.integers(0, 256, (6, 64, 48, 3), dtype=np.uint8)
  for i in range(6):
    image_files.write_png(str(real / f"r{i}.png"), base[i])
    noisy = np.clip(base[i].astype(int) + rng.integers(-40, 40, base[i].shape), 0, 255).astype(np.uint8)
    image_files.write_png(str(gen / f"s{i}_2_r{i}.png"), noisy)
  model = pf_inception.InceptionV3([3]).eval()
  stats = [fid_score.calculate_activation_statistics(sorted(str(p) for p in d.iterdir()), model, batch_size=3,
                                                      num_workers=0) for d in (gen, real)]
  ref = fid_score.calculate_frechet_distance(*stats[0], *stats[1])
  path = str(tmp_path / "fid.npz")
  inception.save_params(path, inception.params_from_state_dict(_state_dict_numpy(donor), "pytorch_fid"),
                        variant="pytorch_fid")
  report = score_folder.score(str(gen), str(real), evaluator_names=["fid_pytorch"], batch_size=3,
                              weights={"inception_weights": path})
  np.testing.assert_allclose(report["results"]["1"]["fid_pytorch"], ref, rtol=1e-3)
