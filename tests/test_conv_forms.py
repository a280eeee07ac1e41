"""The exact fast convolution forms (rfgen_jax.models.conv_forms) against torch, values and gradients.

Each form is checked on map sizes that take every code path on CPU (patches + matmul on tiny maps,
XLA's convolution on larger ones, space-to-depth for small stride-2 outputs) and with impl "xla" (the
form every other platform lowers to), against `torch.nn.functional` in float64.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from rfgen_jax.models import conv_forms, layers


def _torch_nchw(x):
  return torch.tensor(np.asarray(x), dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()


def _check(jax_fn, torch_fn, x, kernel_jax, kernel_torch, tol=1e-10):
  """Values and the gradients of sum(y * g) w.r.t. x and the kernel agree."""
  with jax.enable_x64(True):
    xj, kj = jnp.asarray(x, jnp.float64), jnp.asarray(kernel_jax, jnp.float64)
    y = jax_fn(xj, kj)
    g = np.random.default_rng(5).standard_normal(y.shape)
    gx, gk = jax.grad(lambda a, k: jnp.sum(jax_fn(a, k) * g), (0, 1))(xj, kj)
    y, gx, gk = np.asarray(y), np.asarray(gx), np.asarray(gk)
  xt = _torch_nchw(x)
  kt = torch.tensor(np.asarray(kernel_torch), dtype=torch.float64).requires_grad_()
  yt = torch_fn(xt, kt)
  gxt, gkt = torch.autograd.grad(yt, (xt, kt), torch.tensor(g).permute(0, 3, 1, 2))
  np.testing.assert_allclose(y, yt.detach().permute(0, 2, 3, 1).numpy(), atol=tol)
  np.testing.assert_allclose(gx, gxt.permute(0, 2, 3, 1).numpy(), atol=tol)
  return gk, gkt.numpy()


@pytest.mark.parametrize("impl", ["auto", "xla"])
@pytest.mark.parametrize("hw", [(2, 1), (4, 2), (5, 3), (8, 6)])
def test_conv_up_is_torch_conv_transpose(impl, hw):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2,) + hw + (5,))
  w = rng.standard_normal((5, 4, 3, 3))                      # torch (C_in, C_out, kh, kw)
  gk, gkt = _check(lambda a, k: conv_forms.conv_up(a, k, impl),
                   lambda a, k: torch.nn.functional.conv_transpose2d(
                       a, k, stride=2, padding=1, output_padding=1),
                   x, w.transpose(2, 3, 0, 1), w)
  np.testing.assert_allclose(gk, gkt.transpose(2, 3, 0, 1), atol=1e-10)


@pytest.mark.parametrize("impl", ["auto", "xla"])
@pytest.mark.parametrize("hw", [(4, 2), (8, 4), (16, 8), (12, 10)])
def test_conv_down_is_torch_conv2d_stride2(impl, hw):
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2,) + hw + (3,))
  w = rng.standard_normal((6, 3, 4, 4))                      # torch (C_out, C_in, kh, kw)
  gk, gkt = _check(lambda a, k: conv_forms.conv_down(a, k, impl),
                   lambda a, k: torch.nn.functional.conv2d(a, k, stride=2, padding=1),
                   x, w.transpose(2, 3, 1, 0), w)
  np.testing.assert_allclose(gk, gkt.transpose(2, 3, 1, 0), atol=1e-10)


@pytest.mark.parametrize("impl", ["auto", "xla"])
@pytest.mark.parametrize("hw", [(4, 2), (2, 1), (8, 8)])
def test_conv2d_is_torch_conv2d(impl, hw):
  rng = np.random.default_rng(2)
  x = rng.standard_normal((2,) + hw + (3,))
  w = rng.standard_normal((4, 3, 3, 3))
  gk, gkt = _check(lambda a, k: conv_forms.conv2d(a, k, ((1, 1), (1, 1)), impl),
                   lambda a, k: torch.nn.functional.conv2d(a, k, padding=1),
                   x, w.transpose(2, 3, 1, 0), w)
  np.testing.assert_allclose(gk, gkt.transpose(2, 3, 1, 0), atol=1e-10)


def test_space_to_depth_round_trip_and_kernel_layout():
  x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
  s2d = conv_forms.space_to_depth(jnp.asarray(x))
  assert s2d.shape == (2, 2, 3, 12)
  # channel (ph * 2 + pw) * C + c holds pixel (2i + ph, 2j + pw)
  np.testing.assert_array_equal(np.asarray(s2d)[1, 1, 2, (1 * 2 + 0) * 3 + 2], x[1, 3, 4, 2])
  np.testing.assert_array_equal(np.asarray(conv_forms.depth_to_space(s2d)), x)


@pytest.mark.parametrize("kind,k", [("conv", 3), ("down", 4), ("up", 3)])
def test_conv_module_keeps_flax_parameter_names_and_shapes(kind, k):
  import flax.linen as nn
  x = jnp.zeros((1, 8, 4, 5))
  ours = jax.eval_shape(layers.Conv(7, k, kind=kind).init, jax.random.key(0), x)
  flax_layer = (nn.ConvTranspose(7, (3, 3), strides=(2, 2)) if kind == "up"
                else nn.Conv(7, (k, k), strides=2 if kind == "down" else 1))
  theirs = jax.eval_shape(flax_layer.init, jax.random.key(0), x)
  assert jax.tree.map(lambda a: a.shape, ours) == jax.tree.map(lambda a: a.shape, theirs)


def test_reflect_padding_matches_torch():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((1, 6, 5, 2)).astype(np.float32)
  module = layers.Conv(3, 3, padding="reflect")
  params = module.init(jax.random.key(0), x)
  y = np.asarray(module.apply(params, x))
  w = np.asarray(params["params"]["kernel"]).transpose(3, 2, 0, 1)
  xt = torch.nn.functional.pad(torch.tensor(x).permute(0, 3, 1, 2), (1, 1, 1, 1), mode="reflect")
  yt = torch.nn.functional.conv2d(xt, torch.tensor(w), torch.tensor(np.asarray(params["params"]["bias"])))
  np.testing.assert_allclose(y, yt.permute(0, 2, 3, 1).numpy(), atol=1e-5)


def test_bad_impl_is_a_clear_error():
  with pytest.raises(ValueError, match="model.conv_impl"):
    conv_forms.conv_up(jnp.zeros((1, 2, 2, 1)), jnp.zeros((3, 3, 1, 1)), impl="fast")
