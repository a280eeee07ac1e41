"""The training progress line: one per log step, with steps/s, an ETA over both stages and the main losses.

    14:03:12 step 50/2400 stage 1 | 3.1 steps/s | ETA 13m 05s | flow_total 0.3994
    14:17:40 step 250/2400 stage 2 | 2.2 steps/s | ETA 11m 02s | gen_total 3.512 l1 0.2841 disc 1.392

The two stages cost differently per step (stage 2 adds the generator's decoder, the discriminator and the
VGG19 losses: 2-3x stage 1 on a CPU). The ETA sums each stage's remaining steps times its seconds per
step (`eta_seconds`): a stage that has run uses its measured average (wall time from its first step in
this run to the current log step, so samples and checkpoints written meanwhile are included); a stage
that has not run yet is estimated from the one that has, plus the difference between the two compiled
steps' times, timed on a copy of the state before training starts (`Trainer.time_steps`: the stages take
turns, the fastest of two calls each).
The difference is added rather than the ratio multiplied because the loop's time per step is the step's
compute plus host work (reading and augmenting a batch) that does not depend on the stage. The ETA is
the end of training; the evaluation that follows (`train.eval_at_end`) is not included.

Every scalar still goes to TensorBoard (the trainer's writer); the line shows the totals only.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Optional

# Scalars shown on the line, per stage, as (metric, short name); all of them go to TensorBoard.
SHOWN = {1: (("loss/flow_total", "flow_total"),),
         2: (("loss/gen_total", "gen_total"), ("loss/l1", "l1"), ("loss/disc", "disc"))}


def stage_of(step: int, warmup: int) -> int:
  """The stage that trains step `step` (0-based): 1 during the flow warm-up, then 2."""
  return 1 if step < warmup else 2


def eta_seconds(done: int, total: int, warmup: int, seconds_per_step: Mapping[int, float],
                stage2_minus_stage1: Optional[float] = None) -> Optional[float]:
  """Seconds until step `total`, `done` steps being trained, stage 1 being steps [0, warmup).

  Args:
    seconds_per_step: {stage: measured seconds per step} for the stages measured so far.
    stage2_minus_stage1: a stage-2 step's time minus a stage-1 step's (`Trainer.time_steps`), used for the
      stage that has not been measured from the one that has; None: assume equal cost.
  Returns:
    None when no stage has been measured yet.
  """
  remaining = {1: max(0, min(total, warmup) - done), 2: max(0, total - max(done, warmup))}
  if not seconds_per_step:
    return None
  delta = stage2_minus_stage1 or 0.0
  per_step = dict(seconds_per_step)
  if 1 not in per_step:
    per_step[1] = max(per_step[2] - delta, 0.0)
  if 2 not in per_step:
    per_step[2] = max(per_step[1] + delta, 0.0)
  return sum(remaining[s] * per_step[s] for s in (1, 2))


def format_duration(seconds: float) -> str:
  """`45s`, `13m 05s`, `2h 04m`."""
  seconds = int(round(max(seconds, 0.0)))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m {seconds % 60:02d}s"
  return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _number(value: float) -> str:
  return f"{value:.4g}"


class Progress:
  """Measures each stage's seconds per step and formats the progress line.

  Call `step_started(step)` before dispatching each step and `line(done, scalars)` at log steps (when the
  dispatched steps have finished: the trainer has read their losses).
  """

  def __init__(self, total: int, warmup: int, clock: Callable[[], float] = time.monotonic):
    self.total, self.warmup, self.clock = total, warmup, clock
    self.stage_start: dict = {}        # {stage: (its first step in this run, the time it started)}
    self.seconds_per_step: dict = {}   # {stage: measured average}
    self.stage2_minus_stage1: Optional[float] = None
    self._last = None                  # (step, time) of the previous line

  def step_started(self, step: int) -> None:
    stage = stage_of(step, self.warmup)
    if stage not in self.stage_start:
      now = self.clock()
      self.stage_start[stage] = (step, now)
      if self._last is None:
        self._last = (step, now)

  def measure(self, done: int) -> None:
    """Updates the seconds per step of the stage of step `done - 1` (the last one finished)."""
    stage = stage_of(done - 1, self.warmup)
    first, start = self.stage_start[stage]
    if done > first:
      self.seconds_per_step[stage] = (self.clock() - start) / (done - first)

  def eta(self, done: int) -> Optional[float]:
    return eta_seconds(done, self.total, self.warmup, self.seconds_per_step, self.stage2_minus_stage1)

  def steps_per_second(self, done: int) -> float:
    """The rate since the previous line."""
    now = self.clock()
    last_step, last_time = self._last
    self._last = (done, now)
    return (done - last_step) / max(now - last_time, 1e-9)

  def line(self, done: int, scalars: Mapping[str, float]) -> tuple[str, float]:
    """(the progress line of step `done`, its steps/s)."""
    self.measure(done)
    rate = self.steps_per_second(done)
    stage = stage_of(done - 1, self.warmup)
    eta = self.eta(done)
    parts = [f"step {done}/{self.total} stage {stage}", f"{rate:.2f} steps/s",
             "ETA " + (format_duration(eta) if eta is not None else "?") if done < self.total else "done"]
    shown = [f"{short} {_number(scalars[key])}" for key, short in SHOWN[stage] if key in scalars]
    if shown:
      parts.append(" ".join(shown))
    return " | ".join(parts), rate
