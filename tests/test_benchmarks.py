"""The benchmarks' parts run: each part of `benchmarks/torch_twin.py` (ours and the torch twin) on a
small config, called once."""
import os

import pytest

from benchmarks import torch_twin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow    # three compilations at 64x64 (~80 s cold); run with `-m slow`
def test_torch_twin_parts_run():
  config = torch_twin._config(os.path.join(ROOT, "configs/synthetic.py:tiny"), "auto")  # pylint: disable=protected-access
  config.data.image_size = (64, 64)     # torch's InstanceNorm needs > 1 position at the deepest level (H/32)
  config.train.batch_size = 2
  parts = torch_twin.make_parts(config, ["flow", "generator", "step"])
  assert sorted(parts) == ["flow", "generator", "step"]
  for ours, theirs in parts.values():
    ours()
    theirs()
