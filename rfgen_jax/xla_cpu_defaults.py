"""XLA:CPU settings that rfgen_jax applies before JAX starts its backend (imported by `rfgen_jax/__init__.py`).

jax 0.10.2's CPU backend hands convolutions, matmuls and elementwise work to YNNPACK. At this model's
shapes that is slower than XLA's own code: the Market-1501 generator's forward + backward (K = 2, batch 8,
width 1; `python -m benchmarks.torch_twin --configs=configs/market.py --parts=flow,generator`) took
2500-2610 ms with YNNPACK and 1897 ms without, one stride-1 3x3 convolution 56 -> 31 ms at 16x64x32x64
(`python -m benchmarks.conv3x3`; docs/performance.md, "Convolutions"). So `--xla_cpu_experimental_ynn_
fusion_type=` (an empty list: no YNNPACK fusions) is appended to `XLA_FLAGS`.

It is a CPU compiler option: GPU and TPU programs are unaffected. It is not applied when `XLA_FLAGS`
already names `xla_cpu_experimental_ynn_fusion_type` (yours wins), when JAX's backend has already
started in this process (flags are read once, when it starts), or with a jaxlib outside 0.10.2-0.10.x,
where the flag was not checked (XLA aborts on an unknown flag).
"""
from __future__ import annotations

from importlib import metadata
import os
import re
from typing import MutableMapping

YNN_FLAG = "xla_cpu_experimental_ynn_fusion_type"
CHECKED_JAXLIB = ((0, 10, 2), (0, 11, 0))      # [from, to): the releases that know the flag
NO_YNNPACK = f"--{YNN_FLAG}="


def apply(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Appends NO_YNNPACK to `environ["XLA_FLAGS"]` (see the module docstring).

  Returns:
    whether the flag was added.
  """
  flags = environ.get("XLA_FLAGS", "")
  if YNN_FLAG in flags or not _jaxlib_checked():
    return False
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top  (XLA_FLAGS must be set before jax loads)
    if xla_bridge.backends_are_initialized():
      return False
  except (ImportError, AttributeError):
    pass
  environ["XLA_FLAGS"] = f"{flags} {NO_YNNPACK}".strip()
  return True


def _jaxlib_checked() -> bool:
  try:
    version = tuple(int(p) for p in re.findall(r"\d+", metadata.version("jaxlib"))[:3])
  except metadata.PackageNotFoundError:
    return False
  return CHECKED_JAXLIB[0] <= version < CHECKED_JAXLIB[1]
