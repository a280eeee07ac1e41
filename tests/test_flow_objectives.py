"""The flow objectives added for issue 29, each against a float64 numpy oracle written from its definition:
GFLA's Gaussian resampling (rfgen_jax/ops/gaussian_resample.py) and the keypoint-correspondence loss
(rfgen_jax/losses/keypoint_flow.py); and that sampling correctness with it prefers the true flow."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfgen_jax.data.keypoints import LIMBS
from rfgen_jax.losses import keypoint_flow
from rfgen_jax.losses import flow as flow_losses
from rfgen_jax.ops import gaussian_resample


def _gfla_resample_numpy(x, flow, kernel_size=4, sigma=2.0):
  """GFLA's Resample2d forward (resample2d_kernel.cu), one pixel at a time, float64."""
  b, h, w, c = x.shape
  out = np.zeros((b, h, w, c))
  for n in range(b):
    for y in range(h):
      for xx in range(w):
        xf, yf = xx + flow[n, y, xx, 0], y + flow[n, y, xx, 1]
        alpha, beta = xf - np.floor(xf), yf - np.floor(yf)
        val, total = np.zeros(c), 0.0
        for fy in range(kernel_size // 2):
          y_t = int(min(max(np.floor(yf) - fy, 0), h - 1))
          y_b = int(min(max(np.floor(yf) + fy + 1, 0), h - 1))
          for fx in range(kernel_size // 2):
            x_l = int(min(max(np.floor(xf) - fx, 0), w - 1))
            x_r = int(min(max(np.floor(xf) + fx + 1, 0), w - 1))
            g = lambda d: np.exp(-d * d / (2 * sigma * sigma))
            wl, wr, wt, wb = g(fx + alpha), g(fx + 1 - alpha), g(fy + beta), g(fy + 1 - beta)
            for wy, yi in ((wt, y_t), (wb, y_b)):
              for wx, xi in ((wl, x_l), (wr, x_r)):
                val += wy * wx * x[n, yi, xi]
                total += wy * wx
        out[n, y, xx] = val / total
  return out


@pytest.mark.parametrize("kernel_size,sigma", [(4, 2.0), (2, 1.0), (6, 3.0)])
def test_gaussian_resample_matches_gfla_kernel(kernel_size, sigma):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 6, 5, 3))
  flow = rng.uniform(-4, 4, size=(2, 6, 5, 2))     # many samples off the map: border clamp
  got = gaussian_resample(jnp.asarray(x, jnp.float32), jnp.asarray(flow, jnp.float32), kernel_size, sigma)
  np.testing.assert_allclose(np.asarray(got), _gfla_resample_numpy(x, flow, kernel_size, sigma), atol=2e-5)


def test_gaussian_resample_gradient_is_finite_and_checked():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(1, 5, 5, 2)), jnp.float32)
  flow = jnp.asarray(rng.uniform(-1, 1, size=(1, 5, 5, 2)), jnp.float32)
  g = jax.grad(lambda f: jnp.sum(gaussian_resample(x, f) ** 2))(flow)
  assert np.all(np.isfinite(np.asarray(g))) and np.abs(np.asarray(g)).max() > 0
  with pytest.raises(ValueError, match="kernel_size must be even"):
    gaussian_resample(x, flow, 3)
  with pytest.raises(ValueError, match="sigma must be > 0"):
    gaussian_resample(x, flow, 4, 0.0)


def _keypoint_loss_numpy(flow, src_kp, tgt_kp, level, fractions):
  """The loss from its definition, float64, one correspondence at a time."""
  b, k, h, w, _ = flow.shape
  errors = []
  for n in range(b):
    for s in range(k):
      def points(kp):
        pts = [(tuple(p), bool((p >= 0).all())) for p in kp]
        for t in fractions:
          for a, c in LIMBS:
            ok = bool((kp[a] >= 0).all() and (kp[c] >= 0).all())
            pts.append((tuple((1 - t) * kp[a] + t * kp[c]), ok))
        return pts
      for (tp, tok), (sp, sok) in zip(points(tgt_kp[n]), points(src_kp[n, s])):
        if not (tok and sok):
          continue
        ty, tx = [(v + 0.5) / level - 0.5 for v in tp]
        sy, sx = [(v + 0.5) / level - 0.5 for v in sp]
        cy, cx = min(max(ty, 0), h - 1), min(max(tx, 0), w - 1)
        y0, x0 = min(int(np.floor(cy)), h - 2), min(int(np.floor(cx)), w - 2)
        fy, fx = cy - y0, cx - x0
        f = ((1 - fy) * (1 - fx) * flow[n, s, y0, x0] + (1 - fy) * fx * flow[n, s, y0, x0 + 1]
             + fy * (1 - fx) * flow[n, s, y0 + 1, x0] + fy * fx * flow[n, s, y0 + 1, x0 + 1])
        errors.append(np.hypot(ty + f[1] - sy, tx + f[0] - sx))
  return np.mean(errors)


def test_keypoint_flow_loss_matches_definition():
  rng = np.random.default_rng(2)
  b, k, level, h, w = 2, 2, 4, 8, 6
  tgt = rng.uniform(0, [h * level, w * level], size=(b, 18, 2))
  src = rng.uniform(0, [h * level, w * level], size=(b, k, 18, 2))
  tgt[0, 3] = -1          # a missing target joint drops its limbs' points
  src[1, 0, 8] = -1       # a missing source joint, for that source only
  flow = rng.uniform(-3, 3, size=(b, k, h, w, 2))
  got = keypoint_flow.keypoint_flow_loss(jnp.asarray(flow, jnp.float32), jnp.asarray(src, jnp.float32),
                                         jnp.asarray(tgt, jnp.float32), level)
  want = _keypoint_loss_numpy(flow, src, tgt, level, keypoint_flow.DEFAULT_LIMB_FRACTIONS)
  np.testing.assert_allclose(float(got), want, rtol=1e-4)


def test_keypoint_flow_loss_is_zero_for_the_true_flow():
  """Target = source shifted by (dy, dx) image pixels: a constant flow of (dx, dy) / level is exact."""
  rng = np.random.default_rng(3)
  level, dy, dx = 2, 4.0, -6.0
  tgt = rng.uniform(8, 24, size=(1, 18, 2)).astype(np.float32)
  src = (tgt + np.array([dy, dx], np.float32))[:, None]
  flow = np.zeros((1, 1, 16, 16, 2), np.float32)
  flow[..., 0], flow[..., 1] = dx / level, dy / level
  assert float(keypoint_flow.keypoint_flow_loss(jnp.asarray(flow), src, tgt, level)) < 2e-3   # sqrt(eps)
  off = float(keypoint_flow.keypoint_flow_loss(jnp.zeros_like(jnp.asarray(flow)), src, tgt, level))
  np.testing.assert_allclose(off, np.hypot(dy, dx) / level, rtol=1e-3)


def test_correctness_with_gfla_sampling_prefers_the_true_shift():
  """A smooth random map and the same map shifted by 2 px (8 x 8, as the demo's small feature maps): the
  loss at the true flow is below the loss at zero flow, by a wider margin with GFLA's sampling (measured:
  0.113 vs 0.314) than with the bilinear, zero-padded one (0.158 vs 0.263)."""
  rng = np.random.default_rng(4)
  big = rng.normal(size=(1, 16, 24, 8))
  kernel = np.exp(-np.arange(-3, 4) ** 2 / 4.0)
  for axis in (1, 2):
    big = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, big)
  target = jnp.asarray(big[:, 4:12, 8:16], jnp.float32)       # 8 x 8
  source = jnp.asarray(big[:, 4:12, 10:18], jnp.float32)      # target pixel x is source pixel x - 2
  true = jnp.zeros((1, 8, 8, 2)).at[..., 0].set(-2.0)
  zero = jnp.zeros((1, 8, 8, 2))
  loss = lambda f, s: float(flow_losses.sampling_correctness(source, target, f, sampling=s))
  assert loss(true, "gaussian") < loss(zero, "gaussian")
  assert loss(zero, "gaussian") - loss(true, "gaussian") > loss(zero, "bilinear") - loss(true, "bilinear")


def test_source_use_measures_a_known_flow_end_to_end():
  """A known flow in, the expected warp out, through the path the measures (and training) use: a level's
  flow in pixels of the level, upsampled to the image (resize_flow), the source warped (bilinear_warp).
  The source is the target moved 4 px right; the flow (x = +4 image px = +1 px at H/4) takes it back."""
  from rfgen_jax.evaluation import source_use  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(5)
  big = rng.uniform(-1, 1, size=(1, 32, 40, 3)).astype(np.float32)
  target = jnp.asarray(big[:, :, 4:36])
  source = jnp.asarray(big[:, :, 0:32])          # target pixel x is source pixel x + 4
  mask = np.zeros((1, 32, 32, 1), np.float32)
  mask[:, 4:28, 4:24] = 1                          # away from the right edge the shift uncovers
  level_flows, levels = [], (8, 4)
  for level in levels:
    f = np.zeros((1, 1, 32 // level, 32 // level, 2), np.float32)
    f[..., 0] = 4.0 / level
    level_flows.append(jnp.asarray(f))
  zero_occ = [jnp.zeros(f.shape[:-1] + (1,)) for f in level_flows]
  values = source_use.source_use_values(source[:, None], target, target, jnp.asarray(mask),
                                        {"initial_flows": level_flows, "flows": level_flows, "occlusion": zero_occ})
  assert float(values["l1_unwarped"][0]) > 0.2
  for i in range(len(levels)):
    assert float(values[f"l1_warped_{i}"][0]) < 1e-5 and float(values[f"l1_refined_{i}"][0]) < 1e-5
    np.testing.assert_allclose(float(values[f"flow_px_{i}"][0]), 4.0, rtol=1e-5)
  assert float(values["l1_generated"][0]) == 0.0
  reference = jnp.zeros((1, 1, 32, 32, 2)).at[..., 0].set(4.0)     # image-size flow, as the TPS gives
  values = source_use.source_use_values(source[:, None], target, target, jnp.asarray(mask),
                                        {"initial_flows": level_flows, "flows": level_flows, "occlusion": zero_occ},
                                        reference)
  assert float(values["l1_keypoint_reference"][0]) < 1e-5
  np.testing.assert_allclose(float(values["flow_px_keypoint_reference"][0]), 4.0, rtol=1e-5)


def test_keypoint_reference_flow_is_the_affine_map_of_affinely_moved_keypoints():
  """A thin-plate spline reproduces an affine map exactly, so source keypoints that are an affine image of
  the target's (scale 1.1, rotation 5 degrees, shift) give, at every pixel, the affine map's displacement
  (float64 numpy); a pair with fewer than 4 common points gets zero flow."""
  from rfgen_jax.evaluation import keypoint_reference_flow as ref   # pylint: disable=g-import-not-at-top
  h, w = 64, 32
  rng = np.random.default_rng(6)
  target = np.stack([rng.uniform(8, 56, 18), rng.uniform(6, 26, 18)], -1)            # (J, 2) (y, x)
  angle = np.deg2rad(5.0)
  a = 1.1 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  t = np.array([2.5, -3.0])
  source = target @ a.T + t
  few = np.full((18, 2), -1.0)
  few[[0, 4, 10]] = source[[0, 4, 10]]      # no limb joins them: 3 common points
  flows = ref.keypoint_reference_flows(np.stack([source, few])[None], target[None], (h, w))
  assert flows.shape == (1, 2, h, w, 2) and flows.dtype == np.float32
  yx = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).astype(np.float64)
  expected_yx = yx @ a.T + t - yx
  np.testing.assert_allclose(flows[0, 0], expected_yx[..., ::-1], atol=0.05)   # smoothing 1 px^2
  assert np.all(flows[0, 1] == 0)


def test_flow_scalars_are_lengths_in_image_pixels():
  """`flow/estimator_px_i` and `flow/residual_px_i` (rfgen_jax/train/flow_scalars.py) against numpy:
  per level (finest = 0), the mean Euclidean length of the flow times the level's downsampling factor."""
  from rfgen_jax.train import flow_scalars   # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  levels = (8, 4, 2)
  initial = [rng.normal(size=(2, 3, 16 // f, 8 // f, 2)).astype(np.float32) for f in levels]
  refined = [f + rng.normal(size=f.shape).astype(np.float32) for f in initial]
  got = {k: float(v) for k, v in flow_scalars.flow_scalars(initial, refined, levels).items()}
  assert sorted(got) == sorted([f"flow/estimator_px_{i}" for i in range(3)] +
                               [f"flow/residual_px_{i}" for i in range(3)])
  for i, (a, b, factor) in enumerate(zip(initial[::-1], refined[::-1], levels[::-1])):
    length = lambda f: np.mean(np.sqrt(np.sum(f.astype(np.float64) ** 2, axis=-1)))
    np.testing.assert_allclose(got[f"flow/estimator_px_{i}"], factor * length(a), rtol=1e-5)
    np.testing.assert_allclose(got[f"flow/residual_px_{i}"], factor * length(b - a), rtol=1e-5)
  # A constant flow of (3, 4) pixels of the finest map (level 2) is 10 image pixels long.
  const = [np.zeros_like(f) for f in initial]
  const[-1][...] = (3.0, 4.0)
  assert float(flow_scalars.flow_scalars(const, const, levels)["flow/estimator_px_0"]) == pytest.approx(10.0)


def test_flow_report_states_the_share_of_the_keypoint_reference_gain():
  """tools.flow_report's reference line: the finest level's gain over the reference's, with and without
  the residual (as is 0.2, reference 0.1, warped 0.15 -> 50%, refined 0.12 -> 80%)."""
  from rfgen_jax.tools import flow_report   # pylint: disable=g-import-not-at-top
  values = {"l1_unwarped": 0.2, "l1_keypoint_reference": 0.1, "flow_px_keypoint_reference": 7.0,
            "l1_generated": 0.1, "l1_warped_0": 0.15, "l1_refined_0": 0.12, "flow_px_0": 1.0, "occlusion_0": 0.5}
  text = flow_report.table(values, 1, (2,))
  assert "L1 0.1000 (-50.0% vs as is)" in text and "7.00 px" in text
  assert "reaches 50% of the reference's gain, with the residual 80%" in text
  assert "reference" not in flow_report.table({k: v for k, v in values.items() if "reference" not in k}, 1, (2,))


def test_thin_plate_spline_matches_scipy_with_absent_points():
  """losses.keypoint_flow.thin_plate_spline (float32, scaled coordinates, absent points dropped) against
  scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline") in float64 on the present points."""
  from scipy.interpolate import RBFInterpolator   # pylint: disable=g-import-not-at-top
  from rfgen_jax.losses import keypoint_flow       # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(7)
  points = rng.uniform(0, 64, (30, 2))
  values = rng.normal(size=(30, 2)) * 5
  present = np.ones(30, bool)
  present[[3, 7, 20]] = False
  queries = rng.uniform(0, 64, (200, 2))
  for smoothing in (0.0, 1.0):
    expected = RBFInterpolator(points[present], values[present], kernel="thin_plate_spline",
                               smoothing=smoothing)(queries)
    got = keypoint_flow.thin_plate_spline(jnp.asarray(points), jnp.asarray(values), jnp.asarray(present),
                                          jnp.asarray(queries), smoothing)
    np.testing.assert_allclose(np.asarray(got), expected, atol=5e-3)
  two = np.zeros(30, bool)
  two[:2] = True                   # too few points: finite (the loss weights such pairs 0)
  assert np.all(np.isfinite(np.asarray(keypoint_flow.thin_plate_spline(
      jnp.asarray(points), jnp.asarray(values), jnp.asarray(two), jnp.asarray(queries), 1.0))))


def test_dense_keypoint_flow_loss_is_zero_at_the_spline_and_positive_elsewhere():
  """The dense form (losses.keypoint_flow_form = "dense") against the evaluation's reference flow
  (scipy's spline, rfgen_jax/evaluation/keypoint_reference_flow.py) read at the level's pixel centres and
  divided by the level's factor: near 0 there, the mean displacement's size at zero flow, finite gradients,
  and 0 without common points."""
  from rfgen_jax.evaluation import keypoint_reference_flow as ref   # pylint: disable=g-import-not-at-top
  from rfgen_jax.losses import keypoint_flow                          # pylint: disable=g-import-not-at-top
  h, w, level = 64, 32, 4
  rng = np.random.default_rng(8)
  target = np.stack([rng.uniform(8, 56, 18), rng.uniform(6, 26, 18)], -1).astype(np.float32)
  source = (target + rng.normal(size=(18, 2)) * 2.0 + np.array([3.0, -2.0])).astype(np.float32)
  src, tgt = source[None, None], target[None]
  image_flow = ref.keypoint_reference_flows(src, tgt, (h, w))[0, 0]                  # (H, W, 2) image px
  centres = (np.arange(h // level) * level + 0.5 * (level - 1), np.arange(w // level) * level + 0.5 * (level - 1))
  from scipy.interpolate import RegularGridInterpolator   # pylint: disable=g-import-not-at-top
  read = RegularGridInterpolator((np.arange(h), np.arange(w)), image_flow)
  grid = np.stack(np.meshgrid(*centres, indexing="ij"), -1)
  level_flow = (read(grid.reshape(-1, 2)).reshape(h // level, w // level, 2) / level)[None, None]
  loss = lambda f: float(keypoint_flow.dense_keypoint_flow_loss(jnp.asarray(f, jnp.float32), src, tgt, level, h))
  assert loss(level_flow) < 0.03     # level px: bilinear reading of the image-size flow between pixels
  assert loss(np.zeros_like(level_flow)) > 0.5
  grad = jax.grad(lambda f: keypoint_flow.dense_keypoint_flow_loss(f, src, tgt, level, h))(jnp.zeros_like(level_flow))
  assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.abs(grad).sum()) > 0
  missing = np.full_like(src, -1.0)
  assert loss(np.zeros_like(level_flow)) > 0 and float(
      keypoint_flow.dense_keypoint_flow_loss(jnp.zeros_like(level_flow), missing, tgt, level, h)) == 0.0
