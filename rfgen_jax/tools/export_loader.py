"""Loads a generator exported by `python -m rfgen_jax.tools.export` (`rfgen_jax/tools/export.py`), with
numpy and jax only: no flax, no rfgen_jax model code. Copy this file into any project that has jax to
run the model: `load_exported(path)(source_images, source_poses, target_pose) -> image`.

The file is a NumPy `.npz` archive (written without the `.npz` suffix) holding

- `exported`: the bytes of `jax.export.Exported.serialize()` (uint8),
- `metadata`: UTF-8 JSON (uint8): input shapes with the symbolic `b`/`k`, the platforms, the checkpoint
  step and the run's config,
- `params/<module>/<...>/<leaf>`: one float32 array per parameter (flax's nesting joined with `SEP`).

Shapes: source_images (B, K, H, W, 3), source_poses (B, K, H, W, P), target_pose (B, H, W, P), all
float32, images in [-1, 1]; the image returned is (B, H, W, 3) float32 in [-1, 1].
"""
from __future__ import annotations

import json
from typing import Any, Callable

import jax
import numpy as np

# Only jax and numpy, here and in every function below (tests/test_export.py checks it, and runs this file
# with flax and rfgen_jax blocked).

FORMAT_VERSION = 1
SEP = "/"


def _unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
  """{'a/b/c': x} -> {'a': {'b': {'c': x}}}."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    parts = key.split(SEP)
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = value
  return tree


class ExportedGenerator:
  """The deserialised generator: call it with (source_images, source_poses, target_pose).

  Attributes:
    exported: the `jax.export.Exported` (in_avals, platforms, `.call`).
    params: the parameters (nested dicts of jax arrays).
    metadata: the file's metadata dict.
  """

  def __init__(self, exported, params, metadata: dict):
    self.exported = exported
    self.params = params
    self.metadata = metadata
    self._call = jax.jit(exported.call)

  def __call__(self, source_images, source_poses, target_pose) -> jax.Array:
    """(B, K, H, W, 3), (B, K, H, W, P), (B, H, W, P) float32 -> (B, H, W, 3) float32 in [-1, 1]."""
    return self._call(self.params, source_images, source_poses, target_pose)


def load_exported(path: str) -> Callable[..., jax.Array]:
  """Loads a file written by this tool; needs only numpy and jax.

  Args:
    path: the exported file.

  Returns:
    An `ExportedGenerator`: `f(source_images, source_poses, target_pose) -> image`, with the input
    shapes of `f.metadata["inputs"]` (`b`, `k`: any size >= 1 where symbolic).
  """
  with np.load(path, allow_pickle=False) as archive:
    metadata = json.loads(bytes(archive["metadata"]).decode("utf-8"))
    if metadata.get("format_version") != FORMAT_VERSION:
      raise ValueError(f"{path}: format version {metadata.get('format_version')!r}, this loader reads "
                       f"{FORMAT_VERSION}.")
    exported = jax.export.deserialize(bytearray(archive["exported"].tobytes()))
    flat = {k[len("params/"):]: jax.numpy.asarray(archive[k]) for k in archive.files
            if k.startswith("params/")}
  return ExportedGenerator(exported, _unflatten(flat), metadata)
