"""Tests of the residual patch discriminator with spectral normalisation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import deepfashion, market
from rfgen_jax import models


def tiny(config_module, width=0.25):
  c = config_module.get_config()
  c.model.width = width
  return c


@pytest.mark.parametrize("config_module,expected", [(market, (2, 16, 8, 1)),
                                                     (deepfashion, (2, 16, 16, 1))])
def test_output_shape(config_module, expected):
  config = tiny(config_module)
  disc = models.build_discriminator(config)
  h, w = config.data.image_size
  images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, h, w, 3)), jnp.float32)
  variables = disc.init(jax.random.key(0, impl="rbg"), images)
  assert set(variables) == {"params", "batch_stats"}
  logits = jax.jit(disc.apply)(variables, images)
  assert logits.shape == expected and logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))
  # No normalisation layers: every parameter belongs to a conv (kernel or bias).
  leaves = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
  assert {path[-1].key for path, _ in leaves} == {"kernel", "bias"}


def test_spectral_norm_state_updates():
  config = tiny(market)
  disc = models.build_discriminator(config)
  h, w = config.data.image_size
  images = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, h, w, 3)), jnp.float32)
  variables = disc.init(jax.random.key(0, impl="rbg"), images)

  # update_stats=False leaves the power-iteration state untouched (and needs no mutable collection).
  frozen = disc.apply(variables, images, update_stats=False)

  @jax.jit
  def step(v):
    _, updates = disc.apply(v, images, update_stats=True, mutable=["batch_stats"])
    return {"params": v["params"], "batch_stats": updates["batch_stats"]}

  updated = step(variables)
  before = jax.tree_util.tree_leaves(variables["batch_stats"])
  after = jax.tree_util.tree_leaves(updated["batch_stats"])
  assert len(before) == len(after) > 0
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  assert np.all(np.isfinite(np.asarray(frozen)))

  # After repeated power iterations, sigma of the logits conv matches its largest singular value.
  for _ in range(30):
    updated = step(updated)
  kernel = np.asarray(updated["params"]["logits"]["kernel"])
  stats = updated["batch_stats"]["logits_sn"]
  sigma = float(stats["logits/kernel/sigma"])
  top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
  np.testing.assert_allclose(sigma, top, rtol=1e-3)
  block = np.asarray(updated["params"]["block_1"]["conv_0"]["kernel"])
  block_sigma = float(updated["batch_stats"]["block_1"]["conv_0_sn"]["conv_0/kernel/sigma"])
  np.testing.assert_allclose(
      block_sigma, np.linalg.svd(block.reshape(-1, block.shape[-1]), compute_uv=False)[0], rtol=2e-2)


def test_bad_input_raises():
  config = tiny(market)
  disc = models.build_discriminator(config)
  with pytest.raises(ValueError, match="images"):
    disc.init(jax.random.PRNGKey(0), jnp.zeros((1, 100, 64, 3)))
