r"""Exports a trained generator with `jax.export` into one self-contained file.

    python -m rfgen_jax.tools.export (--workdir=RUN | --pretrained=NAME) --out model.jaxexport \
        [--config=configs/market.py] [--step N] [--batch N] [--num_sources K] [--platforms cpu,cuda]

The model: a training run's checkpoint (`--workdir`) or a released model (`--pretrained`, a name from
`python -m rfgen_jax.tools.pretrained --list` or a release folder; docs/pretrained.md).

What is exported: the generator's forward pass returning only the image,

    f(params, source_images (B, K, H, W, 3), source_poses (B, K, H, W, P), target_pose (B, H, W, P))
      -> image (B, H, W, 3) float32 in [-1, 1]

lowered to StableHLO for `--platforms` (default: the platform exporting; cross-lowering works, e.g.
`--platforms cpu,cuda,tpu` on a CPU-only machine gives one file that runs on all three, the platform
being chosen at call time). H, W and P are fixed by the config. The batch B is the symbolic dimension `b` unless `--batch` fixes it, and the number of sources K
is the symbolic dimension `k` unless `--num_sources` fixes it (the generator `nn.vmap`s over K, and the
softmax over K is shape-polymorphic, so one export serves every K >= 1).

The params are an argument, not closed-over constants: the StableHLO stays small (constants of a
full-size model would bloat and slow the serialisation), and a loader may place or shard the weights as
it likes. The file stores both: it is a NumPy `.npz` archive (written without the `.npz` suffix) with

- `exported`: the bytes of `jax.export.Exported.serialize()` (uint8),
- `metadata`: UTF-8 JSON (uint8): input shapes with `b`/`k`, the platforms, the checkpoint step and the
  run's config,
- `params/<module>/<...>/<leaf>`: one float32 array per parameter (flax's nesting joined with `/`).

`load_exported(path)` (`rfgen_jax/tools/export_loader.py`, also importable from this module) reads it
back with numpy and jax only (no flax, no rfgen_jax model code) and returns a callable
`(source_images, source_poses, target_pose) -> image`; copy that file into any project that has jax to
run the model. This module is the exporting side.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Sequence

import jax
import numpy as np

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax.tools import generate
from rfgen_jax.tools.export_loader import FORMAT_VERSION
from rfgen_jax.tools.export_loader import SEP
from rfgen_jax.tools.export_loader import load_exported  # noqa: F401  (also `rfgen_jax.tools.export.load_exported`)


# -------------------------------------------------------------------------- exporting
def _flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{SEP}{key}" if prefix else str(key)
    if SEP in str(key):
      raise ValueError(f"Parameter name {key!r} contains {SEP!r}.")
    if isinstance(value, dict) or hasattr(value, "items"):
      flat.update(_flatten(value, name))
    else:
      flat[name] = np.asarray(value)
  return flat


def input_specs(image_size: Sequence[int], pose_channels: int, batch: int | None = None,
                num_sources: int | None = None):
  """ShapeDtypeStructs of the three inputs; None dimensions become the symbolic `b` / `k`."""
  b, k = jax.export.symbolic_shape("b, k")
  b = b if batch is None else int(batch)
  k = k if num_sources is None else int(num_sources)
  h, w = (int(s) for s in image_size)
  p = int(pose_channels)
  return (jax.ShapeDtypeStruct((b, k, h, w, 3), np.float32),
          jax.ShapeDtypeStruct((b, k, h, w, p), np.float32),
          jax.ShapeDtypeStruct((b, h, w, p), np.float32))


def export_generator(generator, params, image_size: Sequence[int], pose_channels: int,
                     batch: int | None = None, num_sources: int | None = None,
                     platforms: Sequence[str] | None = None):
  """`jax.export` of `(params, source_images, source_poses, target_pose) -> image`.

  Args:
    generator: a `rfgen_jax.models.Generator` (flax module).
    params: its params (arrays or ShapeDtypeStructs; only shapes and dtypes are used).
    image_size: (H, W).
    pose_channels: P.
    batch, num_sources: fixed sizes, or None for the symbolic `b` / `k`.
    platforms: lowering platforms ("cpu", "cuda", "rocm", "tpu"); None = the default backend.

  Returns:
    a `jax.export.Exported`.
  """
  def forward(p, source_images, source_poses, target_pose):
    return generator.apply({"params": p}, source_images, source_poses, target_pose)["image"]

  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), params)
  specs = input_specs(image_size, pose_channels, batch, num_sources)
  kwargs = {"platforms": tuple(platforms)} if platforms else {}
  return jax.export.export(jax.jit(forward), **kwargs)(abstract, *specs)


def save_exported(path: str, exported, params, metadata: dict) -> None:
  """Writes the archive described in the module docstring (to exactly `path`)."""
  arrays = {f"params/{k}": v for k, v in _flatten(params).items()}
  meta = dict(metadata, format_version=FORMAT_VERSION)
  arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
  arrays["exported"] = np.frombuffer(bytes(exported.serialize()), np.uint8)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  with open(path, "wb") as f:
    f.write(buffer.getvalue())


def export_run(config, workdir: str | None, out: str, step: int | None = None, batch: int | None = None,
               num_sources: int | None = None, platforms: Sequence[str] | None = None,
               raw_params: bool = False, release=None) -> dict:
  """Restores the run's generator (its EMA parameters unless `raw_params`), or takes a released model's
  (`release`, a `rfgen_jax.runtime.pretrained.Release`), and writes `out`; returns the metadata written."""
  for name, value in (("--batch", batch), ("--num_sources", num_sources)):
    if value is not None and value < 1:
      raise errors.BadInputError(f"{name} must be >= 1 (or omitted for a symbolic size), got {value}.")
  if release is not None:
    generator, params, step = inference.released_generator(release)
  else:
    generator, params, step = inference.restore_generator(config, workdir, step, use_ema=not raw_params)
  image_size = tuple(int(s) for s in config.data.image_size)
  pose_channels = int(config.data.pose_channels)
  exported = export_generator(generator, params, image_size, pose_channels, batch, num_sources, platforms)
  h, w = image_size
  b = "b" if batch is None else batch
  k = "k" if num_sources is None else num_sources
  metadata = {
      "inputs": {"source_images": [b, k, h, w, 3], "source_poses": [b, k, h, w, pose_channels],
                 "target_pose": [b, h, w, pose_channels]},
      "output": {"image": [b, h, w, 3], "range": [-1.0, 1.0]},
      "platforms": list(exported.platforms),
      "workdir": workdir,
      "pretrained": release.name if release is not None else None,
      "step": step,
      "params": "raw" if raw_params else "ema",
      "config": json.loads(config.to_json_best_effort()),
  }
  save_exported(out, exported, params, metadata)
  return metadata


def _main(argv: Sequence[str] | None = None) -> int:
  """The command line (`main` adds the user-error handling)."""
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.export",
                                   description="Export a trained generator with jax.export.")
  parser.add_argument("--workdir", default=None, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--pretrained", default=None, help=generate.PRETRAINED_HELP)
  parser.add_argument("--config", default=None,
                      help="config spec, e.g. configs/market.py[:arg]; default: <workdir>/config.json")
  parser.add_argument("--out", required=True, help="file to write, e.g. model.jaxexport")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--batch", type=int, default=None, help="fixed batch size (default: symbolic b)")
  parser.add_argument("--num_sources", type=int, default=None,
                      help="fixed number of sources K (default: symbolic k)")
  parser.add_argument("--platforms", default=None,
                      help="comma-separated lowering platforms, e.g. cpu,cuda (default: this backend)")
  parser.add_argument("--raw_params", action="store_true",
                      help="export the raw generator parameters, not their EMA (the default)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  args = parser.parse_args(argv)
  if not args.overwrite:
    errors.check_output_free(args.out)
  config, release = generate.load_model_config(args)
  platforms = [p.strip() for p in args.platforms.split(",") if p.strip()] if args.platforms else None
  metadata = export_run(config, args.workdir, args.out, args.step, args.batch, args.num_sources,
                        platforms, raw_params=args.raw_params, release=release)
  print(f"Wrote {args.out}: inputs {metadata['inputs']}, platforms {metadata['platforms']}.")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  """The command line; a user error ends in one line on stderr and exit status 2
  (`rfgen_jax.cli.exit_2_on_user_error`)."""
  return cli.exit_2_on_user_error(_main)(argv)


if __name__ == "__main__":
  sys.exit(main())
