"""`train.grad_reduction`: the fixed-order mean over devices (`rfgen_jax/runtime/reduction.py`) and the step
run per device under `shard_map` (`steps.per_device_with_fixed_order_mean`), on 8 simulated CPU devices in a subprocess.

That the fixed order makes 2 processes x 4 devices compute 1 process x 8 devices' bits is tested with
real processes in tests/test_multiprocess.py.
"""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from rfgen_jax import config_utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {root!r})
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import PartitionSpec as P
    from tests.test_train import tiny_config, random_batch
    from rfgen_jax import models
    from rfgen_jax.nets import vgg19
    from rfgen_jax.train import steps
    from rfgen_jax.runtime import reduction, sharding, state as state_lib
    assert jax.device_count() == 8, jax.devices()
    mesh = sharding.make_mesh((-1, 1))

    # fixed_order_mean: odd leaf sizes (the flattened 8 * 13 + 3 values need padding), per-device values.
    rng = np.random.default_rng(0)
    tree = {{"a": rng.normal(size=(8, 5, 13)).astype(np.float32), "b": rng.normal(size=(8, 3)).astype(np.float32),
             "c": rng.normal(size=(8,)).astype(np.float32)}}
    mean = jax.jit(jax.shard_map(lambda t: jax.tree.map(lambda x: x[None], reduction.fixed_order_mean(
        jax.tree.map(lambda x: x[0], t), "data")), mesh=mesh, in_specs=P("data"), out_specs=P("data"),
        check_vma=False))
    out = jax.device_get(mean(tree))
    for name, x in tree.items():
      want = x.astype(np.float64).mean(axis=0)
      for device in range(8):    # every device holds the same bits: one program, run on each device
        np.testing.assert_array_equal(out[name][device], out[name][0], err_msg=name)
      # The mean to float32 rounding, whatever order XLA adds the 8 rows in (one `jnp.sum`: the order
      # may differ between CPU types): 7 float32 adds are within 7 * 2**-24 * sum |x| of the exact sum
      # in any order, and dividing by 8 is exact. Measured: at most 0.12 of that bound (also with
      # XLA_FLAGS=--xla_cpu_max_isa=SSE4_2); the earlier rtol=1e-6, atol=1e-7 was below the bound
      # where the mean is near 0.
      bound = 7 * 2.0**-24 * np.abs(x.astype(np.float64)).sum(axis=0) / 8
      assert np.all(np.abs(out[name][0] - want) <= bound), (name, np.abs(out[name][0] - want).max())
      assert out[name].dtype == np.float32

    # One flow-warm-up step on 8 devices: per device with the fixed-order mean, and jitted on global
    # arrays with XLA's all-reduce; the same mean up to float rounding.
    # The initial state of the tiny model, made by the test process (`tiny_train_setup`, whose init is
    # compiled once per test session) and replicated here.
    config = tiny_config()
    gen, disc = models.build_generator(config), models.build_discriminator(config)
    vgg, vgg_params = vgg19.load_vgg19(config)
    rep = sharding.replicated(mesh)
    saved = np.load({state_path!r})
    treedef = jax.tree.structure(state_lib.abstract_state(config, gen, disc))
    state = jax.device_put(jax.tree.unflatten(treedef, [saved[f"leaf{{i}}"] for i in range(len(saved.files))]), rep)
    batch = sharding.to_global_batch(random_batch(config, 8, seed=1), mesh)
    vgg_params = jax.device_put(vgg_params, rep)
    part = functools.partial(steps.flow_step, config=config, generator=gen, vgg=vgg)
    results = {{}}
    for kind in ("fixed_order", "all_reduce"):
      config.train.grad_reduction = kind
      fn = jax.jit(steps.per_device_with_fixed_order_mean(part, config, mesh), out_shardings=rep)
      results[kind] = jax.device_get(fn(state, batch, vgg_params))
    (s1, m1), (s2, m2) = results["fixed_order"], results["all_reduce"]
    assert set(m1) == set(m2) and "grad_norm/flow_estimator" in m1, sorted(m1)
    # Two programs (the two reductions sum in different orders): losses and gradient norms to float
    # rounding, parameters to the Adam bound below.
    for name in m1:
      np.testing.assert_allclose(m1[name], m2[name], rtol=1e-5, err_msg=name)
    lr = config.train.learning_rate     # a ~0 gradient may flip sign: at most 2 lr apart (test_train.py)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
      np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=0, atol=2.5 * lr)
    moved = max(float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
                for a, b in zip(jax.tree.leaves(s1.gen_params), jax.tree.leaves(state.gen_params)))
    assert moved > 0.5 * lr, moved       # the step did update the parameters
    print("REDUCTION_OK")
""")


def test_fixed_order_mean_and_step_on_8_devices(tiny_train_setup, tmp_path):
  config, _, _, _, _, state = tiny_train_setup
  assert config.data.pose_channels == 18      # the model of `tiny_config()`, which the script builds
  state_path = str(tmp_path / "state.npz")
  np.savez(state_path, **{f"leaf{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(state))})
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8")
  result = subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT, state_path=state_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert "REDUCTION_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-6000:]


def test_unknown_grad_reduction_names_the_flag():
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.train.grad_reduction = "ring"
  with pytest.raises(ValueError, match=r"--config\.train\.grad_reduction='ring'; accepted"):
    config_utils.validate_config(config)
