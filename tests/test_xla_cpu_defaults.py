"""rfgen_jax turns off XLA:CPU's YNNPACK fusions (`rfgen_jax/xla_cpu_defaults.py`)."""
import re

import jax
import numpy as np

import rfgen_jax  # noqa: F401  (applies the defaults on import)
from rfgen_jax import xla_cpu_defaults


def test_flag_added_unless_xla_flags_names_it():
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  if jax._src.xla_bridge.backends_are_initialized():  # pylint: disable=protected-access
    assert not xla_cpu_defaults.apply(env) and env["XLA_FLAGS"] == "--xla_backend_optimization_level=0"
  mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"}
  assert not xla_cpu_defaults.apply(mine)
  assert mine["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"


def test_flag_added_before_the_backend_starts(monkeypatch):
  monkeypatch.setattr(jax._src.xla_bridge, "backends_are_initialized", lambda: False)  # pylint: disable=protected-access
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  assert xla_cpu_defaults.apply(env)
  assert env["XLA_FLAGS"] == ("--xla_backend_optimization_level=0 "
                              "--xla_cpu_experimental_ynn_fusion_type=")
  assert xla_cpu_defaults.apply({}) is True


def test_convolutions_of_this_process_are_not_ynnpack_fusions():
  """The flag took effect: a compiled convolution (and its gradients) holds no YNNPACK fusion. (The shape
  is one YNNPACK takes without the flag, 16x64x32x64 as in benchmarks/conv3x3.py; tiny ones stay in XLA.)"""
  x, w = np.zeros((16, 64, 32, 64), np.float32), np.zeros((3, 3, 64, 64), np.float32)
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  text = jax.jit(lambda x, w: jax.grad(lambda x, w: conv(x, w).sum(), (0, 1))(x, w)).lower(x, w).compile().as_text()
  assert "convolution" in text
  assert not re.search(r'"kind":"__ynn_fusion"', text), "a convolution went to YNNPACK"
