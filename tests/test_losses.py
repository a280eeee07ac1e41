"""Losses against independent float64 references (numpy loops, torch autograd)."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rfgen_jax import losses
from rfgen_jax.losses import flow as flow_lib

EPS = 1e-8


# ----------------------------------------------------------------------------- numpy references


def np_bilinear_warp(x, flow):
  """Zero-padded bilinear warp, float64 loops: out[b, y, x] = x[b] at (y + flow_y, x + flow_x)."""
  b, h, w, c = x.shape
  out = np.zeros((b, h, w, c))
  for n in range(b):
    for y in range(h):
      for xx in range(w):
        sx, sy = xx + flow[n, y, xx, 0], y + flow[n, y, xx, 1]
        x0, y0 = math.floor(sx), math.floor(sy)
        ax, ay = sx - x0, sy - y0
        for yi, wy in ((y0, 1 - ay), (y0 + 1, ay)):
          for xi, wx in ((x0, 1 - ax), (x0 + 1, ax)):
            if 0 <= yi < h and 0 <= xi < w:
              out[n, y, xx] += wy * wx * x[n, yi, xi]
  return out


def np_cos(a, b):
  return float(np.dot(a, b) / ((np.linalg.norm(a) + EPS) * (np.linalg.norm(b) + EPS)))


def np_sampling_correctness(source, target, flow):
  source, target, flow = (np.asarray(v, np.float64) for v in (source, target, flow))
  b, h, w, _ = source.shape
  warped = np_bilinear_warp(source, flow)
  terms = []
  for n in range(b):
    src_all = source[n].reshape(h * w, -1)
    for y in range(h):
      for x in range(w):
        t = target[n, y, x]
        best = max(np_cos(s, t) for s in src_all)
        terms.append(math.exp(-np_cos(warped[n, y, x], t) / (best + EPS)))
  return float(np.mean(terms) - math.exp(-1))


def torch_sampling_correctness(source, target, flow):
  """Same loss in torch float64 with grid_sample (align_corners=True) and a detached maximum."""
  b, h, w, c = source.shape
  src = source.permute(0, 3, 1, 2)
  ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
  gx = 2 * (xs + flow[..., 0]) / (w - 1) - 1
  gy = 2 * (ys + flow[..., 1]) / (h - 1) - 1
  warped = F.grid_sample(src, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros",
                         align_corners=True).permute(0, 2, 3, 1)
  unit = lambda v: v / (v.norm(dim=-1, keepdim=True) + EPS)
  cos_sample = (unit(warped) * unit(target)).sum(-1)
  with torch.no_grad():
    sim = torch.einsum("bsc,btc->bst", unit(source).reshape(b, h * w, c), unit(target).reshape(b, h * w, c))
    cos_max = sim.max(dim=1).values.reshape(b, h, w)
  return torch.exp(-cos_sample / (cos_max + EPS)).mean() - math.exp(-1)


def np_affine_regularization(flow, k):
  flow = np.asarray(flow, np.float64)
  b, h, w, _ = flow.shape
  gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  coords = flow + np.stack([gx, gy], -1)[None]
  ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
  design = np.stack([np.ones(k * k), ii.ravel(), jj.ravel()], 1)
  values = []
  for n in range(b):
    for y in range(h - k + 1):
      for x in range(w - k + 1):
        total = 0.0
        for ch in range(2):
          target = coords[n, y:y + k, x:x + k, ch].ravel()
          sol = np.linalg.lstsq(design, target, rcond=None)[0]
          total += float(np.sum((design @ sol - target) ** 2))
        values.append(total)
  return float(np.mean(values))


def _rand(rng, *shape, positive=False):
  x = rng.normal(size=shape)
  return np.maximum(x, 0) if positive else x


# ----------------------------------------------------------------------------- sampling correctness


@pytest.mark.parametrize("shape,positive", [((2, 5, 6, 4), False), ((1, 7, 4, 3), True)])
def test_sampling_correctness_matches_numpy(shape, positive):
  rng = np.random.default_rng(0)
  src = _rand(rng, *shape, positive=positive)
  tgt = _rand(rng, *shape, positive=positive)
  flow = rng.uniform(-3, 3, shape[:3] + (2,))
  want = np_sampling_correctness(src, tgt, flow)
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  for block in (1, 7, 1024):
    got = float(losses.sampling_correctness(f32(src), f32(tgt), f32(flow), block_size=block))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=f"block_size={block}")


def test_sampling_correctness_is_zero_for_perfect_correspondence():
  rng = np.random.default_rng(1)
  feat = np.abs(rng.normal(size=(2, 6, 5, 8))).astype(np.float32) + 0.1
  got = losses.sampling_correctness(feat, feat, np.zeros((2, 6, 5, 2), np.float32))
  assert abs(float(got)) < 1e-6
  # Target = source shifted left by one pixel, flow +1 in x: exact in the first 4 columns; the last
  # column samples outside the map (zero padding: cos 0, ratio 0), contributing 1 - exp(-1) each.
  shifted = np.concatenate([feat[:, :, 1:], feat[:, :, :1]], axis=2)
  flow = np.zeros((2, 6, 5, 2), np.float32)
  flow[..., 0] = 1.0
  loss_right = float(losses.sampling_correctness(feat, shifted, flow))
  np.testing.assert_allclose(loss_right, (1 - math.exp(-1)) / 5, rtol=1e-5)
  assert float(losses.sampling_correctness(feat, shifted, -flow)) > loss_right + 0.01


def test_sampling_correctness_gradients_match_torch():
  rng = np.random.default_rng(2)
  shape = (2, 5, 7, 3)
  src, tgt = rng.normal(size=shape), rng.normal(size=shape)
  flow = rng.uniform(-2.5, 2.5, shape[:3] + (2,))
  ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (src, tgt, flow)]
  ref = torch_sampling_correctness(*ts)
  ref.backward()
  np.testing.assert_allclose(ref.item(), np_sampling_correctness(src, tgt, flow), rtol=1e-10)
  value, grads = jax.jit(jax.value_and_grad(
      functools.partial(losses.sampling_correctness, block_size=4), argnums=(0, 1, 2)))(
          *(jnp.asarray(v, jnp.float32) for v in (src, tgt, flow)))
  np.testing.assert_allclose(float(value), ref.item(), rtol=2e-5)
  for name, got, t in zip(("source", "target", "flow"), grads, ts):
    want = t.grad.numpy()
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-5 * np.abs(want).max(),
                               err_msg=name)


def test_sampling_correctness_gradients_finite_at_zero_flow_and_outside():
  rng = np.random.default_rng(3)
  src = np.maximum(rng.normal(size=(1, 6, 6, 4)), 0).astype(np.float32)
  src[0, 2, 3] = 0.0                      # a zero feature vector (norm 0)
  tgt = np.maximum(rng.normal(size=(1, 6, 6, 4)), 0).astype(np.float32)
  tgt[0, 1, 1] = 0.0
  grad = jax.jit(jax.grad(losses.sampling_correctness, argnums=(0, 1, 2)))
  for flow in (np.zeros((1, 6, 6, 2), np.float32), np.full((1, 6, 6, 2), 20.0, np.float32)):
    for g in grad(src, tgt, flow):
      assert np.all(np.isfinite(np.asarray(g)))
  g_flow = grad(src, tgt, np.zeros((1, 6, 6, 2), np.float32))[2]
  assert np.abs(np.asarray(g_flow)).max() > 0   # the warp gradient is not zero at integer positions


def test_sampling_correctness_blocks_avoid_the_full_similarity_matrix():
  """At H/2 of a 256x176 image (128x88 positions) no (N x N) buffer exists in the blocked program."""
  feat = jax.ShapeDtypeStruct((2, 128, 88, 128), jnp.float32)
  flow = jax.ShapeDtypeStruct((2, 128, 88, 2), jnp.float32)
  n = 128 * 88

  def hlo(block):
    fn = jax.grad(functools.partial(losses.sampling_correctness, block_size=block), argnums=2)
    return jax.jit(fn).lower(feat, feat, flow).compile().as_text()

  assert f"{n},{n}" not in hlo(512)
  assert f"{n},{n}" in hlo(n)   # the check can fail: the unblocked program does hold it


def test_sampling_correctness_shape_errors():
  x = np.zeros((1, 4, 4, 3), np.float32)
  with pytest.raises(ValueError, match="flow must be"):
    losses.sampling_correctness(x, x, np.zeros((1, 4, 4, 3), np.float32))
  with pytest.raises(ValueError, match="equal shapes"):
    losses.sampling_correctness(x, x[:, :3], np.zeros((1, 4, 4, 2), np.float32))


# ----------------------------------------------------------------------------- affine regularisation


@pytest.mark.parametrize("shape,k", [((2, 7, 5), 3), ((1, 6, 9), 2), ((2, 8, 6), 5), ((1, 5, 5), 5)])
def test_affine_regularization_matches_lstsq(shape, k):
  rng = np.random.default_rng(k)
  flow = rng.normal(scale=2.0, size=shape + (2,))
  want = np_affine_regularization(flow, k)
  got = float(losses.affine_regularization(jnp.asarray(flow, jnp.float32), k))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_affine_regularization_zero_for_affine_flow_and_large_offsets():
  h, w = 9, 7
  gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  flow = np.stack([0.3 * gx - 0.2 * gy + 150.0, 0.1 * gx + 0.05 * gy - 200.0], -1)[None]
  assert abs(float(losses.affine_regularization(jnp.asarray(flow, jnp.float32), 3))) < 1e-6
  # A small non-affine bump on large offsets is measured without float32 cancellation.
  bumped = flow.copy()
  bumped[0, 4, 3, 0] += 0.01
  want = np_affine_regularization(bumped, 3)
  got = float(losses.affine_regularization(jnp.asarray(bumped, jnp.float32), 3))
  np.testing.assert_allclose(got, want, rtol=1e-3)


def test_affine_regularization_gradient():
  """d/dflow of mean_w |M f_w|^2 = (2 / #windows) * sum_w scatter(M f_w), in float64 numpy."""
  rng = np.random.default_rng(5)
  b, h, w, k = 2, 6, 8, 3
  flow = rng.normal(size=(b, h, w, 2))
  m = flow_lib.affine_residual_operator(k)
  n_windows = b * (h - k + 1) * (w - k + 1)
  want = np.zeros_like(flow)
  for n in range(b):
    for y in range(h - k + 1):
      for x in range(w - k + 1):
        for ch in range(2):
          window = flow[n, y:y + k, x:x + k, ch].ravel()
          want[n, y:y + k, x:x + k, ch] += (2.0 / n_windows * (m @ window)).reshape(k, k)
  got = jax.grad(losses.affine_regularization)(jnp.asarray(flow, jnp.float32), k)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-6)


def test_affine_regularization_errors():
  with pytest.raises(ValueError, match="kernel_size"):
    losses.affine_regularization(jnp.zeros((1, 4, 6, 2)), 5)
  with pytest.raises(ValueError, match="kernel_size"):
    losses.affine_regularization(jnp.zeros((1, 4, 6, 2)), 1)


# ----------------------------------------------------------------------------- image losses


def _feats(rng, shapes):
  return {name: rng.normal(size=s).astype(np.float32) for name, s in shapes.items()}


def np_gram(f):
  f = np.asarray(f, np.float64)
  b, h, w, c = f.shape
  out = np.zeros((b, c, c))
  for n in range(b):
    for i in range(c):
      for j in range(c):
        out[n, i, j] = np.sum(f[n, ..., i] * f[n, ..., j]) / (c * h * w)
  return out


def test_gram_perceptual_style_l1_match_numpy():
  rng = np.random.default_rng(6)
  shapes = {"relu1_1": (2, 8, 6, 4), "relu2_1": (2, 4, 3, 5), "relu3_1": (2, 2, 3, 6)}
  a, b = _feats(rng, shapes), _feats(rng, shapes)
  layers = ("relu1_1", "relu3_1")
  np.testing.assert_allclose(np.asarray(losses.gram_matrix(a["relu2_1"])), np_gram(a["relu2_1"]),
                             rtol=1e-5, atol=1e-7)
  want_l1 = np.mean(np.abs(a["relu1_1"].astype(np.float64) - b["relu1_1"]))
  np.testing.assert_allclose(float(losses.l1_loss(a["relu1_1"], b["relu1_1"])), want_l1, rtol=1e-6)
  want_per = sum(np.mean(np.abs(a[l].astype(np.float64) - b[l])) for l in layers)
  np.testing.assert_allclose(float(losses.perceptual_loss(a, b, layers)), want_per, rtol=1e-6)
  weighted = losses.perceptual_loss(a, b, layers, weights=(2.0, 0.0))
  np.testing.assert_allclose(float(weighted), 2 * want_l1, rtol=1e-6)
  want_sty = sum(np.mean(np.abs(np_gram(a[l]) - np_gram(b[l]))) for l in layers)
  np.testing.assert_allclose(float(losses.style_loss(a, b, layers)), want_sty, rtol=1e-5)
  with pytest.raises(KeyError, match="relu5_1"):
    losses.perceptual_loss(a, b, ("relu5_1",))
  grads = jax.grad(lambda x: losses.style_loss({"relu1_1": x}, b, ("relu1_1",)))(a["relu1_1"])
  assert np.all(np.isfinite(np.asarray(grads)))


# ----------------------------------------------------------------------------- GAN losses


def test_gan_losses_closed_forms():
  rng = np.random.default_rng(7)
  real = rng.normal(scale=3, size=(3, 4, 2, 1)).astype(np.float32)
  fake = rng.normal(scale=3, size=(3, 4, 2, 1)).astype(np.float32)
  r, f = real.astype(np.float64), fake.astype(np.float64)
  sig = lambda x: 1 / (1 + np.exp(-x))
  want_g = {
      "nonsaturating": np.mean(-np.log(sig(f))),
      "lsgan": np.mean((f - 1) ** 2),
      "hinge": -np.mean(f),
  }
  want_d = {
      "nonsaturating": 0.5 * (np.mean(-np.log(sig(r))) + np.mean(-np.log(1 - sig(f)))),
      "lsgan": 0.5 * (np.mean((r - 1) ** 2) + np.mean(f ** 2)),
      "hinge": 0.5 * (np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))),
  }
  assert set(losses.GAN_KINDS) == set(want_g)
  for kind in losses.GAN_KINDS:
    np.testing.assert_allclose(float(losses.generator_gan_loss(fake, kind)), want_g[kind], rtol=1e-5)
    np.testing.assert_allclose(float(losses.discriminator_gan_loss(real, fake, kind)), want_d[kind],
                               rtol=1e-5)
  # Stable for large logits (softplus, not log(sigmoid)).
  big = np.full((2, 1), 200.0, np.float32)
  assert np.isfinite(float(losses.generator_gan_loss(-big, "nonsaturating")))
  assert np.isfinite(float(losses.discriminator_gan_loss(-big, big, "nonsaturating")))


def test_gan_invalid_kind():
  with pytest.raises(ValueError, match=r"losses\.gan.*nonsaturating.*lsgan.*hinge"):
    losses.generator_gan_loss(np.zeros(3), "wgan")
  with pytest.raises(ValueError, match=r"losses\.gan"):
    losses.discriminator_gan_loss(np.zeros(3), np.zeros(3), "bce")


def test_flow_losses_weight_each_level_as_configured():
  """steps.flow_losses = sum_l w_cor[l] L_cor(l) and sum_l w_reg[l] L_reg(l) (where the window > 0)."""
  from configs import deepfashion, market
  from rfgen_jax.train import steps
  rng = np.random.default_rng(7)
  b, k, taps = 2, 2, ("relu4_1", "relu3_1", "relu2_1")
  sizes = ((2, 2), (4, 4), (8, 8))
  flows = [jnp.asarray(rng.normal(0, 1, (b, k) + s + (2,)), jnp.float32) for s in sizes]
  src = {t: jnp.asarray(rng.normal(size=(b, k) + s + (3,)), jnp.float32) for t, s in zip(taps, sizes)}
  tgt = {t: jnp.asarray(rng.normal(size=(b,) + s + (3,)), jnp.float32) for t, s in zip(taps, sizes)}
  config = market.get_config()
  assert config.losses.correctness_sampling == "gaussian"   # GFLA's Resample2d (rfgen_jax/ops/gaussian_resample.py)
  per_cor = [float(np.mean([losses.sampling_correctness(src[t][:, j], tgt[t], f[:, j], sampling="gaussian")
                            for j in range(k)])) for t, f in zip(taps, flows)]
  assert tuple(config.losses.correctness_level_weights) == pytest.approx((1 / 3,) * 3)   # total 1
  assert sum(deepfashion.get_config().losses.correctness_level_weights) == pytest.approx(2.0)
  config.losses.correctness_level_weights = (0.5, 2.0, 0.0)
  config.losses.affine_kernel_sizes = (2, 3, 0)
  config.losses.regularization_level_weights = (3.0, 0.25, 7.0)
  cor, reg = steps.flow_losses(config, flows, src, tgt)
  np.testing.assert_allclose(float(cor), 0.5 * per_cor[0] + 2.0 * per_cor[1], rtol=1e-5)
  merged = lambda f: f.reshape((-1,) + f.shape[2:])
  want_reg = (3.0 * float(losses.affine_regularization(merged(flows[0]), 2))
              + 0.25 * float(losses.affine_regularization(merged(flows[1]), 3)))
  np.testing.assert_allclose(float(reg), want_reg, rtol=1e-5)
  config.losses.correctness_level_weights = (1.0, 1.0)
  with pytest.raises(ValueError, match="one entry per fusion level"):
    steps.flow_losses(config, flows, src, tgt)
