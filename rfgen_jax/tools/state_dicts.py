"""Reading PyTorch state dicts for the weight converters (torch is imported only for .pth files)."""
from __future__ import annotations

from typing import Dict

import numpy as np


def read_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Reads a PyTorch state dict (.pth/.pt via torch, or .npz) as name -> numpy array.

  Args:
    path: file path.
  Returns:
    dict of numpy arrays.
  Raises:
    ImportError: for a .pth file when PyTorch is not installed (with what to do).
  """
  if path.endswith(".npz"):
    with np.load(path) as data:
      return {k: data[k] for k in data.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        f"Reading {path} needs PyTorch (`pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu`), or save the state dict as an .npz of numpy arrays "
        "and pass that instead.") from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
    state = state["state_dict"]
  return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}
