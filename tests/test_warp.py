"""Tests for rfgen_jax.ops.warp against torch.nn.functional.grid_sample (float64) and numpy oracles."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rfgen_jax.ops import bilinear_warp, resize_flow
from rfgen_jax.ops import warp as warp_lib

IMPLS = ("gather", "onehot", "reference")
PADDINGS = ("zeros", "border")


def torch_warp(x, flow, cot, padding, align_corners=True):
  """Oracle: output and gradients (x, flow) of grid_sample in float64. NHWC numpy in and out.

  align_corners=True uses the formula grid = 2 (base + flow) / (size - 1) - 1 (sizes > 1);
  align_corners=False the equivalent grid = (2 (base + flow) + 1) / size - 1, defined for size 1 too.
  """
  _, h, w, _ = x.shape
  xt = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()
  ft = torch.tensor(flow, dtype=torch.float64).requires_grad_()
  ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
  px, py = xs + ft[..., 0], ys + ft[..., 1]
  if align_corners:
    grid = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], -1)
  else:
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], -1)
  out = F.grid_sample(xt, grid, mode="bilinear", padding_mode=padding, align_corners=align_corners)
  ct = torch.tensor(cot, dtype=torch.float64).permute(0, 3, 1, 2)
  gx, gf = torch.autograd.grad((out * ct).sum(), (xt, ft))
  return (out.detach().permute(0, 2, 3, 1).numpy(), gx.permute(0, 2, 3, 1).numpy(), gf.numpy())


def jax_warp(x, flow, cot, padding, impl):
  """Output and gradients (x, flow) of sum(warp * cot), jitted."""
  fn = lambda a, f: bilinear_warp(a, f, padding, impl=impl)
  loss = lambda a, f: jnp.sum(fn(a, f).astype(jnp.float32) * cot)
  out = jax.jit(fn)(x, flow)
  gx, gf = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, flow)
  return np.asarray(out), np.asarray(gx), np.asarray(gf)


def random_case(shape, flow_scale, seed=0):
  """x, cot (B,H,W,C) float32 and a flow uniform in +-flow_scale * (W, H) pixels, float32."""
  rng = np.random.default_rng(seed)
  b, h, w, c = shape
  x = rng.standard_normal(shape).astype(np.float32)
  cot = rng.standard_normal(shape).astype(np.float32)
  flow = (rng.uniform(-1, 1, (b, h, w, 2)) * flow_scale * np.array([w, h])).astype(np.float32)
  return x, flow, cot


def assert_close(actual, expected, tol=1e-5):
  """|a - e| <= tol * max(1, |e|): 1e-5 absolute for O(1) values, relative for larger sums."""
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  assert actual.shape == expected.shape
  np.testing.assert_array_less(np.abs(actual - expected), tol * np.maximum(1.0, np.abs(expected)) + 1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(2, 7, 12, 3), (3, 13, 5, 4)])
def test_matches_grid_sample_large_flows(shape, padding, impl):
  """Values and both gradients equal torch's, flows up to +-3x the map size (mostly far outside)."""
  x, flow, cot = random_case(shape, 3.0, seed=shape[1])
  out, gx, gf = jax_warp(x, flow, cot, padding, impl)
  t_out, t_gx, t_gf = torch_warp(x, flow, cot, padding)
  assert_close(out, t_out)
  assert_close(gx, t_gx)
  assert_close(gf, t_gf)
  # The case is not trivial: some samples land inside, some outside.
  inside = (np.abs(flow[..., 0]) < shape[2] / 2) & (np.abs(flow[..., 1]) < shape[1] / 2)
  assert inside.any() and (~inside).any()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_matches_grid_sample_small_flows(padding, impl):
  """Mostly-inside samples (flows within +-0.3x the size), where interpolation dominates."""
  x, flow, cot = random_case((2, 7, 12, 5), 0.3, seed=3)
  out, gx, gf = jax_warp(x, flow, cot, padding, impl)
  t_out, t_gx, t_gf = torch_warp(x, flow, cot, padding)
  assert_close(out, t_out)
  assert_close(gx, t_gx)
  assert_close(gf, t_gf)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_gradients_at_integer_positions(padding, impl):
  """Zero and integer flows: grads equal torch's (one-sided differences), the flow grad is not zero.

  Sizes 9 x 17 make size - 1 a power of two, so torch's grid round trip is exact and its floor lands
  on the same integer as ours (otherwise 2.9999 vs 3 picks the other one-sided difference).
  """
  rng = np.random.default_rng(5)
  b, h, w, c = 2, 9, 17, 3
  x = rng.standard_normal((b, h, w, c)).astype(np.float32)
  cot = rng.standard_normal((b, h, w, c)).astype(np.float32)
  flow = rng.integers(-h, h, (b, h, w, 2)).astype(np.float32)
  flow[0] = 0.0
  out, gx, gf = jax_warp(x, flow, cot, padding, impl)
  t_out, t_gx, t_gf = torch_warp(x, flow, cot, padding)
  assert_close(out, t_out)
  assert_close(gx, t_gx)
  assert_close(gf, t_gf)
  # Zero flow: identity, and d/dflow_x at an interior pixel is sum_c cot * (x[., x+1] - x[., x]).
  np.testing.assert_array_equal(out[0], x[0])
  expect_x = np.sum(cot[0, :, :-1] * (x[0, :, 1:] - x[0, :, :-1]), -1, dtype=np.float64)
  expect_y = np.sum(cot[0, :-1] * (x[0, 1:] - x[0, :-1]), -1, dtype=np.float64)
  # expect_x[y, x] is the derivative at column x < w - 1; expect_y[y, x] at row y < h - 1.
  assert_close(gf[0, 1:-1, 1:-1, 0], expect_x[1:-1, 1:])
  assert_close(gf[0, 1:-1, 1:-1, 1], expect_y[1:, 1:-1])
  assert np.mean(np.abs(gf[0, 1:-1, 1:-1]) > 1e-3) > 0.9


def test_zero_flow_gradient_at_edges():
  """Zero flow at the last column/row: zeros padding differentiates against the zero outside
  (torch does too); border padding clamps, and the clamp's gradient there is 0 (not 0.5)."""
  rng = np.random.default_rng(6)
  x = rng.standard_normal((1, 5, 9, 2)).astype(np.float32)
  cot = rng.standard_normal((1, 5, 9, 2)).astype(np.float32)
  flow = np.zeros((1, 5, 9, 2), np.float32)
  for padding in PADDINGS:
    _, _, gf = jax_warp(x, flow, cot, padding, "gather")
    _, _, t_gf = torch_warp(x, flow, cot, padding)
    assert_close(gf, t_gf)
  _, _, gf_zeros = jax_warp(x, flow, cot, "zeros", "gather")
  assert_close(gf_zeros[0, :, -1, 0], np.sum(cot[0, :, -1] * -x[0, :, -1], -1))
  _, _, gf_border = jax_warp(x, flow, cot, "border", "gather")
  np.testing.assert_array_equal(gf_border[0, :, 0, 0], 0.0)
  np.testing.assert_array_equal(gf_border[0, :, -1, 0], 0.0)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(2, 1, 6, 2), (2, 5, 1, 3), (1, 1, 1, 2)])
def test_size_one_dims_follow_pixel_definition(shape, padding):
  """A size-1 dimension: the align_corners=True grid divides by zero; we keep the pixel definition,
  which equals grid_sample(align_corners=False) with grid = (2 (base + flow) + 1) / size - 1."""
  x, flow, cot = random_case(shape, 1.0, seed=7)
  flow[..., :2] = np.random.default_rng(8).uniform(-1.5, 1.5, flow.shape).astype(np.float32)
  t_out, t_gx, t_gf = torch_warp(x, flow, cot, padding, align_corners=False)
  for impl in IMPLS:
    out, gx, gf = jax_warp(x, flow, cot, padding, impl)
    assert_close(out, t_out)
    assert_close(gx, t_gx)
    assert_close(gf, t_gf)


@pytest.mark.parametrize("padding", PADDINGS)
def test_align_corners_false_oracle_agrees(padding):
  """The two torch formulations of our convention agree (sanity check of the oracle itself)."""
  x, flow, cot = random_case((2, 7, 12, 3), 0.5, seed=9)
  for a, b in zip(torch_warp(x, flow, cot, padding, True), torch_warp(x, flow, cot, padding, False)):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("padding", PADDINGS)
def test_row_blocked_backward(padding, monkeypatch):
  """The custom VJP's row-blocked scan (used on CPU for big inputs) gives torch's gradients, also when
  samples land in other blocks' rows (large flows) and when H is prime (blocks of one row)."""
  monkeypatch.setattr(warp_lib, "_CHUNK_ELEMENTS", 2 * 3 * 12 * 3)  # two rows of (B=3, W=12, C=3)
  for shape, rows in (((3, 12, 12, 3), 2), ((3, 7, 12, 3), 1)):
    assert warp_lib._rows_per_block(shape[1], shape[0] * shape[2] * shape[3]) == rows
    for scale in (0.3, 2.0):
      x, flow, cot = random_case(shape, scale, seed=shape[1])
      _, gx, gf = jax_warp(x, flow, cot, padding, "gather")
      _, t_gx, t_gf = torch_warp(x, flow, cot, padding)
      assert_close(gx, t_gx)
      assert_close(gf, t_gf)


def test_rows_per_block():
  per_row = 16 * 32 * 64  # the 64 x 32 x 64 fusion level at batch 16
  assert warp_lib._rows_per_block(64, per_row) == warp_lib._CHUNK_ELEMENTS // per_row
  assert warp_lib._rows_per_block(13, 10) == 13
  assert warp_lib._rows_per_block(13, 1 << 20) == 1
  assert warp_lib._rows_per_block(12, (1 << 17) // 5) == 4  # largest divisor of 12 that fits


_SHARDING_SCRIPT = r"""
import os
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from rfgen_jax.ops import warp as warp_lib
warp_lib._CHUNK_ELEMENTS = 64  # force the row-blocked backward
mesh = Mesh(np.array(jax.devices()), ("data",))
shard = NamedSharding(mesh, P("data"))
rng = np.random.default_rng(0)
x, g = (rng.standard_normal((8, 6, 5, 3)).astype(np.float32) for _ in range(2))
flow = rng.uniform(-4, 4, (8, 6, 5, 2)).astype(np.float32)
loss = lambda x, f, g: jnp.sum(warp_lib.bilinear_warp(x, f) * g)
step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), out_shardings=(None, (shard, shard)))
args = [jax.device_put(a, shard) for a in (x, flow, g)]
hlo = step.lower(*args).compile().as_text()
assert "all-gather" not in hlo and "all-to-all" not in hlo, "batch sharding was not kept"
(v1, (gx1, gf1)), (v0, (gx0, gf0)) = step(*args), jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, flow, g)
np.testing.assert_allclose(gx1, gx0, rtol=1e-6, atol=1e-6)
np.testing.assert_allclose(gf1, gf0, rtol=1e-6, atol=1e-6)
print("OK")
"""


def test_batch_sharding_is_kept():
  """Under a batch-sharded jit (4 simulated CPU devices) the warp and its backward need no all-gather:
  gathers and scatters are per example, and the CPU blocking splits rows, not the batch."""
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", _SHARDING_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("impl", IMPLS)
def test_vmap_and_jit(impl):
  """vmap over a leading K axis (as the model does) equals a loop; jit equals eager; grads under vmap."""
  rng = np.random.default_rng(10)
  x = jnp.asarray(rng.standard_normal((3, 2, 6, 5, 4)), jnp.float32)
  flow = jnp.asarray(rng.uniform(-4, 4, (3, 2, 6, 5, 2)), jnp.float32)
  fn = lambda a, f: bilinear_warp(a, f, "zeros", impl=impl)
  batched = jax.jit(jax.vmap(fn))(x, flow)
  looped = jnp.stack([jax.jit(fn)(x[k], flow[k]) for k in range(3)])
  np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-6)
  grad = jax.jit(jax.grad(lambda a, f: jnp.sum(fn(a, f) ** 2), argnums=(0, 1)))
  gx_b, gf_b = jax.jit(jax.vmap(grad))(x, flow)
  for k in range(3):
    gx_k, gf_k = grad(x[k], flow[k])
    np.testing.assert_allclose(gx_b[k], gx_k, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gf_b[k], gf_k, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_bfloat16(impl):
  """bfloat16 in, bfloat16 out (and gradients), computed in float32: close to the float32 result."""
  x, flow, cot = random_case((2, 7, 12, 8), 0.5, seed=11)
  xb, fb = jnp.asarray(x, jnp.bfloat16), jnp.asarray(flow, jnp.bfloat16)
  out, gx, gf = jax_warp(xb, fb, cot, "zeros", impl)
  assert out.dtype == jnp.bfloat16 and gx.dtype == jnp.bfloat16 and gf.dtype == jnp.bfloat16
  ref, _, _ = jax_warp(np.asarray(xb, np.float32), np.asarray(fb, np.float32), cot, "zeros", impl)
  np.testing.assert_allclose(np.asarray(out, np.float32), ref, rtol=2e-2, atol=2e-2)
  # Mixed: bfloat16 features with a float32 flow keep the flow precision and the flow's grad dtype.
  out2, _, gf2 = jax_warp(xb, flow, cot, "zeros", impl)
  assert out2.dtype == jnp.bfloat16 and gf2.dtype == np.float32


def test_impls_agree_on_model_shapes():
  """The three implementations agree at a fusion-level shape (16x8, C=32, batch 4)."""
  x, flow, cot = random_case((4, 16, 8, 32), 0.4, seed=12)
  results = [jax_warp(x, flow, cot, "zeros", impl) for impl in IMPLS]
  for other in results[1:]:
    for a, b in zip(results[0], other):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_reference_supports_forward_mode():
  x, flow, _ = random_case((1, 5, 6, 2), 0.3, seed=13)
  tangent = np.ones_like(flow)
  _, jvp_out = jax.jit(lambda f, t: jax.jvp(lambda f: bilinear_warp(x, f, impl="reference"), (f,), (t,)))(
      flow, tangent)
  gx = jax.jit(jax.grad(lambda f: jnp.vdot(bilinear_warp(x, f, impl="gather"), np.ones_like(x))))(flow)
  # Directional derivative along all-ones equals <grad, ones> summed over channels.
  np.testing.assert_allclose(np.sum(jvp_out), np.sum(gx), rtol=1e-4)


def test_bad_shapes_raise_clear_errors():
  x = jnp.zeros((2, 7, 12, 3))
  with pytest.raises(ValueError, match=r"x must be 4-D \(B, H, W, C\)"):
    bilinear_warp(jnp.zeros((7, 12, 3)), jnp.zeros((7, 12, 2)))
  with pytest.raises(ValueError, match=r"flow must be \(B, H, W, 2\) = \(2, 7, 12, 2\)"):
    bilinear_warp(x, jnp.zeros((2, 7, 12, 3)))
  with pytest.raises(ValueError, match=r"flow must be .* got shape \(2, 12, 7, 2\)"):
    bilinear_warp(x, jnp.zeros((2, 12, 7, 2)))
  with pytest.raises(ValueError, match="flow must be"):
    bilinear_warp(x, jnp.zeros((2, 2, 7, 12)))  # NCHW flow
  with pytest.raises(ValueError, match="padding must be"):
    bilinear_warp(x, jnp.zeros((2, 7, 12, 2)), padding="reflection")
  with pytest.raises(ValueError, match="impl must be"):
    bilinear_warp(x, jnp.zeros((2, 7, 12, 2)), impl="fast")
  with pytest.raises(ValueError, match="floating point"):
    bilinear_warp(x, jnp.zeros((2, 7, 12, 2), jnp.int32))
  # Raised at trace time under jit as well (shapes are static).
  with pytest.raises(ValueError, match="flow must be"):
    jax.jit(bilinear_warp)(x, jnp.zeros((2, 7, 11, 2)))


def test_resize_flow_scales_values():
  """A constant 1 px flow at h x w is 2 px at 2h x 2w; x and y scale separately."""
  flow = np.ones((2, 8, 4, 2), np.float32)
  up = resize_flow(flow, (16, 8))
  assert up.shape == (2, 16, 8, 2)
  np.testing.assert_allclose(up, 2.0, rtol=1e-6)
  aniso = resize_flow(flow, (4, 12))  # y halves, x triples
  np.testing.assert_allclose(aniso[..., 0], 3.0, rtol=1e-6)
  np.testing.assert_allclose(aniso[..., 1], 0.5, rtol=1e-6)


def test_resize_flow_is_consistent_with_warping():
  """An affine flow (a zoom) resized 2x up points to the same content: half-pixel centres map old
  pixel u to 2u + 0.5, so flow' (2u + 0.5) = 2 flow(u) in the interior (bilinear is exact on affine)."""
  h, w = 8, 6
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  flow = np.stack([0.1 * xs - 0.3 * ys + 1.0, 0.2 * ys + 0.05 * xs - 2.0], -1)[None].astype(np.float32)
  up = np.asarray(resize_flow(flow, (2 * h, 2 * w)))
  # New pixel (Y, X) sits at old coordinate ((Y + 0.5) / 2 - 0.5, (X + 0.5) / 2 - 0.5).
  yn, xn = np.meshgrid(np.arange(2 * h), np.arange(2 * w), indexing="ij")
  yo, xo = (yn + 0.5) / 2 - 0.5, (xn + 0.5) / 2 - 0.5
  expect = 2 * np.stack([0.1 * xo - 0.3 * yo + 1.0, 0.2 * yo + 0.05 * xo - 2.0], -1)
  interior = (slice(1, -1), slice(1, -1))
  np.testing.assert_allclose(up[0][interior], expect[interior], rtol=1e-5, atol=1e-5)


def test_resize_flow_bad_shapes():
  with pytest.raises(ValueError, match=r"flow must be \(B, h, w, 2\)"):
    resize_flow(jnp.zeros((8, 4, 2)), (16, 8))
  with pytest.raises(ValueError, match="size must be"):
    resize_flow(jnp.zeros((1, 8, 4, 2)), (16,))


@pytest.mark.parametrize("platform, blocked", [("cpu", True), ("cuda", False), ("tpu", False)])
def test_backward_form_is_chosen_per_lowering_platform(platform, blocked, monkeypatch):
  """The row-blocked backward (a scan, i.e. a while loop) is CPU-only and chosen at lowering time: a
  program lowered on this CPU machine for GPU or TPU (jax.export) gets the one-block form."""
  monkeypatch.setattr(warp_lib, "_CHUNK_ELEMENTS", 2 * 3 * 12 * 3)  # forces blocks on CPU
  x, flow, cot = random_case((3, 12, 12, 3), 0.5, seed=3)
  loss = lambda x, f: jnp.sum(warp_lib.bilinear_warp(x, f) * cot)
  exported = jax.export.export(jax.jit(jax.grad(loss, argnums=(0, 1))), platforms=(platform,))(x, flow)
  text = exported.mlir_module()
  assert ("stablehlo.while" in text) == blocked, platform
