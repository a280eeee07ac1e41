"""rfgen_jax turns off XLA:CPU's YNNPACK fusions on the jaxlib releases where that measured faster
(`rfgen_jax/xla_cpu_defaults.py`, MEASURED)."""
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

import rfgen_jax  # noqa: F401  (applies the defaults on import)
from rfgen_jax import xla_cpu_defaults

INSTALLED = xla_cpu_defaults.jaxlib_version()
OFF = xla_cpu_defaults.ynnpack_off(INSTALLED)


def test_installed_jaxlib_was_measured():
  """A jaxlib series without an entry in MEASURED fails here: measure it (the module docstring's
  commands, with and without the flag) and enter the result, instead of the setting silently changing."""
  assert OFF is not None, (f"jaxlib {INSTALLED}: XLA:CPU's YNNPACK setting not measured; "
                           "add it to rfgen_jax/xla_cpu_defaults.py's MEASURED")


def test_decision_per_release():
  assert xla_cpu_defaults.ynnpack_off((0, 10, 2)) is True
  assert xla_cpu_defaults.ynnpack_off((0, 10, 7)) is True
  assert xla_cpu_defaults.ynnpack_off((0, 10, 1)) is None    # before the first checked release
  assert xla_cpu_defaults.ynnpack_off((0, 11, 0)) is None    # never measured
  assert xla_cpu_defaults.ynnpack_off((0, 13, 0)) is None    # a newer series
  assert xla_cpu_defaults.ynnpack_off(None) is None
  for series, (first, off) in xla_cpu_defaults.MEASURED.items():
    assert first[:2] == series and isinstance(off, bool)


def test_unmeasured_jaxlib_keeps_jax_default_and_warns(monkeypatch):
  monkeypatch.setattr(xla_cpu_defaults, "jaxlib_version", lambda: (0, 13, 0))
  monkeypatch.setattr(jax._src.xla_bridge, "backends_are_initialized", lambda: False)  # pylint: disable=protected-access
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  with pytest.warns(xla_cpu_defaults.UnmeasuredJaxlibWarning, match="0.13.0"):
    assert not xla_cpu_defaults.apply(env)
  assert env["XLA_FLAGS"] == "--xla_backend_optimization_level=0"


def test_flag_added_unless_xla_flags_names_it():
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  if jax._src.xla_bridge.backends_are_initialized():  # pylint: disable=protected-access
    assert not xla_cpu_defaults.apply(env) and env["XLA_FLAGS"] == "--xla_backend_optimization_level=0"
  mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"}
  assert not xla_cpu_defaults.apply(mine)
  assert mine["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"


@pytest.mark.parametrize("version", sorted(v[0] for v in xla_cpu_defaults.MEASURED.values()))
def test_flag_added_before_the_backend_starts(monkeypatch, version):
  monkeypatch.setattr(xla_cpu_defaults, "jaxlib_version", lambda: version)
  monkeypatch.setattr(jax._src.xla_bridge, "backends_are_initialized", lambda: False)  # pylint: disable=protected-access
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  off = xla_cpu_defaults.ynnpack_off(version)
  assert xla_cpu_defaults.apply(env) is off
  assert env["XLA_FLAGS"] == ("--xla_backend_optimization_level=0 --xla_cpu_experimental_ynn_fusion_type="
                              if off else "--xla_backend_optimization_level=0")
  assert xla_cpu_defaults.apply({}) is off


@pytest.mark.skipif(not OFF, reason="this jaxlib keeps YNNPACK (or is not measured)")
def test_installed_jaxlib_accepts_the_flag():
  """XLA aborts on a flag it does not know: a fresh process with the flag compiles and runs a program."""
  env = dict(os.environ, XLA_FLAGS=xla_cpu_defaults.NO_YNNPACK, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", "import jax.numpy as jnp; print(float((jnp.ones(3) * 2).sum()))"],
                       env=env, capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode == 0 and out.stdout.strip() == "6.0", out.stderr[-2000:]


@pytest.mark.skipif(not OFF, reason="this jaxlib keeps YNNPACK (or is not measured)")
def test_convolutions_of_this_process_are_not_ynnpack_fusions():
  """The flag took effect: a compiled convolution (and its gradients) holds no YNNPACK fusion. (The shape
  is one YNNPACK takes without the flag, 16x64x32x64 as in benchmarks/conv3x3.py; tiny ones stay in XLA.)"""
  x, w = np.zeros((16, 64, 32, 64), np.float32), np.zeros((3, 3, 64, 64), np.float32)
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  text = jax.jit(lambda x, w: jax.grad(lambda x, w: conv(x, w).sum(), (0, 1))(x, w)).lower(x, w).compile().as_text()
  assert "convolution" in text
  assert not re.search(r'"kind":"__ynn_fusion"', text), "a convolution went to YNNPACK"
