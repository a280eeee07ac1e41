"""XLA:CPU settings that rfgen_jax applies before JAX starts its backend (imported by `rfgen_jax/__init__.py`).

XLA's CPU backend hands convolutions, matmuls and elementwise work to YNNPACK. At this model's shapes that
was measured slower than XLA's own code, so `--xla_cpu_experimental_ynn_fusion_type=` (an empty list: no
YNNPACK fusions) is appended to `XLA_FLAGS` on the jaxlib releases where that was measured (MEASURED):

- jaxlib 0.10.2 (Python 3.11): the Market-1501 generator's forward + backward (K = 2, batch 8, width 1;
  `python -m benchmarks.torch_twin --configs=configs/market.py --parts=flow,generator`) took 2500-2610 ms
  with YNNPACK and 1897 ms without, one stride-1 3x3 convolution 56 -> 31 ms at 16x64x32x64
  (`python -m benchmarks.conv3x3`; docs/performance.md, "Convolutions").
- jaxlib 0.12.1 (Python >= 3.12), 2026-12-07, load average 3.5-4.2 (another job on the 2 cores): the same
  convolution 187 -> 83 ms, at the four shapes of `python -m benchmarks.conv3x3` 1.8-2.2x faster without
  YNNPACK; `python -m benchmarks.train_step --configs=configs/market.py --steps=3` (s/step, 0.10.2 and
  0.12.1 alternating): at load 1.5-2.0 stage 1 2.15 with YNNPACK, 1.71 without (0.10.2 without: 1.86),
  stage 2 6.42 with, 4.70 without (0.10.2: 4.32); an earlier round at load 5.5-5.8: stage 2 11.24 -> 8.77
  (docs/dependencies.md, "Tested Pythons and the markers").

Decided per jaxlib release series (major, minor) from MEASURED, not by a range: a series that is not in
MEASURED (a newer jaxlib) leaves jax's own default and warns once (UnmeasuredJaxlibWarning) that it was not
measured, and tests/test_xla_cpu_defaults.py fails on it, so that a new release gets measured (the commands
above, with and without the flag) and entered here instead of silently losing or keeping the setting. A
series' entry also names its first checked release: XLA aborts on a flag it does not know.

It is a CPU compiler option: GPU and TPU programs are unaffected. It is not applied when `XLA_FLAGS`
already names `xla_cpu_experimental_ynn_fusion_type` (yours wins) or when JAX's backend has already
started in this process (flags are read once, when it starts).
"""
from __future__ import annotations

from importlib import metadata
import os
import re
import sys
from typing import MutableMapping, Optional
import warnings

YNN_FLAG = "xla_cpu_experimental_ynn_fusion_type"
NO_YNNPACK = f"--{YNN_FLAG}="

# jaxlib (major, minor) -> (first release checked to accept the flag, whether YNNPACK off measured faster).
MEASURED = {
    (0, 10): ((0, 10, 2), True),
    (0, 12): ((0, 12, 1), True),
}


class UnmeasuredJaxlibWarning(UserWarning):
  """The installed jaxlib's XLA:CPU YNNPACK setting has not been measured (see the module docstring)."""


def jaxlib_version() -> Optional[tuple[int, ...]]:
  try:
    return tuple(int(p) for p in re.findall(r"\d+", metadata.version("jaxlib"))[:3])
  except metadata.PackageNotFoundError:
    return None


def ynnpack_off(version: Optional[tuple[int, ...]]) -> Optional[bool]:
  """Whether to turn YNNPACK fusions off on jaxlib `version`; None where that was not measured."""
  if version is None:
    return None
  first, off = MEASURED.get(tuple(version[:2]), (None, None))
  if first is None or tuple(version) < first:
    return None
  return off


def apply(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Appends NO_YNNPACK to `environ["XLA_FLAGS"]` (see the module docstring).

  Returns:
    whether the flag was added.
  """
  flags = environ.get("XLA_FLAGS", "")
  if YNN_FLAG in flags:
    return False
  version = jaxlib_version()
  off = ynnpack_off(version)
  if off is None:
    if version is not None:
      warnings.warn(f"rfgen_jax: XLA:CPU's YNNPACK setting is not measured for jaxlib "
                    f"{'.'.join(map(str, version))}: jax's default is left (rfgen_jax/xla_cpu_defaults.py)",
                    UnmeasuredJaxlibWarning, stacklevel=2)
    return False
  if not off:
    return False
  # Not imported here: a JAX that is not imported yet has no backend, and importing it is not this module's
  # job (it runs when rfgen_jax is imported).
  xla_bridge = sys.modules.get("jax._src.xla_bridge")
  if xla_bridge is not None and getattr(xla_bridge, "backends_are_initialized", lambda: False)():
    return False
  environ["XLA_FLAGS"] = f"{flags} {NO_YNNPACK}".strip()
  return True
