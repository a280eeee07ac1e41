"""The ablation study's progress (`rfgen_jax/experiments/ablation.py`): each run's phase and train step read
from its output lines, and one status line for the whole study with the measured steps/s (train steps
per second of one run) and the ETA (seconds, printed as `1h02m`, `3m05s`, `12s`).
"""
from __future__ import annotations

import math
import re
import sys
import threading
import time
from typing import Optional, Sequence

from rfgen_jax.experiments.study_plan import Run
from rfgen_jax.experiments.study_plan import latest_checkpoint

# A train step of the main job's progress line (rfgen_jax/train/progress.py), or of clu's metric lines.
_STEP = re.compile(r"(?:\bstep |\] \[)(\d+)(?:/\d+ stage |\] )")
_RESUME = re.compile(r"Resuming from step (\d+)")
_EVAL = re.compile(r"eval K=(\d+)")


def _fmt(seconds: Optional[float]) -> str:
  if seconds is None or not math.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
  """Tracks the runs from their log lines and prints one status line with the ETA of the whole study.

  The ETA: remaining train steps / the measured steps/s, plus per run not yet evaluated the measured
  start-up and evaluation time of the runs finished so far (before any: the current run's start-up),
  divided over the parallel slots.
  """

  def __init__(self, runs: Sequence[Run], total: int, parallel: int, stream=None, every: float = 30.0):
    self.runs = {r.name: r for r in runs}
    self.total, self.parallel = total, max(1, parallel)
    self.state = {r.name: {"phase": "queued", "step": latest_checkpoint(r), "t0": None, "t_train": None,
                           "marks": []} for r in runs}
    self.rates, self.overheads = [], []
    self.stream = stream or sys.stderr
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.every, self.last_print = every, 0.0
    self.lock = threading.Lock()
    self.start = time.time()

  def mark_done(self, name: str, skipped: bool = False) -> None:
    with self.lock:
      st = self.state[name]
      st["phase"] = "skipped" if skipped else "done"
      st["step"] = self.total
      if not skipped and st["t0"] is not None:
        wall = time.time() - st["t0"]
        trained = self.total - st.get("first_step", 0)
        rate = self.rate()
        self.overheads.append(max(0.0, wall - (trained / rate if rate else 0.0)))

  def started(self, name: str) -> None:
    with self.lock:
      st = self.state[name]
      st.update(phase="starting", t0=time.time(), first_step=st["step"])

  def failed(self, name: str) -> None:
    with self.lock:
      self.state[name]["phase"] = "failed"

  def line(self, name: str, text: str) -> None:
    """Feeds one output line of run `name`."""
    now = time.time()
    with self.lock:
      st = self.state[name]
      m = _RESUME.search(text)
      if m:
        st["step"] = st["first_step"] = int(m.group(1))
      m = _STEP.search(text)
      if m:
        step = int(m.group(1))
        st["phase"], st["step"] = "train", step
        st["marks"].append((now, step))
        if len(st["marks"]) >= 2:
          (t_a, s_a), (t_b, s_b) = st["marks"][1], st["marks"][-1]   # the first mark includes compilation
          if len(st["marks"]) >= 3 and t_b > t_a:
            st["rate"] = (s_b - s_a) / (t_b - t_a)
      m = _EVAL.search(text)
      if m:
        st["phase"], st["k"] = "eval", int(m.group(1))

  def rate(self) -> Optional[float]:
    """Train steps/s of one run (mean over the runs measured so far)."""
    rates = [st["rate"] for st in self.state.values() if st.get("rate")]
    return sum(rates) / len(rates) if rates else None

  def eta(self) -> Optional[float]:
    rate = self.rate()
    if rate is None:
      return None
    if self.overheads:
      overhead = sum(self.overheads) / len(self.overheads)
    else:
      starts = [st["marks"][0][0] - st["t0"] for st in self.state.values() if st["marks"] and st["t0"]]
      overhead = 2 * max(starts) if starts else 0.0   # start-up, and about as much again for the eval
    work = 0.0
    for st in self.state.values():
      if st["phase"] in ("done", "skipped", "failed"):
        continue
      work += max(0, self.total - st["step"]) / rate
      if st["phase"] == "eval":
        work += overhead / 2
      elif st["phase"] in ("queued", "starting", "train"):
        work += overhead if st["phase"] == "queued" else overhead / 2
    active = sum(1 for st in self.state.values() if st["phase"] not in ("done", "skipped", "failed"))
    return work / max(1, min(self.parallel, active))

  def status(self) -> str:
    with self.lock:
      done = sum(1 for st in self.state.values() if st["phase"] in ("done", "skipped"))
      active = [f"{n} {'eval K=' + str(st.get('k')) if st['phase'] == 'eval' else st['phase']} "
                f"{st['step']}/{self.total}" for n, st in self.state.items()
                if st["phase"] in ("starting", "train", "eval")]
      rate = self.rate()
      eta = self.eta()
    speed = f"{rate:.2f} steps/s" if rate else "- steps/s"
    return (f"study: {done}/{len(self.state)} runs done | {', '.join(active) or '-'} | {speed} | "
            f"elapsed {_fmt(time.time() - self.start)} | ETA {_fmt(eta)}")

  def print(self, force: bool = False) -> None:
    now = time.time()
    if not force and not self.tty and now - self.last_print < self.every:
      return
    self.last_print = now
    text = self.status()
    if self.tty:
      self.stream.write("\r\033[K" + text)
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def say(self, text: str) -> None:
    """A line of its own (a run started, finished or failed)."""
    self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
    self.stream.flush()
