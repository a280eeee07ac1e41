"""Imports torchvision (and so pytorch-fid) beside the CPU torch, for the FID oracles.

PyPI's torchvision wheel is linked against the CUDA torch; next to the CPU torch its compiled ops
(`torchvision::nms` and friends) do not load, and `import torchvision` then fails where its Python
registers fake kernels for `nms` / `qnms`. The models the tests use (`inception_v3`) need none of those
ops, so after such a failure the two schemas are declared and the import is repeated. Installed by the
test command with `pip install --no-deps torchvision==0.28.0 pytorch-fid==0.3.0`; tests skip without it.
"""
import importlib.util
import sys

import pytest

_LIBRARIES = []   # keeps the torch.library.Library holding the declared schemas alive


def import_torchvision():
  """`torchvision`, or pytest.skip when it is not installed."""
  if importlib.util.find_spec("torchvision") is None:
    pytest.skip("torchvision not installed (pip install --no-deps torchvision==0.28.0)")
  import torch  # pylint: disable=g-import-not-at-top
  try:
    import torchvision  # pylint: disable=g-import-not-at-top
    return torchvision
  except RuntimeError as e:
    if "torchvision::" not in str(e):
      raise
  for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
    del sys.modules[name]
  lib = torch.library.Library("torchvision", "DEF")
  lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
  lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
  _LIBRARIES.append(lib)
  import torchvision  # pylint: disable=g-import-not-at-top
  return torchvision


def import_pytorch_fid():
  """(pytorch_fid.inception, pytorch_fid.fid_score), or pytest.skip when not installed."""
  if importlib.util.find_spec("pytorch_fid") is None:
    pytest.skip("pytorch-fid not installed (pip install --no-deps pytorch-fid==0.3.0)")
  import_torchvision()
  from pytorch_fid import fid_score, inception  # pylint: disable=g-import-not-at-top
  return inception, fid_score
