r"""The figure of the paper's point: one target generated from K = 1, 2, ..., max sources, added one at a time.

    python -m rfgen_jax.tools.source_figure (--workdir=RUN | --pretrained=NAME) --out fig.png \
        [--test_tuples 0,3,7 | --auto N [--candidates M]] [--max_sources 3] [--scale S] [--batch_size B] \
        [--data_root DIR] [--tfds_data_dir DIR] [--config=configs/x.py] [--step N] [--overwrite]

One row per chosen test tuple, columns (labels in a header strip):

    target pose | source 1 | generated K=1 | + source 2 | generated K=2 | ... | + source max | generated K=max | ground truth

Generated K=k uses the first k sources of the tuple, in the tuple's order, so reading a row left to
right shows what each added source contributes (the synthetic people's back prints and backpacks are
seen only from behind). Under each generated cell: its L1 to the ground truth over the target's person
region (the evaluation's `l1_person`: 8-bit images, `evaluation/loop.py: person_masks`), or over the
whole image for models without body keypoints.

The tuples: the evaluation's fixed, seeded test tuples with `--max_sources` sources
(`rfgen_jax.data.create_eval_batches`, numbered as `tools.animate --test_tuple` numbers them); their
sources for K are the first K of those for K + 1 (`data/tuples.py: seeded_test_tuples`), so the K=k
prefix of a row is also the evaluation's tuple of K=k (a data set evaluated on a GFLA pairs file,
Market-1501 with its `market-pairs-test.csv`, numbers its evaluation tuples by that file instead).
The inputs are the evaluation's (no augmentation), and the generator's EMA parameters are used.

`--test_tuples` picks rows by index (default: 0); `--auto N` generates every K for the first
`--candidates` tuples (default: all) and keeps the N whose L1 drops most from K=1 to K=max (the
`drop`, printed per chosen row, largest first). Progress is printed per batch of `--batch_size`
tuples (default: the config's `eval.batch_size`). Cells are scaled up `--scale` times (nearest;
default: to at least 128 pixels high).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.data import keypoints as keypoints_lib
from rfgen_jax.data import pipeline
from rfgen_jax.evaluation import loop as eval_loop
from rfgen_jax.evaluation import metrics
from rfgen_jax.tools import generate as generate_tool
from rfgen_jax.tools import session as session_lib

MIN_CELL_HEIGHT = 128   # default upscaling: each cell at least this many pixels high
SEPARATOR = 2           # white pixels between cells and between rows
HEADER = 14             # the column labels' strip at the top, pixels
CAPTION = 12            # the strip under each row (tuple index, each generated cell's L1), pixels


class UsageError(errors.BadInputError):
  """A user error: printed as one line, exit status 2 (`rfgen_jax/errors.py`)."""


@dataclasses.dataclass
class Row:
  """One test tuple with every prefix generated.

  Attributes:
    index: the tuple's index among the evaluation's tuples of K = max_sources.
    names: (sources..., target) file names, max_sources + 1 of them.
    sources: (max_sources, H, W, 3) uint8 source images, in the tuple's order.
    target_image: (H, W, 3) uint8 ground truth.
    target_keypoints: (J, 2) (y, x) at the model's size (-1 missing), or None (no body keypoints).
    target_pose: (H, W, P) float32 pose map of the target.
    generated: (max_sources, H, W, 3) uint8: [k - 1] is generated from the first k sources.
    l1: (max_sources,) float: [k - 1] the L1 of generated[k - 1] to the ground truth (person region,
      [0, 1] scale; whole image without body keypoints; NaN for an empty person mask).
  """
  index: int
  names: tuple[str, ...]
  sources: np.ndarray
  target_image: np.ndarray
  target_keypoints: np.ndarray | None
  target_pose: np.ndarray
  generated: np.ndarray
  l1: np.ndarray

  @property
  def drop(self) -> float:
    """L1 at K=1 minus L1 at K=max: how much the added sources bring this target closer (NaN if unknown)."""
    return float(self.l1[0] - self.l1[-1])


# ------------------------------------------------------------------------------------------ generation
def eval_tuples(config, max_sources: int) -> pipeline.EvalBatches:
  """The evaluation's fixed test tuples with `max_sources` sources (one process; data prepared first)."""
  pipeline.ensure_dataset(config)   # generates a synthetic set if absent; names what a real one lacks
  return pipeline.create_eval_batches(config, max_sources, 0, 1)


def select(batches: pipeline.EvalBatches, indices: Sequence[int]) -> list[int]:
  """Keeps only the tuples `indices` of `batches`, in that order (as `evaluation/loop.py` swaps in a
  pairs file's tuples); returns the indices as a list."""
  count = len(batches.tuples)
  for i in indices:
    if not 0 <= i < count:
      raise UsageError(f"--test_tuples: test tuple {i} does not exist; there are {count} "
                       f"(0 to {count - 1}).")
  batches.tuples = np.asarray(batches.tuples)[list(indices)]
  batches.names = [batches.names[i] for i in indices]
  return list(indices)


def _l1(generated: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
  """(B,) L1 on the [0, 1] scale of uint8 (B, H, W, 3) images, over a (B, H, W, 1) mask if given."""
  as_float = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0
  return np.asarray(metrics.l1(as_float(generated), as_float(target), None if mask is None else jnp.asarray(mask)))


def generate_rows(session, batches: pipeline.EvalBatches, indices: Sequence[int], max_sources: int,
                  keep: int | None = None) -> tuple[list[Row], int]:
  """Generates every prefix K = 1..max_sources of every tuple of `batches`.

  Args:
    session: a `tools.session.ModelSession` (its generator and EMA parameters).
    batches: the tuples (`eval_tuples`, `select`ed), batches of `eval.batch_size` rows; each K is one
      compiled program of that batch shape.
    indices: the tuple index of each row of `batches` (what `select` returned).
    max_sources: the tuples' K.
    keep: None keeps every row, in order; N keeps the N with the largest `drop` (largest first, ties
      by index), and the others' images are dropped as the batches go (bounded memory).

  Returns:
    (rows, number of tuples generated).
  """
  generate = inference.make_generate(session.generator)
  image_size = session.image_size
  total, done, start = len(batches.tuples), 0, time.perf_counter()
  rows: list[Row] = []
  for batch in batches:
    valid = np.asarray(batch["valid"], bool)
    target = visualize.to_uint8(batch["target_image"])
    keypoints = batch.get("target_keypoints")
    mask = None if keypoints is None else eval_loop.person_masks(keypoints, image_size)
    generated, l1 = [], []
    for k in range(1, max_sources + 1):
      inputs = {"source_images": batch["source_images"][:, :k], "source_poses": batch["source_poses"][:, :k],
                "target_pose": batch["target_pose"]}
      fake = visualize.to_uint8(generate(session.params, inputs))
      generated.append(fake)
      value = _l1(fake, target, mask)
      if mask is not None:
        value = np.where(mask.sum(axis=(1, 2, 3)) > 0, value, np.nan)
      l1.append(value)
    sources = visualize.to_uint8(batch["source_images"])
    for r in np.flatnonzero(valid):
      rows.append(Row(index=int(indices[done + int(r)]),
                      names=tuple(batches.names[done + int(r)]), sources=sources[r], target_image=target[r],
                      target_keypoints=None if keypoints is None else np.asarray(keypoints[r], np.float32),
                      target_pose=np.asarray(batch["target_pose"][r], np.float32),
                      generated=np.stack([g[r] for g in generated]), l1=np.asarray([v[r] for v in l1], np.float64)))
    done += int(valid.sum())
    if keep is not None:
      rows = ranked(rows)[:keep]
    first = " (the first batch compiles one program per K)" if done == int(valid.sum()) else ""
    print(f"  {done}/{total} tuples, K = 1..{max_sources}, {time.perf_counter() - start:.1f} s{first}",
          flush=True)
  return rows, done


def ranked(rows: Sequence[Row]) -> list[Row]:
  """`rows` by decreasing `drop` (NaN last), ties by increasing index."""
  return sorted(rows, key=lambda row: (np.isnan(row.drop), -np.nan_to_num(row.drop), row.index))


# ------------------------------------------------------------------------------------------ the figure
def column_labels(max_sources: int) -> list[str]:
  """The 2 * max_sources + 2 column labels, left to right."""
  labels = ["target pose", "source 1", "gen K=1"]
  for k in range(2, max_sources + 1):
    labels += [f"+ source {k}", f"gen K={k}"]
  return labels + ["ground truth"]


def source_column(j: int) -> int:
  """The column of source j (0-based)."""
  return 1 + 2 * j


def generated_column(k: int) -> int:
  """The column of the image generated from the first k sources (k >= 1)."""
  return 2 * k


def figure_size(num_rows: int, max_sources: int, image_size: Sequence[int], scale: int) -> tuple[int, int]:
  """(height, width) in pixels of a figure of `num_rows` rows."""
  h, w = int(image_size[0]) * scale, int(image_size[1]) * scale
  columns = 2 * max_sources + 2
  return (HEADER + num_rows * (h + CAPTION) + (num_rows - 1) * SEPARATOR,
          columns * w + (columns - 1) * SEPARATOR)


def cell_box(row: int, column: int, image_size: Sequence[int], scale: int) -> tuple[int, int, int, int]:
  """(top, left, bottom, right) pixels of a cell (bottom, right exclusive); the image fills it,
  upscaled `scale` times by nearest neighbour."""
  h, w = int(image_size[0]) * scale, int(image_size[1]) * scale
  top = HEADER + row * (h + CAPTION + SEPARATOR)
  left = column * (w + SEPARATOR)
  return top, left, top + h, left + w


def _pose_cell(row: Row, size: tuple[int, int], scale: int) -> np.ndarray:
  """The target pose at the cell's size: the skeleton on black (body keypoints), else the pose map."""
  if row.target_keypoints is not None and len(row.target_keypoints) == keypoints_lib.NUM_JOINTS:
    kp = (np.asarray(row.target_keypoints, np.float32) + 0.5) * scale - 0.5
    kp[(np.asarray(row.target_keypoints) < 0).any(axis=-1)] = -1
    return keypoints_lib.draw_skeleton(np.zeros(size + (3,), np.uint8), kp)
  return visualize.resize_nearest(visualize.pose_to_rgb(row.target_pose), size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
  while text and draw.textlength(text, font=font) > width - 2:
    text = text[:-1]
  return text


def draw_figure(rows: Sequence[Row], image_size: Sequence[int], scale: int) -> np.ndarray:
  """The figure: (figure_size(...)) uint8 RGB, white background, cells at `cell_box`.

  Header: `column_labels`; under each row: the tuple's index under the pose, and the L1 of each
  generated cell to the ground truth (`Row.l1`) under it.
  """
  max_sources = len(rows[0].sources)
  size = (int(image_size[0]) * scale, int(image_size[1]) * scale)
  height, width = figure_size(len(rows), max_sources, image_size, scale)
  canvas = np.full((height, width, 3), 255, np.uint8)
  for r, row in enumerate(rows):
    cells = {0: _pose_cell(row, size, scale), 2 * max_sources + 1: row.target_image}
    for j in range(max_sources):
      cells[source_column(j)] = row.sources[j]
      cells[generated_column(j + 1)] = row.generated[j]
    for column, image in cells.items():
      top, left, bottom, right = cell_box(r, column, image_size, scale)
      canvas[top:bottom, left:right] = visualize.resize_nearest(image, size)
  picture = Image.fromarray(canvas)
  draw, font = ImageDraw.Draw(picture), ImageFont.load_default()
  for column, label in enumerate(column_labels(max_sources)):
    _, left, _, _ = cell_box(0, column, image_size, scale)
    draw.text((left + 1, 1), _fit_text(draw, label, size[1], font), fill=(0, 0, 0), font=font)
  for r, row in enumerate(rows):
    _, left, bottom, _ = cell_box(r, 0, image_size, scale)
    draw.text((left + 1, bottom), _fit_text(draw, f"tuple {row.index}", size[1], font), fill=(0, 0, 0), font=font)
    for k in range(1, max_sources + 1):
      _, left, bottom, _ = cell_box(r, generated_column(k), image_size, scale)
      value = row.l1[k - 1]
      text = "L1 n/a" if np.isnan(value) else f"L1 {value:.3f}"
      draw.text((left + 1, bottom), _fit_text(draw, text, size[1], font), fill=(0, 0, 0), font=font)
  return np.asarray(picture)


# ------------------------------------------------------------------------------------------ the program
def parse_indices(text: str) -> list[int]:
  """`0,3,7` -> [0, 3, 7]."""
  try:
    indices = [int(part) for part in text.split(",") if part.strip()]
  except ValueError:
    raise UsageError(f"--test_tuples={text!r}: expected comma-separated tuple indices, e.g. 0,3,7.") from None
  if not indices:
    raise UsageError("--test_tuples is empty: name at least one tuple index, e.g. --test_tuples 0.")
  return indices


def model_config(config, data_root: str | None, tfds_data_dir: str | None,
                 batch_size: int | None) -> ml_collections.ConfigDict:
  """A copy of the model's config reading the data from `data_root` / `tfds_data_dir` when given, with
  `eval.batch_size` = `batch_size` when given."""
  config = ml_collections.ConfigDict(config.to_dict())
  if data_root:
    config.data.root = data_root
  if tfds_data_dir:
    config.data.tfds_data_dir = tfds_data_dir
  if batch_size:
    config.eval.batch_size = int(batch_size)
  return config


def _describe(row: Row, r: int, max_sources: int, measure: str) -> str:
  steps = " -> ".join(f"K={k} {v:.4f}" for k, v in enumerate(row.l1, start=1))
  return (f"row {r}: test tuple {row.index} (target {row.names[-1]}; sources {', '.join(row.names[:-1])}): "
          f"{measure} {steps}; drop {row.drop:.4f} (K=1 minus K={max_sources})")


def make_figure(session, config, out: str, max_sources: int, test_tuples: Sequence[int] | None = None,
                auto: int | None = None, candidates: int | None = None, scale: int | None = None) -> dict:
  """Chooses, generates and draws the rows; writes `out`. Returns {"rows": [Row], "figure": uint8 array,
  "scale": int, "candidates": tuples generated}."""
  batches = eval_tuples(config, max_sources)
  count = len(batches.tuples)
  if auto is not None:
    pool = count if candidates is None else min(candidates, count)
    if auto > pool:
      raise UsageError(f"--auto {auto}: only {pool} test tuples to choose from"
                       f"{' (--candidates)' if candidates is not None and candidates < count else ''}.")
    indices = select(batches, range(pool))
    print(f"Ranking {pool} test tuples by the L1 drop from K=1 to K={max_sources}, keeping {auto}.", flush=True)
    rows, generated = generate_rows(session, batches, indices, max_sources, keep=auto)
  else:
    indices = select(batches, list(test_tuples if test_tuples is not None else [0]))
    rows, generated = generate_rows(session, batches, indices, max_sources)
  scale = scale or max(1, -(-MIN_CELL_HEIGHT // session.image_size[0]))
  figure = draw_figure(rows, session.image_size, scale)
  os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
  Image.fromarray(figure).save(out)
  return {"rows": rows, "figure": figure, "scale": scale, "candidates": generated}


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.source_figure", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=None, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--pretrained", default=None, help=generate_tool.PRETRAINED_HELP)
  parser.add_argument("--config", default=None, help="config spec; default: <workdir>/config.json")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--out", required=True, help="the figure (.png)")
  parser.add_argument("--test_tuples", default=None, help="comma-separated test tuple indices (default: 0)")
  parser.add_argument("--auto", type=int, default=None,
                      help="pick the N tuples whose L1 drops most from K=1 to K=max_sources")
  parser.add_argument("--candidates", type=int, default=None,
                      help="with --auto: rank only the first M test tuples (default: all)")
  parser.add_argument("--max_sources", type=int, default=3, help="the largest K (columns K = 1..max)")
  parser.add_argument("--scale", type=int, default=None,
                      help=f"integer upscaling of each cell (default: to at least {MIN_CELL_HEIGHT} px high)")
  parser.add_argument("--batch_size", type=int, default=None, help="tuples per batch (default: eval.batch_size)")
  parser.add_argument("--data_root", default=None, help="the test data's folder (default: the config's data.root)")
  parser.add_argument("--tfds_data_dir", default=None, help="the TFDS copy's folder (default: data.tfds_data_dir)")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  args = parser.parse_args(argv)
  if args.max_sources < 1:
    raise UsageError(f"--max_sources must be >= 1 (the largest K shown), got {args.max_sources}.")
  if args.test_tuples is not None and args.auto is not None:
    raise UsageError("Choose the rows with one of --test_tuples I,J,... and --auto N, not both.")
  if args.auto is not None and args.auto < 1:
    raise UsageError(f"--auto must be >= 1 (the number of rows), got {args.auto}.")
  if args.candidates is not None and (args.auto is None or args.candidates < 1):
    raise UsageError("--candidates M (M >= 1) goes with --auto N.")
  for flag, value in (("--scale", args.scale), ("--batch_size", args.batch_size)):
    if value is not None and value < 1:
      raise UsageError(f"{flag} must be >= 1, got {value}.")
  if not args.out.lower().endswith(".png"):
    raise UsageError(f"--out must name a .png file, got {args.out!r}.")
  test_tuples = parse_indices(args.test_tuples) if args.test_tuples is not None else None
  if test_tuples is not None and min(test_tuples) < 0:
    raise UsageError(f"--test_tuples: test tuple {min(test_tuples)} does not exist (indices start at 0).")
  if not args.overwrite:
    errors.check_output_free(args.out)
  config, release = generate_tool.load_model_config(args)
  config = model_config(config, args.data_root, args.tfds_data_dir, args.batch_size)
  session = session_lib.ModelSession(args.workdir, config, args.step, release=release)
  print(f"Model: {session.description}; K = 1..{args.max_sources}.", flush=True)
  result = make_figure(session, config, args.out, args.max_sources, test_tuples, args.auto, args.candidates,
                       args.scale)
  keypoint_model = session.pose_kind == "keypoints"
  measure = "L1 (person region)" if keypoint_model else "L1 (whole image)"
  if args.auto is not None:
    print(f"The {len(result['rows'])} of {result['candidates']} test tuples whose {measure} drops most "
          f"from K=1 to K={args.max_sources}, largest first:")
  for r, row in enumerate(result["rows"]):
    print(_describe(row, r, args.max_sources, measure))
  height, width = result["figure"].shape[:2]
  print(f"Wrote {args.out} ({width}x{height} px: {len(result['rows'])} rows of {2 * args.max_sources + 2} "
        f"cells, scale {result['scale']}).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
