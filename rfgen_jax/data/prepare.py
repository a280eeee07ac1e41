"""Data preparation done once: process 0 first, then a barrier, then the others (a no-op check there).

Generating a synthetic set or preparing a TFDS copy from every process of a multi-host job at once
would race on shared storage. `run_once(fn)` runs `fn()` on process 0, waits at a barrier of JAX's
coordination service (`rfgen_jax/multihost.py`: a collective would time out on CPU hosts while process 0
prepares), then runs it on the other processes, where it
finds the data ready on shared storage (a cheap check) or prepares a host-local copy. With one process
it is just `fn()`. Collective: every process must call it (so `ensure_dataset`, `create_train_iterator` and
`create_eval_batches` are called by all processes, as the trainer and the evaluator do); if process 0
fails, the coordination service ends the others (or the barrier's timeout, an hour, does).
"""
from __future__ import annotations

from typing import Callable, TypeVar

import jax

from rfgen_jax import multihost

T = TypeVar("T")


def _process_info() -> tuple[int, int]:
  return jax.process_index(), jax.process_count()


def barrier(name: str) -> None:
  """Waits until every process reaches `name` (multi-process only)."""
  multihost.barrier(name)


def run_once(fn: Callable[[], T], name: str, process_index: int | None = None,
             process_count: int | None = None) -> T:
  """Runs `fn` on process 0, then (after a barrier) on every other process; returns its result.

  Args:
    fn: the preparation; must be idempotent (a second call on ready data only checks).
    name: the barrier's name (the same on every process), e.g. "prepare synthetic".
    process_index, process_count: this process's place; default `jax.process_index()/process_count()`.
  """
  if process_index is None or process_count is None:
    index, count = _process_info()
    process_index = index if process_index is None else process_index
    process_count = count if process_count is None else process_count
  if process_count <= 1:
    return fn()
  result = fn() if process_index == 0 else None
  barrier(f"rfgen_jax data: {name}")
  if process_index != 0:
    result = fn()
  return result
