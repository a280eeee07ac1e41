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

# The tests' programs are tiny (32x32 images, a handful of steps), so compiling them costs far more than
# running them: LLVM optimisation level 0 cuts the cold suite's compile time (measured: the conv-form and
# overfit tests 150 s -> 101 s from an empty cache) and changes no result beyond float rounding. Subprocess
# tests append their own flags (`--xla_force_host_platform_device_count`) to this value. A user who wants
# the optimised backend sets XLA_FLAGS themselves (any value containing `xla_backend_optimization_level`
# is kept as it is).
# XLA:CPU's fusion emitters (MLIR-based, the default) take twice as long to compile the tests' steps as
# its older elemental emitters: `--xla_cpu_use_fusion_emitters=false` (measured on the 2-core VM, the tiny
# config's steps from an empty cache: stage 1 5.4 s -> 2.7 s, stage 2 14.1 s -> 6.8 s, the same run time).
# Each flag is added only if the user's XLA_FLAGS do not name it.
# jaxlib 0.12.1 no longer knows `xla_cpu_use_fusion_emitters` (XLA aborts on an unknown flag), so that one
# is added on jaxlib 0.10.x only, where it was measured.
def _jaxlib_version():
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  try:
    return tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version("jaxlib"))[:2])
  except importlib.metadata.PackageNotFoundError:
    return (0, 0)


_TEST_FLAGS = ["--xla_backend_optimization_level=0"]
if _jaxlib_version() < (0, 11):
  _TEST_FLAGS.append("--xla_cpu_use_fusion_emitters=false")
for _flag in _TEST_FLAGS:
  if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

import pytest  # noqa: E402  (after the environment above, which must precede any jax import)

# The torch oracles: requirements-test.txt installs torch (a CPU wheel) on Python 3.11 only; on 3.12+
# PyPI's torch is the multi-GB CUDA build. There, without torch, these files (each imports torch, or
# benchmarks.torch_twin, at its top) are not collected; on 3.11 a missing torch stays an import error.
TORCH_FILES = ("test_benchmarks.py", "test_conv_forms.py", "test_inception.py", "test_losses.py",
               "test_lpips.py", "test_model_options.py", "test_vgg19.py", "test_video_to_dataset.py",
               "test_warp.py")
collect_ignore = []
if sys.version_info >= (3, 12):
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec("torch") is None:
    collect_ignore = list(TORCH_FILES)


@pytest.fixture(scope="session")
def tiny_train_setup():
  """The `configs/synthetic.py:tiny` model (32x32, width 0.125, K = 2, P = 18) and its initial state.

  (config, generator, discriminator, vgg, vgg_params, state), built once per session: the parameter
  init is compiled once, and every test that trains the tiny model starts from the same state. Treat it
  as read-only: jit the steps without donating the state, do not edit the config.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from rfgen_jax import config_utils, models  # pylint: disable=g-import-not-at-top
  from rfgen_jax.nets import vgg19  # pylint: disable=g-import-not-at-top
  from rfgen_jax.runtime import state as state_lib  # pylint: disable=g-import-not-at-top
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.pose_channels = 18
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  vgg, vgg_params = vgg19.load_vgg19(config)
  state = state_lib.create_state(config, jax.random.PRNGKey(0), gen, disc)
  return config, gen, disc, vgg, vgg_params, state



@pytest.fixture(scope="session")
def tiny_train_step(tiny_train_setup):
  """`step(stage, state, host_batch) -> (new_state, metrics)`: one train step of the tiny model as the
  trainer runs it: `steps.make_train_step` on the 1-device mesh of `train.mesh_shape` (fixed-order gradient
  mean, the on-device finiteness record), compiled once per stage and session. These are the programs the
  tiny trainer runs of tests/test_main.py compile, so the two share the compilation cache (and, in one
  worker, the trace). `state` is copied to the devices first (the compiled step donates its input), so the
  caller's state stays valid."""
  import jax  # pylint: disable=g-import-not-at-top
  from rfgen_jax.train import steps  # pylint: disable=g-import-not-at-top
  from rfgen_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  config, gen, disc, vgg, vgg_params, _ = tiny_train_setup
  mesh = sharding.make_mesh(config.train.mesh_shape)
  replicated = sharding.replicated(mesh)
  spec = steps.StepSpec.create(config, gen, disc, vgg, mesh)
  vgg_params = jax.device_put(vgg_params, replicated)
  compiled = {}     # {stage: [compiled step, its current health record]}

  def step(stage, state, host_batch):
    state_sharding = jax.tree.map(lambda _: replicated, state)
    state = jax.device_put(jax.device_get(state), state_sharding)      # fresh buffers, donated below
    batch = sharding.to_global_batch({key: host_batch[key] for key in steps.BATCH_KEYS}, mesh)
    if stage not in compiled:
      health = steps.initial_health(stage, spec, state, batch, vgg_params, replicated)
      compiled[stage] = [steps.make_train_step(stage, spec, state, batch, vgg_params, health,
                                            state_sharding=state_sharding,
                                            batch_sharding=sharding.data_sharded(mesh),
                                            replicated_sharding=replicated), health]
    fn, health = compiled[stage]
    new_state, metrics, compiled[stage][1] = fn(state, batch, vgg_params, health)
    return new_state, metrics
  return step

# The longest files (cold, measured on the 2-core VM: the two-process run 155 s, the main job's runs
# 107 s, the 8-device reduction 59 s, the evaluators 60 s, ...) are collected first, so that pytest-xdist
# (`--dist loadfile`; its reordering by test count is turned off in `pytest_configure`, as
# `--no-loadscope-reorder` would) hands them out first and the short files fill the gaps around them. xdist's default order (most tests first) started the two-process file,
# which has one default test, last: one worker idled while the other ran it for minutes.
_LONGEST_FIRST = ("test_multiprocess.py", "test_main.py", "test_evaluators.py", "test_reduction.py",
                  "test_real_configs.py", "test_overfit.py", "test_train.py", "test_model_options.py",
                  "test_entry_points.py")


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: files stay contiguous


def pytest_configure(config):
  if hasattr(config.option, "loadscopereorder"):   # pytest-xdist is loaded (not with `-p no:xdist`)
    config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):   # pylint: disable=unused-argument
  """Collects the session's garbage now, then freezes what is left out of later collections.

  Under pytest-xdist a worker reports "finished" right after this hook; the controller then asks it to
  exit and, if it has not within 5 s, execnet sends it SIGINT. pytest's unconfigure runs a full
  `gc.collect()` after the report: over a heap of jax, TensorFlow and torch objects, with jax's
  `_xla_gc_callback` freeing device buffers, that took over 5 s on a busy 2-core host, and the SIGINT
  arrived inside the collection: "PytestUnraisableExceptionWarning ... KeyboardInterrupt" in
  `_xla_gc_callback`. Collected here (before the report), the later collection has nothing to traverse.
  """
  import gc  # pylint: disable=g-import-not-at-top
  gc.collect()
  gc.freeze()
