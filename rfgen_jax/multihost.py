"""Barriers between the processes of a multi-process job, through JAX's coordination service.

Why not `jax.experimental.multihost_utils.sync_global_devices`: that barrier is a collective (a jitted
all-reduce), and on CPU hosts JAX's collectives are gloo's, which give up after 30 s when a peer is not
there. Any uneven host work before a collective then kills the job: process 0 preparing a data set or
writing a sample grid, one process compiling a step that another found in the persistent compilation
cache. `barrier(name)` waits at a barrier of the coordination service that `jax.distributed.initialize`
started (the same service Orbax and the preemption sync use), with a timeout in minutes, and costs a
round trip to the coordinator. Call it, on every process in the same order, before the first collective
that follows uneven work.

With one process it does nothing. Barrier ids are `name` plus a per-process call count, so the same name
may be used again (every process calls the barriers in the same order, so the counts agree).

`compile_everywhere_on_cpu()`, called right after `jax.distributed.initialize` (`rfgen_jax/main.py`):
a multi-process job on CPU hosts does not use JAX's persistent compilation cache (why: its docstring).
"""
from __future__ import annotations

import itertools

import jax
from absl import logging
from jax._src import distributed
from jax.experimental import multihost_utils

# Calls of `barrier` in this process: part of each barrier id, the same on every process.
_CALLS = itertools.count()

DEFAULT_TIMEOUT_S = 3600     # data preparation on process 0 may take long (a TFDS copy of DeepFashion)


def barrier(name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
  """Waits until every process reaches `barrier(name)` (no-op with one process).

  Args:
    name: what the processes wait for, e.g. "train steps compiled" (in the timeout's error message).
    timeout_s: seconds to wait for the slowest process before the coordination service fails the job.
  """
  if jax.process_count() <= 1:
    return
  client = distributed.global_state.client
  if client is None:   # several processes without jax.distributed (a runtime that set itself up)
    multihost_utils.sync_global_devices(name)
    return
  client.wait_at_barrier(f"rfgen_jax #{next(_CALLS)}: {name}", int(timeout_s * 1000))


def compile_everywhere_on_cpu() -> bool:
  """Turns JAX's persistent compilation cache off in a multi-process job on CPU; True if it did.

  Call after `jax.distributed.initialize` and before the first compilation (a no-op with one process, on
  GPU and TPU, or without a cache directory). Why:

  * Only process 0 writes cache entries, and on CPU the cache key holds the topology as each process sees
    it, so the other processes never find them (measured: the keys differ between process 0 and 1 on
    jaxlib 0.10.2 and 0.12.1). A warm cache thus lets process 0 load a step that the others compile, and
    the job waits for the slowest compilation all the same (`barrier("train steps compiled")`).
  * On jaxlib 0.12.1 that mix deadlocks: a cross-process collective (gloo's all-to-all, all-gather, psum)
    between an executable loaded from the cache (on process 0) and the same program freshly compiled (on
    the others) never completes; all ranks wait in gloo's send. Both compiled, or both loaded, run. The
    loaded executable's fingerprint differs from the compiled one's. jaxlib 0.10.2 ran the mix. (A resumed
    two-process run hung at its first step: tests/test_multiprocess.py, issue 32.)
  """
  if distributed.global_state.client is None:   # one process (checked without starting a backend)
    return False
  if jax.process_count() <= 1 or jax.default_backend() != "cpu":
    return False
  if not (jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir):
    return False
  jax.config.update("jax_enable_compilation_cache", False)
  logging.info("JAX's persistent compilation cache is off: on CPU every process of a multi-process job "
               "compiles its own steps (rfgen_jax/multihost.py, compile_everywhere_on_cpu).")
  return True
