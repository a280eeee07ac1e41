"""The model switches of issue 9 (items 7) and the conv forms inside the generator.

- `model.init`: "orthogonal" is GFLA's `init_weights("orthogonal", gain=0.02)`; "lecun" flax's default.
- `model.jump_norm` / `model.output_norm`: GFLA's Jump and Output have no normalisation (default).
- `model.attention_activation`: "sigmoid" (the paper: a^k in (0, 1), then softmax over K) or "none".
- `model.conv_impl`: "auto" (fast forms on CPU) and "xla" give the same generator.
"""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from configs import common, market
from rfgen_jax import models
from rfgen_jax.models import layers, rf_block


def _config(**model):
  c = market.get_config()
  c.model.width = 0.125
  c.data.image_size = (32, 32)
  for key, value in model.items():
    c.model[key] = value
  return c


def _init(config, k=2):
  gen = models.build_generator(config)
  return gen, jax.jit(gen.init)(jax.random.key(0, impl="rbg"), *models.example_inputs(config, 1, k))


@pytest.fixture(scope="module")
def lecun_init():
  """(generator, variables) of `_config(init="lecun")`, initialised once for the tests that read it."""
  return _init(_config(init="lecun"))


def _param_shapes(config, k=2):
  """The generator's parameter tree as shapes (`jax.eval_shape`: traced, not compiled)."""
  gen = models.build_generator(config)
  return jax.eval_shape(gen.init, jax.random.key(0, impl="rbg"), *models.example_inputs(config, 1, k))["params"]


def _leaves(tree):
  return {"/".join(str(getattr(p, "key", p)) for p in path): v
          for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_defaults_follow_gfla_and_the_paper():
  m = common.get_base_config().model
  assert (m.init, m.jump_norm, m.output_norm, m.attention_activation, m.conv_impl) == (
      "orthogonal", False, False, "sigmoid", "auto")


def test_orthogonal_init_is_torchs_orthogonal_with_gain_002():
  _, variables = _init(_config(init="orthogonal"))
  kernels = {k: v for k, v in _leaves(variables["params"]).items() if k.endswith("kernel")}
  checked = 0
  for name, kernel in kernels.items():
    kernel = np.asarray(kernel, np.float64)
    if "residual_predictor/conv_out" in name:
      assert not kernel.any(), name           # R_i's last conv stays zero (residual = 0 at init)
      continue
    # torch's orthogonal_ on (C_out, C_in*k*k) (conv) or (C_in, C_out*k*k) (transposed conv).
    up = name.endswith(("conv_up/kernel", "shortcut/kernel"))
    rows = np.moveaxis(kernel, -2 if up else -1, 0).reshape(kernel.shape[-2 if up else -1], -1)
    gram = rows @ rows.T if rows.shape[0] <= rows.shape[1] else rows.T @ rows
    np.testing.assert_allclose(gram, 0.02 ** 2 * np.eye(len(gram)), atol=1e-9, err_msg=name)
    checked += 1
  assert checked > 20
  # The same property for torch's own initialiser (the oracle of the convention above).
  w = torch.empty(8, 4, 3, 3)
  torch.nn.init.orthogonal_(w, gain=0.02)
  w = w.reshape(8, -1).double().numpy()
  np.testing.assert_allclose(w @ w.T, 0.02 ** 2 * np.eye(8), atol=1e-9)


def test_lecun_init_keeps_the_small_flow_heads(lecun_init):
  _, variables = lecun_init
  p = variables["params"]["flow_estimator"]
  assert np.asarray(p["flow_8"]["kernel"]).std() < 1e-2
  assert np.asarray(p["encoder_0"]["conv"]["kernel"]).std() > 1e-2


@pytest.mark.parametrize("key,names", [
    ("jump_norm", ("flow_estimator/jump_8/norm/scale",)),
    ("output_norm", ("decoder/out/norm/scale",))])
def test_norm_switches_add_exactly_the_norm_parameters(key, names):
  off = _leaves(_param_shapes(_config(**{key: False})))
  on = _leaves(_param_shapes(_config(**{key: True})))
  extra = sorted(set(on) - set(off))
  assert not set(off) - set(on)
  for name in names:
    assert f"params/{name}" in [f"params/{e}" for e in extra] or name in extra
  assert all("/norm/" in e for e in extra)


def test_attention_activation_sigmoid_then_softmax():
  k, shape = 3, (1, 3, 4, 4, 1)
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
  feats = jnp.asarray(rng.normal(size=(1, k, 4, 4, 2)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32)
  flows = jnp.zeros((1, k, 4, 4, 2))
  occ = jnp.zeros(shape)
  weights = {}
  for act in ("sigmoid", "none"):
    block = rf_block.RFBlock(residual_flow=False, attention_activation=act)
    fused, aux = block.apply({}, target, feats, flows, occ, logits)
    weights[act] = np.asarray(aux["attention"])
    np.testing.assert_allclose(np.asarray(fused), np.sum(weights[act] * np.asarray(feats), axis=1),
                               atol=1e-5)
  a = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  np.testing.assert_allclose(weights["sigmoid"], np.exp(a) / np.exp(a).sum(1, keepdims=True), atol=1e-6)
  lg = np.asarray(logits, np.float64)
  np.testing.assert_allclose(weights["none"], np.exp(lg) / np.exp(lg).sum(1, keepdims=True), atol=1e-6)
  # a in (0, 1) bounds the weight ratio between two sources at a pixel by e.
  assert (weights["sigmoid"].max(axis=1) / weights["sigmoid"].min(axis=1)).max() < np.e
  with pytest.raises(ValueError, match="attention_activation"):
    rf_block.RFBlock(residual_flow=False, attention_activation="relu").apply(
        {}, target, feats, flows, occ, logits)


def test_conv_impl_auto_and_xla_give_the_same_generator(lecun_init):
  config = _config(init="lecun")
  gen_auto, variables = lecun_init
  config.model.conv_impl = "xla"
  gen_xla = models.build_generator(config)
  rng = np.random.default_rng(0)
  h, w = config.data.image_size
  p = config.data.pose_channels
  inputs = (jnp.asarray(rng.uniform(-1, 1, (2, 2, h, w, 3)), jnp.float32),
            jnp.asarray(rng.uniform(0, 1, (2, 2, h, w, p)), jnp.float32),
            jnp.asarray(rng.uniform(0, 1, (2, h, w, p)), jnp.float32))

  def loss(gen):
    return lambda params: jnp.sum(jnp.sin(3 * gen.apply({"params": params}, *inputs)["image"]))

  va, ga = jax.jit(jax.value_and_grad(loss(gen_auto)))(variables["params"])
  vx, gx = jax.jit(jax.value_and_grad(loss(gen_xla)))(variables["params"])
  np.testing.assert_allclose(float(va), float(vx), rtol=1e-4)
  # Relative to the largest gradient of the tree: biases just before an instance norm have a true
  # gradient of 0, and their float32 noise (~1e-7) differs between the forms.
  scale = max(float(np.abs(np.asarray(b)).max()) for b in _leaves(gx).values())
  for (name, a), b in zip(_leaves(ga).items(), _leaves(gx).values()):
    assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= 1e-4 * scale, name


def test_bad_switch_values_are_config_errors():
  for key, value in (("init", "xavier"), ("conv_impl", "fast"), ("attention_activation", "tanh")):
    with pytest.raises(ValueError, match=f"model.{key}"):
      models.validate_model_config(_config(**{key: value}))
  with pytest.raises(ValueError, match="model.init"):
    layers.Options(init="xavier")
