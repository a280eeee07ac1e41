"""Metrics against independent references: scipy (Fréchet distance), scikit-image (SSIM, PSNR, GFLA's
limb-mask drawing), numpy (masked variants, L1, statistics)."""
import ml_collections
import numpy as np
import pytest
import scipy.linalg
from skimage import draw, metrics as skm, morphology

import jax
import jax.numpy as jnp

from rfgen_jax.evaluation import masks, metrics
from rfgen_jax.nets import alexnet as anet
from rfgen_jax.nets import inception


# --- FID -----------------------------------------------------------------------------------

def _scipy_fid(mu1, s1, mu2, s2):
  covmean = scipy.linalg.sqrtm(s1 @ s2)
  covmean = np.real(covmean)
  d = mu1 - mu2
  return d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("n,d", [(400, 16), (300, 64)])
def test_frechet_distance_matches_scipy(n, d):
  rng = np.random.default_rng(n + d)
  a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + 1.0
  b = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + rng.normal(size=d) * 0.5
  mu1, s1 = np.mean(a, 0), np.cov(a, rowvar=False)
  mu2, s2 = np.mean(b, 0), np.cov(b, rowvar=False)
  ours = metrics.frechet_distance(mu1, s1, mu2, s2)
  ref = _scipy_fid(mu1, s1, mu2, s2)
  assert ref > 1.0
  np.testing.assert_allclose(ours, ref, rtol=1e-9)
  assert abs(metrics.frechet_distance(mu1, s1, mu1, s1)) < 1e-8 * np.trace(s1)


def test_frechet_distance_near_singular_covariances():
  """Fewer samples than dimensions: rank-deficient S1, S2 (as FID on small test sets)."""
  rng = np.random.default_rng(0)
  d = 48
  a = rng.normal(size=(20, d))
  b = rng.normal(size=(30, d)) * 1.5 + 0.2
  mu1, s1 = metrics.feature_statistics(a)
  mu2, s2 = metrics.feature_statistics(b)
  assert np.linalg.matrix_rank(s1) < d and np.linalg.matrix_rank(s2) < d
  ours = metrics.frechet_distance(mu1, s1, mu2, s2)
  ref = _scipy_fid(mu1, s1, mu2, s2)
  np.testing.assert_allclose(ours, ref, rtol=1e-6)
  # Third reference: tr sqrt(S1 S2) = sum sqrt(eigenvalues of S1 S2) (real, >= 0).
  ev = np.clip(np.real(scipy.linalg.eigvals(s1 @ s2)), 0, None)
  alt = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum()
  np.testing.assert_allclose(ours, alt, rtol=1e-7)
  # Identical rank-deficient covariances: exactly-zero trace term (no complex sqrtm noise).
  assert abs(metrics.frechet_distance(mu1, s1, mu1, s1)) < 1e-8 * np.trace(s1)


def test_feature_statistics_and_streaming():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(57, 12)).astype(np.float32) * 3 + 100.0  # large offset: stability check
  mu, sigma = metrics.feature_statistics(f)
  np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)
  acc = metrics.FeatureStatistics()
  padded = np.concatenate([f, np.full((3, 12), 1e6, np.float32)])
  valid = np.arange(len(padded)) < len(f)
  for start in range(0, len(padded), 8):
    acc.update(padded[start:start + 8], valid[start:start + 8])
  assert acc.count == len(f)
  mu2, sigma2 = acc.finalize()
  np.testing.assert_allclose(mu2, mu, rtol=1e-12)
  np.testing.assert_allclose(sigma2, sigma, rtol=1e-9, atol=1e-11)


# --- SSIM / PSNR / L1 ----------------------------------------------------------------------

def _pairs(seed, b=3, h=40, w=32):
  """Random, structured and near-identical image pairs in [-1, 1]."""
  rng = np.random.default_rng(seed)
  yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
  structured = np.stack([np.sin(8 * xx), np.cos(6 * yy), (xx > 0.5) * 1.6 - 0.8], -1)
  a = np.stack([rng.uniform(-1, 1, (h, w, 3)), structured, structured * 0.5])[:b]
  b_ = np.stack([rng.uniform(-1, 1, (h, w, 3)), np.clip(structured + 0.2 * rng.normal(size=(h, w, 3)), -1, 1),
                 structured * 0.5 + 0.01])[:b]
  return a.astype(np.float32), b_.astype(np.float32)


def _u(x):
  return (x.astype(np.float64) + 1) / 2


def _random_mask(seed, b, h, w):
  rng = np.random.default_rng(seed)
  m = np.zeros((b, h, w, 1), np.float32)
  for i in range(b):
    r0, c0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    m[i, r0:r0 + h // 2, c0:c0 + w // 2] = 1
  return m


def test_ssim_matches_skimage():
  a, b = _pairs(0)
  ours = np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b)))
  ref = [skm.structural_similarity(_u(x), _u(y), channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, data_range=1.0) for x, y in zip(a, b)]
  assert ours.shape == (3,)
  np.testing.assert_allclose(ours, ref, atol=5e-6)
  assert len(set(np.round(ref, 3))) == 3  # the three cases differ, so the check is not vacuous


def test_ssim_masked_matches_numpy_and_ones_mask():
  a, b = _pairs(1)
  mask = _random_mask(1, *a.shape[:3])
  ours = np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b), mask=jnp.asarray(mask)))
  for i in range(len(a)):
    _, full = skm.structural_similarity(_u(a[i]), _u(b[i]), channel_axis=-1, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False, data_range=1.0, full=True)
    smap = full.mean(-1)[5:-5, 5:-5]
    m = mask[i, 5:-5, 5:-5, 0]
    np.testing.assert_allclose(ours[i], (smap * m).sum() / m.sum(), atol=5e-6)
  ones = np.ones_like(mask)
  np.testing.assert_allclose(np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b), mask=jnp.asarray(ones))),
                             np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b))), atol=1e-6)


def test_psnr_and_l1():
  a, b = _pairs(2)
  ours = np.asarray(metrics.psnr(jnp.asarray(a), jnp.asarray(b)))
  ref = [skm.peak_signal_noise_ratio(_u(x), _u(y), data_range=1.0) for x, y in zip(a, b)]
  np.testing.assert_allclose(ours, ref, rtol=1e-5)
  mask = _random_mask(2, *a.shape[:3])
  sq = (_u(a) - _u(b)) ** 2
  mse = (sq * mask).sum((1, 2, 3)) / (mask.sum((1, 2, 3)) * 3)
  np.testing.assert_allclose(np.asarray(metrics.psnr(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask))),
                             10 * np.log10(1 / mse), rtol=1e-5)
  # L1 is a float32 mean of 3840 terms (XLA:CPU adds them in sequence): 1.8e-5 from float64 measured for
  # the near-identical pair (differences of 0.005), where PSNR's squared terms stay within 1e-5.
  np.testing.assert_allclose(np.asarray(metrics.l1(jnp.asarray(a), jnp.asarray(b))),
                             np.abs(_u(a) - _u(b)).mean((1, 2, 3)), rtol=5e-5)
  ab = np.abs(_u(a) - _u(b))
  np.testing.assert_allclose(np.asarray(metrics.l1(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask))),
                             (ab * mask).sum((1, 2, 3)) / (mask.sum((1, 2, 3)) * 3), rtol=5e-5)
  assert np.isinf(np.asarray(metrics.psnr(jnp.asarray(a), jnp.asarray(a)))).all()


def test_pixel_metrics_jit():
  a, b = _pairs(4)
  mask = jnp.asarray(_random_mask(4, *a.shape[:3]))
  for fn in (metrics.ssim, metrics.psnr, metrics.l1):
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(a, b, mask)), np.asarray(fn(a, b, mask)), rtol=1e-5)


def test_quantize_uint8():
  x = jnp.asarray([-1.0, -0.999, 0.0, 0.5, 1.0, 1.2])
  q = np.asarray(metrics.quantize_uint8(x))
  np.testing.assert_allclose((q + 1) * 127.5, np.round(np.clip((np.asarray(x) + 1) * 127.5, 0, 255)), atol=1e-4)


# --- Limb masks ----------------------------------------------------------------------------

def _gfla_mask(kp, img_size=(128, 64), point_radius=4):
  """GFLA script/metrics.py `produce_ma_mask`, with today's skimage names (circle -> disk,
  square(5) -> footprint_rectangle((5, 5)))."""
  mask = np.zeros(img_size, dtype=bool)
  limbs = np.array([[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12],
                    [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [2, 17], [2, 18],
                    [9, 12], [12, 6], [9, 3], [17, 18]]) - 1
  for f, t in limbs:
    if -1 in kp[f] or -1 in kp[t]:
      continue
    n = kp[f] - kp[t]
    n = np.array([-n[1], n[0]])
    n = point_radius * n / np.linalg.norm(n)
    v = np.array([kp[f] + n, kp[f] - n, kp[t] - n, kp[t] + n])
    yy, xx = draw.polygon(v[:, 0], v[:, 1], shape=img_size)
    mask[yy, xx] = True
  for j in kp:
    if -1 in j:
      continue
    yy, xx = draw.disk((j[0], j[1]), radius=point_radius, shape=img_size)
    mask[yy, xx] = True
  fp = morphology.footprint_rectangle((5, 5)) if hasattr(morphology, "footprint_rectangle") \
      else morphology.square(5)
  return morphology.erosion(morphology.dilation(mask, fp), fp)


def _poses(seed, b=4):
  """Plausible 18-joint (y, x) poses on 128x64 with some missing joints, a few at the border."""
  rng = np.random.default_rng(seed)
  base = np.array([[15, 32], [28, 32], [28, 22], [45, 18], [60, 16], [28, 42], [45, 46], [60, 48],
                   [65, 26], [90, 25], [118, 24], [65, 38], [90, 39], [118, 40], [12, 29], [12, 35],
                   [14, 26], [14, 38]], np.float64)
  out = []
  for i in range(b):
    kp = np.round(base + rng.normal(0, 4, base.shape))
    kp[:, 0] = np.clip(kp[:, 0], 0, 127)
    kp[:, 1] = np.clip(kp[:, 1], 0, 63)
    kp[rng.random(18) < 0.2] = -1
    if i == 1:
      kp[10] = [127, 2]  # joint on the image border
    out.append(kp)
  return np.stack(out)


def test_limb_mask_matches_gfla_script():
  kp = _poses(0)
  ours = masks.limb_mask(kp, (128, 64))
  assert ours.shape == (4, 128, 64, 1) and ours.dtype == np.float32
  for i in range(len(kp)):
    ref = _gfla_mask(kp[i].astype(int))
    assert ref.sum() > 500
    np.testing.assert_array_equal(ours[i, ..., 0].astype(bool), ref)


def test_limb_mask_float_keypoints_match():
  kp = _poses(1, b=2) + np.where(_poses(1, b=2) >= 0, 0.37, 0.0)
  ours = masks.limb_mask(kp, (128, 64))
  for i in range(2):
    np.testing.assert_array_equal(ours[i, ..., 0].astype(bool), _gfla_mask(kp[i]))


def test_limb_mask_covers_joints_and_empty_when_missing():
  kp = _poses(2)
  m = masks.limb_mask(kp, (128, 64))
  for i in range(len(kp)):
    for y, x in kp[i]:
      if y >= 0:
        assert m[i, int(y), int(x), 0] == 1
  empty = masks.limb_mask(np.full((2, 18, 2), -1.0), (128, 64))
  assert empty.shape == (2, 128, 64, 1) and empty.sum() == 0
  single = masks.limb_mask(kp[0], (128, 64))
  assert single.shape == (128, 64, 1)
  np.testing.assert_array_equal(single, m[0])


# --- Network wrappers ----------------------------------------------------------------------

def _config(**eval_values):
  c = ml_collections.ConfigDict()
  c.eval = ml_collections.ConfigDict(dict(inception_weights=None, alexnet_weights=None, lpips_heads=None))
  c.eval.update(eval_values)
  return c


def test_availability_and_missing_weight_errors(tmp_path):
  ok, reason = metrics.InceptionFeatures.available(_config())
  assert not ok and "eval.inception_weights" in reason and "convert_inception" in reason
  ok, reason = metrics.LPIPSModel.available(_config(alexnet_weights=str(tmp_path / "nope.npz")))
  assert not ok and "eval.alexnet_weights" in reason and "convert_lpips" in reason
  with pytest.raises(metrics.MissingWeightsError, match="eval.inception_weights"):
    metrics.InceptionFeatures.from_config(_config())
  # AlexNet file without heads and no eval.lpips_heads: the heads key is named.
  alex_only = tmp_path / "alex_only.npz"
  anet.save_npz(str(alex_only), anet.random_alexnet_params(0), None)
  ok, reason = metrics.LPIPSModel.available(_config(alexnet_weights=str(alex_only)))
  assert not ok and "eval.lpips_heads" in reason
  with pytest.raises(metrics.MissingWeightsError, match="eval.lpips_heads"):
    metrics.LPIPSModel.from_config(_config(alexnet_weights=str(alex_only)))


def test_lpips_model_load_and_mask(tmp_path):
  rng = np.random.default_rng(5)
  heads = {f"lin{i}": rng.uniform(0, 0.2, c).astype(np.float32) for i, c in enumerate(anet.CHANNELS)}
  path = tmp_path / "lpips_alex.npz"
  anet.save_npz(str(path), anet.random_alexnet_params(1), heads)
  cfg = _config(alexnet_weights=str(path))
  assert metrics.LPIPSModel.available(cfg) == (True, "")
  model = metrics.LPIPSModel.from_config(cfg)
  a, b = _pairs(3, b=2, h=128, w=64)
  kp = _poses(3, b=2)
  mask = masks.limb_mask(kp, (128, 64))
  d = np.asarray(model(a, b))
  dm = np.asarray(metrics.mask_lpips(model, a, b, kp))
  ref = np.asarray(model(a * mask, b * mask))
  assert d.shape == dm.shape == (2,)
  np.testing.assert_allclose(dm, ref, rtol=1e-6)
  assert not np.allclose(dm, d)


def test_inception_features_load(tmp_path):
  path = tmp_path / "inception_fid.npz"
  inception.save_params(str(path), inception.random_params(0))
  cfg = _config(inception_weights=str(path))
  assert metrics.InceptionFeatures.available(cfg) == (True, "")
  model = metrics.InceptionFeatures.from_config(cfg)
  assert model.module.resize_to == 299
  bad = dict(np.load(path))
  del bad["Mixed_7c/branch_pool/bn/var"]
  np.savez(tmp_path / "bad.npz", **bad)
  with pytest.raises(ValueError, match="Mixed_7c/branch_pool/bn/var"):
    metrics.InceptionFeatures.load(str(tmp_path / "bad.npz"))
