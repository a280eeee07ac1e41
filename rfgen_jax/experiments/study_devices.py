"""The devices of a study's runs side by side (`--parallel N`, `rfgen_jax/experiments/ablation.py`): each run
gets a slot, a share of the local devices given by environment variables for its subprocess
(`CUDA_VISIBLE_DEVICES`, `XLA_PYTHON_CLIENT_MEM_FRACTION`) and, on CPU, the cores it is pinned to
(`sched_setaffinity`). TPU is refused (`_TPU_PARALLEL`).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import List

from rfgen_jax.experiments.study_plan import UsageError

_TPU_PARALLEL = (
    "--parallel > 1 is not supported on TPU: libtpu lets one process per host open the chips (a second "
    "process fails on the TPU lock), and splitting a host's chips between processes needs per-process "
    "TPU_VISIBLE_CHIPS / TPU_PROCESS_BOUNDS / ports that this runner does not set up. Use --parallel=1 (one "
    "run after the other, each on all chips) or one study per host with --variants.")


def probe_devices() -> tuple[str, int]:
  """(platform, local device count), asked of a short subprocess so that this process never holds them."""
  code = "import jax, json; print(json.dumps([jax.default_backend(), jax.local_device_count()]))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  platform, count = json.loads(out.stdout.strip().splitlines()[-1])
  return platform, int(count)


def device_slots(parallel: int, platform: str, count: int) -> List[dict]:
  """Per slot: {"env": {...}, "cpus": [..] or None}; see the module docstring."""
  if parallel <= 1:
    return [{"env": {}, "cpus": None}]
  if platform == "tpu":
    raise UsageError(_TPU_PARALLEL)
  slots = []
  if platform == "gpu":
    if count >= parallel:
      per = count // parallel
      for s in range(parallel):
        slots.append({"env": {"CUDA_VISIBLE_DEVICES": ",".join(str(d) for d in range(s * per, (s + 1) * per))},
                      "cpus": None})
    else:
      share = math.ceil(parallel / count)
      for s in range(parallel):
        slots.append({"env": {"CUDA_VISIBLE_DEVICES": str(s % count),
                              "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / share:.3f}"}, "cpus": None})
    return slots
  cpus = sorted(os.sched_getaffinity(0))
  per = max(1, len(cpus) // parallel)
  for s in range(parallel):
    chunk = cpus[s * per:(s + 1) * per] or [cpus[s % len(cpus)]]
    slots.append({"env": {}, "cpus": chunk})
  return slots
