"""The two training steps: what each stage updates, and that the sharded step equals the 1-device step."""
import functools
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from rfgen_jax import config_utils, models
from rfgen_jax.nets import vgg19
from rfgen_jax.train import state as state_lib, steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config():
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.pose_channels = 18
  return config


def random_batch(config, batch_size, seed=0):
  rng = np.random.default_rng(seed)
  h, w = config.data.image_size
  k, p = config.data.num_sources, config.data.pose_channels
  return {
      "source_images": rng.uniform(-1, 1, (batch_size, k, h, w, 3)).astype(np.float32),
      "source_poses": rng.uniform(0, 1, (batch_size, k, h, w, p)).astype(np.float32),
      "target_image": rng.uniform(-1, 1, (batch_size, h, w, 3)).astype(np.float32),
      "target_pose": rng.uniform(0, 1, (batch_size, h, w, p)).astype(np.float32),
  }


@functools.lru_cache(maxsize=None)
def _setup():
  config = tiny_config()
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  vgg, vgg_params = vgg19.load_vgg19(config)
  state = jax.jit(lambda r: state_lib.init_state(config, r, gen, disc))(jax.random.PRNGKey(0))
  return config, gen, disc, vgg, vgg_params, state


def _changed(before, after):
  return jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), before, after)


def test_stage1_updates_only_flow_estimator():
  config, gen, _, vgg, vgg_params, state = _setup()
  step = jax.jit(functools.partial(steps.flow_step, config=config, generator=gen, vgg=vgg))
  new_state, metrics = step(state, random_batch(config, 2), vgg_params)
  assert int(new_state.step) == 1
  assert np.isfinite(float(metrics["loss/flow_total"])) and float(metrics["loss/correctness"]) > 0
  changed = _changed(state.gen_params, new_state.gen_params)
  flow_heads = {k: v for k, v in changed["flow_estimator"].items() if k.startswith("flow")}
  assert flow_heads and all(jax.tree.leaves(flow_heads)), "the flow heads must move"
  others = {k: v for k, v in changed.items() if k != "flow_estimator"}
  assert not any(jax.tree.leaves(others)), "stage 1 must not touch other generator parameters"
  assert not any(jax.tree.leaves(_changed(state.disc_params, new_state.disc_params)))


def test_stage2_updates_generator_and_discriminator():
  config, gen, disc, vgg, vgg_params, state = _setup()
  step = jax.jit(functools.partial(steps.full_step, config=config, generator=gen, discriminator=disc,
                                   vgg=vgg))
  new_state, metrics = step(state, random_batch(config, 2), vgg_params)
  for name in ("loss/l1", "loss/perceptual", "loss/style", "loss/correctness", "loss/gen_adversarial",
               "loss/disc"):
    assert np.isfinite(float(metrics[name])), name
  gen_changed = _changed(state.gen_params, new_state.gen_params)
  for part in gen_changed:
    assert any(jax.tree.leaves(gen_changed[part])), f"generator part {part} did not move"
  assert any(jax.tree.leaves(_changed(state.disc_params, new_state.disc_params)))
  assert not any(jax.tree.leaves(_changed(state.flow_opt_state, new_state.flow_opt_state)))


SHARDED_SCRIPT = textwrap.dedent("""
    import os, sys, functools
    sys.path.insert(0, {root!r})
    import jax, numpy as np
    from tests.test_train import tiny_config, random_batch
    from rfgen_jax import models
    from rfgen_jax.nets import vgg19
    from rfgen_jax.train import sharding, state as state_lib, steps
    assert jax.device_count() == 8, jax.devices()
    config = tiny_config()
    config.train.batch_size = 8
    gen, disc = models.build_generator(config), models.build_discriminator(config)
    vgg, vgg_params = vgg19.load_vgg19(config)
    batch = random_batch(config, 8, seed=1)
    results = {{}}
    for n in (1, 8):
      mesh = sharding.make_mesh((-1, 1), devices=jax.devices()[:n])
      rep = sharding.replicated(mesh)
      init = functools.partial(state_lib.init_state, config, generator=gen, discriminator=disc)
      abstract = jax.eval_shape(init, jax.random.PRNGKey(0))
      st_sh = jax.tree.map(lambda _: rep, abstract)
      make_state = jax.jit(init, out_shardings=st_sh)
      jit = functools.partial(steps.jit_step, state_sharding=st_sh,
                              batch_sharding=sharding.data_sharded(mesh), replicated_sharding=rep)
      flow = jit(steps.flow_step, config=config, generator=gen, vgg=vgg)
      full = jit(steps.full_step, config=config, generator=gen, discriminator=disc, vgg=vgg)
      vp = jax.device_put(vgg_params, rep)
      gb = sharding.to_global_batch(batch, mesh)
      assert len(gb["source_images"].sharding.device_set) == n
      # Each stage from the same initial state (a state donated to one step cannot feed the other).
      results[n] = jax.device_get((flow(make_state(jax.random.PRNGKey(0)), gb, vp),
                                   full(make_state(jax.random.PRNGKey(0)), gb, vp)))
    # Losses agree to float rounding. Parameters agree to within a fraction of one Adam step: Adam's first
    # update is ~lr * sign(g), so a gradient that is ~0 on one layout may flip sign on the other (the
    # reduction order of the batch differs; e.g. a conv bias before InstanceNorm has an exactly-zero true
    # gradient); that moves one weight by at most 2 * lr. The gradient norms are among the metrics above.
    lr = config.train.learning_rate
    for stage in (0, 1):
      one, eight = results[1][stage], results[8][stage]
      for name in one[1]:
        np.testing.assert_allclose(one[1][name], eight[1][name], rtol=1e-4, atol=1e-6, err_msg=name)
    for a, b in zip(jax.tree.leaves(results[1]), jax.tree.leaves(results[8])):
      a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
      np.testing.assert_allclose(a, b, rtol=0, atol=2.5 * lr)
    print("SHARDED_OK")
""")


def test_sharded_step_equals_single_device():
  """Both stages on 8 simulated CPU devices give the state computed on one device."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT.format(root=ROOT)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert "SHARDED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-6000:]
