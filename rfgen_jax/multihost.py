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
"""
from __future__ import annotations

import itertools

import jax
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
