"""Preemption: every process agrees on one step to save at after a SIGTERM, then the run exits.

SLURM, Kubernetes and Cloud TPU send SIGTERM some time before they kill a job. `PreemptionWatch.reached(step)`
is called by the loop after every step, with the same step on every process:

* Several processes (`jax.distributed` initialised): JAX's preemption sync manager catches SIGTERM
  (its notifier is installed by `jax.distributed.initialize`); a notice reaching any process is spread to
  all, and `multihost_utils.reached_preemption_sync_point(step)` becomes True on all of them at the same
  step (the largest step any of them had reached, plus one).
* One process: a Python SIGTERM handler sets a flag; `reached` is True at the next step.

The trainer then saves a checkpoint at that step, waits until it is written, and raises `Preempted`;
`rfgen_jax.main` turns it into exit status `PREEMPTED_EXIT_STATUS` (75, EX_TEMPFAIL: "try again"), which
`launch/slurm_multihost.sbatch` answers by requeueing the job. Rerunning the same command resumes.
"""
from __future__ import annotations

import signal
import threading

from absl import logging
from jax._src import distributed
from jax.experimental import multihost_utils

PREEMPTED_EXIT_STATUS = 75


class Preempted(Exception):
  """Training stopped at `step` after a preemption notice; a checkpoint of that step is written."""

  def __init__(self, step: int, directory: str):
    super().__init__(f"Preempted (SIGTERM): saved a checkpoint of step {step} in {directory}; rerun the "
                     f"same command to resume (exit status {PREEMPTED_EXIT_STATUS}).")
    self.step = step


class PreemptionWatch:
  """Answers "save and stop at this step?"; installs the single-process SIGTERM handler while open."""

  def __init__(self):
    self._event = threading.Event()
    self._previous = None
    self._distributed = distributed.global_state.client is not None
    if not self._distributed and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

  def _on_sigterm(self, signum, frame):   # pylint: disable=unused-argument
    logging.warning("SIGTERM received: saving a checkpoint after the current step, then exiting.")
    self._event.set()

  def reached(self, step: int) -> bool:
    if self._distributed:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._event.is_set()

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
