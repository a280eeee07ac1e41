"""Reading PyTorch state dicts for the weight converters (torch is imported only for .pth files)."""
from __future__ import annotations

import os
import zipfile
from typing import Dict

import numpy as np

from rfgen_jax import errors


def read_state_dict(path: str, flag: str = "--input") -> Dict[str, np.ndarray]:
  """Reads a PyTorch state dict (.pth/.pt via torch, or .npz) as name -> numpy array.

  Args:
    path: file path.
    flag: the command-line flag that named it (for the messages).
  Returns:
    dict of numpy arrays.
  Raises (user errors, `rfgen_jax/errors.py`):
    errors.MissingFileError: no such file.
    errors.BadInputError: the file cannot be read as a state dict.
    errors.MissingDependencyError: for a .pth file when PyTorch is not installed (with what to do).
  """
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"Weight file not found: {path} ({flag}).")
  if path.endswith(".npz"):
    try:
      with np.load(path) as data:
        return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise errors.BadInputError(f"{path} cannot be read as an .npz of arrays ({type(e).__name__}: {e}).") from None
  try:
    import torch  # pylint: disable=g-import-not-at-top  (optional: only to read a .pth)
  except ImportError as e:
    raise errors.MissingDependencyError(
        f"Reading {path} needs PyTorch (`pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu`), or save the state dict as an .npz of numpy arrays "
        "and pass that instead.") from e
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  (torch raises several types for a bad file)
    raise errors.BadInputError(f"{path} cannot be read as a PyTorch state dict ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}).") from None
  if not isinstance(state, dict):
    raise errors.BadInputError(f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor).")
  if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
    state = state["state_dict"]
  return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}
