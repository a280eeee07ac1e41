"""Shared pytest setup: repository root on sys.path (for `configs.*`), CPU-only JAX, quiet TensorFlow."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Compiled programs are shared between tests (and their subprocesses) through JAX's persistent
# compilation cache: the tiny training runs of several tests compile the same steps.
_CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "rfgen_jax_test_compilation_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
