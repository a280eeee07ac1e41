"""The evaluation loop: generate, check, quantise to 8 bits, feed the evaluators; one K at a time.

`score_batches` runs evaluators over any stream of `evaluators.Batch` (the folder scorer uses it
directly); `evaluate_generator` makes that stream from a generator and the fixed test tuples for every K
in `eval.num_sources` (`--mode=eval`); `run_evaluators` is the same for the trainer, every
`eval.every_steps`, with results in TensorBoard.

No silent drops: a generated image with a non-finite value stops the run with `NonFiniteImageError`
naming the tuple; the counts (tuples listed, scored, unreadable) go into metrics.json.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rfgen_jax import data
from rfgen_jax.data import pipeline, tuples as tuples_lib
from rfgen_jax.evaluation import evaluators as ev
from rfgen_jax.evaluation import masks, real_images, tables, test_pairs
from rfgen_jax.runtime import sharding


class NonFiniteImageError(RuntimeError):
  """A generated image holds NaN or inf (the message names the tuple and the step)."""


class Progress:
  """Logs `label: i/n batches, images/s, ETA` at most every few seconds."""

  def __init__(self, label: str, total: int, batch: int):
    self.label, self.total, self.batch = label, total, batch
    self.start = self.last = time.time()

  def __call__(self, done: int) -> None:
    now = time.time()
    if done < self.total and now - self.last < 5.0:
      return
    self.last = now
    rate = done * self.batch / max(now - self.start, 1e-9)
    eta = (self.total - done) * self.batch / max(rate, 1e-9)
    logging.info("%s: batch %d/%d, %.1f images/s, ETA %.0f s", self.label, done, self.total, rate, eta)


@jax.jit
def quantize(images: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """[-1, 1] float images -> (uint8 images as a saved PNG holds them, (B,) bool all-finite per image)."""
  finite = jnp.all(jnp.isfinite(images), axis=(1, 2, 3))
  q = jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0.0, 255.0)
  return jnp.where(jnp.isfinite(q), q, 0.0).astype(jnp.uint8), finite


def mask_geometry(image_size) -> Tuple[float, int]:
  """GFLA's Market mask (radius 4 px, 5x5 closing) is defined at 128-high images: scaled with the height."""
  scale = image_size[0] / 128.0
  return masks.POINT_RADIUS * scale, max(1, round(masks.CLOSING_SIZE * scale))


def person_masks(keypoints: np.ndarray, image_size) -> np.ndarray:
  """(B, J, 2) (y, x) target keypoints -> (B, H, W, 1) float32 body masks (`masks.limb_mask`)."""
  radius, closing = mask_geometry(image_size)
  return masks.limb_mask(keypoints, image_size, point_radius=radius, closing_size=closing)


def score_batches(built: Sequence[ev.Evaluator], batches: Iterable[ev.Batch], k: int,
                  total: Optional[int] = None, label: str = "eval") -> Tuple[Dict[str, float], Dict[str, int]]:
  """Runs `built` over `batches` for K = `k`; returns (metrics, counts incl. `scored`)."""
  for e in built:
    e.start(k)
  scored = 0
  progress = Progress(f"{label} K={k}", total or 0, 0)
  for i, batch in enumerate(batches):
    for e in built:
      e.update(batch)
    scored += int(batch.valid.sum())
    progress.batch = len(batch.valid)
    if total:
      progress(i + 1)
  row, counts = {}, {"scored": scored}
  for e in built:
    row.update(e.result())
    counts.update(e.counts())
  return row, counts


def _test_tuples(config, k: int, index_cache: dict):
  """EvalBatches for K, with the tuples of the GFLA pairs file when there is one (`test_pairs`)."""
  batches = data.create_eval_batches(config, k)
  path = test_pairs.pairs_file(config)
  if path is not None:
    # Data hook: EvalBatches builds the seeded tuples itself; the pairs' tuples replace them here.
    if "index" not in index_cache:
      index_cache["index"] = pipeline.open_split(config, "test")
    index = index_cache["index"]
    rows = test_pairs.pair_tuples(test_pairs.read_pairs(path), index.names, index.identities, k,
                                  config.data.test_tuples_seed, source=path)
    if config.eval.max_tuples > 0:
      rows = rows[:config.eval.max_tuples]
    batches.tuples = rows
    batches.names = [tuple(index.names[i] for i in row) for row in rows]
  return batches


def generator_batches(config, generate_fn: Callable, params, tuples, mesh, step: int,
                      keypoint_data: bool) -> Iterable[ev.Batch]:
  """Batches of the test tuples with generated images; raises NonFiniteImageError (see module doc)."""
  names = list(tuples.names)
  global_batch = config.eval.batch_size
  for i, host in enumerate(tuples):
    host = dict(host)
    valid_local = np.asarray(host.pop("valid"), bool)
    global_in = sharding.to_global_batch(host, mesh)
    fake, finite = quantize(generate_fn(params, global_in))
    real, _ = quantize(global_in["target_image"])
    valid = ev.gather(sharding.to_global_batch({"v": valid_local}, mesh)["v"])
    rows = i * global_batch + np.arange(global_batch)
    batch_names = [names[r] if r < len(names) else names[0] for r in rows]
    bad = np.flatnonzero(valid & ~ev.gather(finite))
    if bad.size:
      raise NonFiniteImageError(
          f"The generated image of test tuple {', '.join(batch_names[bad[0]])} (sources..., target) is not "
          f"finite at step {step} ({bad.size} of this batch's {int(valid.sum())} tuples); the evaluation "
          "stops instead of averaging over the others.")
    mask = None
    if keypoint_data:
      mask = sharding.to_global_batch(
          {"m": person_masks(host["target_keypoints"], config.data.image_size)}, mesh)["m"]
    yield ev.Batch(fake=fake, real=real, valid=valid, names=batch_names, mask=mask, host=host, index=i)


def make_env(config, mesh, out_dir: Optional[str], step: int) -> ev.Env:
  """The evaluators' environment for the test split of `config` (FID reals per `eval.fid_real`)."""
  keypoint_data = data.pose_kind(config) == "keypoints"
  if config.eval.fid_real not in ("train", "test"):
    raise ValueError(f"--config.eval.fid_real must be 'train' or 'test', got {config.eval.fid_real!r}.")
  fid_reals = None
  if config.eval.fid_real == "train":
    holder = {}

    def make_batches():
      if "images" not in holder:
        holder["images"] = real_images.split_images(config, "train")
      return real_images.host_batches(holder["images"], config.eval.batch_size, jax.process_index(),
                                      jax.process_count())

    h, w = config.data.image_size
    description = repr(("split", config.data.name, os.path.abspath(config.data.root), "train", h, w))
    fid_reals = (description, make_batches)
  base = config.data.tfds_data_dir or os.path.join(os.path.expanduser("~"), ".cache", "rfgen_jax")
  return ev.Env(config=config, mesh=mesh, keypoint_data=keypoint_data, out_dir=out_dir,
                fid_reals=fid_reals, cache_dir=os.path.join(base, "fid_stats"), step=step)


def evaluate_generator(config, generate_fn: Callable, params, step: int, out_dir: Optional[str],
                       names: Sequence[str], mesh=None) -> dict:
  """Runs the evaluators `names` on the test tuples of every K in `eval.num_sources`.

  Args:
    config: the run's config.
    generate_fn: `(params, global batch) -> (B, H, W, 3) float [-1, 1]`, jitted, batch sharded on `data`.
    params: the generator's parameters (replicated).
    step: the checkpoint step.
    out_dir: where samples, PNGs and test_tuples_K{k}.csv go (None: nothing written).
    names: registered evaluator names.
    mesh: defaults to `train.mesh_shape` over all devices.
  Returns:
    `{"step", "data", "results": {K: {metric: value}}, "num_tuples": {K: T}, "counts": {K: {...}},
    "skipped": [...], "evaluators": [...], "fid_real": ...}`.
  """
  mesh = mesh if mesh is not None else sharding.make_mesh(config.train.mesh_shape)
  if out_dir and jax.process_index() == 0:
    os.makedirs(out_dir, exist_ok=True)
  env = make_env(config, mesh, out_dir, step)
  built, skipped = ev.build(names, env)
  results, num_tuples, counts, index_cache = {}, {}, {}, {}
  for k in config.eval.num_sources:
    tuples = _test_tuples(config, k, index_cache)
    if out_dir and jax.process_index() == 0:
      tuples_lib.write_test_tuples_csv(os.path.join(out_dir, f"test_tuples_K{k}.csv"), tuples.names)
    stream = generator_batches(config, generate_fn, params, tuples, mesh, step, env.keypoint_data)
    row, count = score_batches(built, stream, k, total=len(tuples))
    count["tuples"] = len(tuples.names)
    count["unreadable"] = count["tuples"] - count["scored"]   # data.skip_corrupt_images
    results[str(k)], num_tuples[str(k)], counts[str(k)] = row, count["scored"], count
    logging.info("eval K=%d (%d of %d tuples): %s", k, count["scored"], count["tuples"],
                 ", ".join(f"{n}={v:.4f}" for n, v in sorted(row.items())))
  return {"step": int(step), "data": config.data.name, "results": results, "num_tuples": num_tuples,
          "counts": counts, "skipped": skipped, "evaluators": list(names), "fid_real": config.eval.fid_real,
          "test_pairs": test_pairs.pairs_file(config) or ""}


def run_evaluators(config, generate_fn: Callable, params, step: int, writer=None, workdir: Optional[str] = None,
                   mesh=None) -> dict:
  """The trainer's periodic evaluation: `eval.train_evaluators` on the test tuples, scalars to `writer`.

  Writes `eval/K{k}/{metric}` scalars (clu metric writer) and, with `workdir`, the report as
  `<workdir>/eval/step_{step}/metrics.json`. Call it on every process.
  """
  out_dir = os.path.join(workdir, "eval", f"step_{step:07d}") if workdir else None
  report = evaluate_generator(config, generate_fn, params, step, out_dir, config.eval.train_evaluators, mesh)
  if writer is not None:
    writer.write_scalars(step, {f"eval/K{k}/{m}": v for k, row in report["results"].items()
                                for m, v in row.items()})
  if out_dir:
    tables.write_report(out_dir, report)
  return report


__all__ = ("NonFiniteImageError", "score_batches", "evaluate_generator", "run_evaluators", "quantize",
           "person_masks", "generator_batches", "make_env")
