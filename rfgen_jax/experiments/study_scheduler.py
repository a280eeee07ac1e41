"""The ablation study's scheduler (`rfgen_jax/experiments/ablation.py`): runs what is not finished, as many
at a time as there are device slots, each a subprocess in its own session with its output in
`<run workdir>/log.txt` (and its command line in `command.txt`), fed line by line to the progress; on an
interrupt the running ones are stopped (SIGTERM, then SIGKILL after 60 s) and resume on the next call.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Dict, List, Sequence

from rfgen_jax.experiments.study_plan import Run
from rfgen_jax.experiments.study_plan import finished
from rfgen_jax.experiments.study_plan import latest_checkpoint
from rfgen_jax.experiments.study_plan import run_command
from rfgen_jax.experiments.study_progress import Progress

def _launch(run: Run, cmd: List[str], slot: dict, progress: Progress) -> subprocess.Popen:
  os.makedirs(run.workdir, exist_ok=True)
  with open(os.path.join(run.workdir, "command.txt"), "w") as f:
    env_text = " ".join(f"{k}={v}" for k, v in slot["env"].items())
    f.write((env_text + " " if env_text else "") + " ".join(cmd) + "\n")
  env = dict(os.environ, **slot["env"])
  env.setdefault("PYTHONUNBUFFERED", "1")
  log = open(os.path.join(run.workdir, "log.txt"), "a", buffering=1)   # line-buffered: tail -f works
  log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True, bufsize=1)
  if slot["cpus"]:
    try:
      os.sched_setaffinity(proc.pid, slot["cpus"])
    except OSError:
      pass
  progress.started(run.name)

  def pump():
    for text in proc.stdout:
      log.write(text)
      progress.line(run.name, text)
    log.close()

  proc.pump = threading.Thread(target=pump, daemon=True)
  proc.pump.start()
  return proc


def _tail(path: str, n: int = 15) -> str:
  try:
    with open(path) as f:
      return "".join(f.readlines()[-n:])
  except OSError:
    return ""


def run_study(runs: List[Run], config_args: List[str], shared: Dict[str, object], total: int,
              ks: Sequence[int], slots: List[dict], progress: Progress) -> List[str]:
  """Runs what is not finished, `len(slots)` at a time; returns the names of the failed runs."""
  pending = []
  for r in runs:
    if finished(r, total, ks) is not None:
      progress.mark_done(r.name, skipped=True)
      progress.say(f"study: {r.name} is finished ({r.workdir}/eval/metrics.json): skipped.")
    else:
      pending.append(r)
  free = list(range(len(slots)))
  active: Dict[int, tuple] = {}
  failed = []
  try:
    while pending or active:
      while pending and free:
        r, slot = pending.pop(0), free.pop(0)
        cmd = run_command(config_args, {**shared, **r.overrides}, r.workdir)
        step = latest_checkpoint(r)
        progress.say(f"study: {r.name} " + (f"resumes from step {step}" if step else "starts") +
                     f" (log: {r.workdir}/log.txt).")
        active[slot] = (r, _launch(r, cmd, slots[slot], progress))
      for slot, (r, proc) in list(active.items()):
        if proc.poll() is None:
          continue
        proc.pump.join()
        del active[slot]
        free.append(slot)
        if proc.returncode == 0 and finished(r, total, ks) is not None:
          progress.mark_done(r.name)
          progress.say(f"study: {r.name} finished.")
        else:
          progress.failed(r.name)
          failed.append(r.name)
          progress.say(f"study: {r.name} FAILED (exit {proc.returncode}); the end of "
                       f"{r.workdir}/log.txt:\n{_tail(os.path.join(r.workdir, 'log.txt'))}")
      progress.print()
      time.sleep(0.5)
  except BaseException:
    for r, proc in active.values():
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    for r, proc in active.values():
      try:
        proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    progress.say("study: interrupted; rerun the same command to resume (finished runs are skipped, the "
                 "others resume from their latest checkpoint).")
    raise
  progress.print(force=True)
  if progress.tty:
    progress.stream.write("\n")
  return failed
