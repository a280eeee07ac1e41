"""`--mode=eval`: restore a checkpoint, generate the fixed test tuples for every K, write the tables.

Outputs under `<workdir>/eval/`:
- `metrics.json`: `{"step": S, "results": {"1": {metric: value, ...}, "2": ...}, "skipped": [{"metric",
  "reason"}], "num_tuples": {"1": T, ...}}` — one entry per K in `eval.num_sources`, every metric computed,
  and each metric skipped with the reason (a missing weight file and the command that makes it).
- `table.md`: the layout of the paper's Table 1 (a row per K, a column per metric).
- `samples_K{k}.png`: sample grids; `test_tuples_K{k}.csv`: the tuples evaluated (`from_0..,to`).

Metrics (DESIGN section 7): FID (Inception-v3 pool features; the real statistics are cached per data
set), LPIPS (AlexNet-lin v0.1), Mask-LPIPS (Market-1501-style limb mask of the target pose), SSIM, PSNR,
L1, and SSIM / L1 over the person region (the same target-pose mask) for keypoint data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from rfgen_jax import config_utils, data, inference, models, visualize
from rfgen_jax.inference import NoCheckpointError  # pylint: disable=unused-import (re-exported)
from rfgen_jax.data import tuples as tuples_lib
from rfgen_jax.evaluation import masks, metrics
from rfgen_jax.train import sharding

# Column order of table.md: (key in results, header, lower is better).
COLUMNS = (("fid", "FID", True), ("lpips", "LPIPS", True), ("mask_lpips", "Mask-LPIPS", True),
           ("ssim", "SSIM", False), ("psnr", "PSNR", False), ("l1", "L1", True),
           ("ssim_person", "SSIM (person)", False), ("l1_person", "L1 (person)", True))


def _cache_dir(config) -> str:
  base = config.data.tfds_data_dir or os.path.join(os.path.expanduser("~"), ".cache", "rfgen_jax")
  return os.path.join(base, "fid_stats")


def _real_stats_path(config, target_names) -> str:
  h, w = config.data.image_size
  key = hashlib.sha1(json.dumps([config.data.name, os.path.abspath(config.data.root), h, w,
                                 sorted(target_names)]).encode()).hexdigest()[:16]
  return os.path.join(_cache_dir(config), f"{config.data.name}_{h}x{w}_{key}.npz")


class _Progress:
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


def _mean(values: list[np.ndarray]) -> float:
  v = np.concatenate(values) if values else np.zeros((0,))
  v = v[np.isfinite(v)]
  return float(v.mean()) if v.size else float("nan")


def write_table(path: str, results: dict, step: int, skipped: list) -> None:
  """Writes the paper's Table 1 layout: one row per K, one column per computed metric."""
  present = [c for c in COLUMNS if any(c[0] in r for r in results.values())]
  lines = [f"Evaluation at step {step}.", "",
           "| K | " + " | ".join(f"{h} {'↓' if low else '↑'}" for _, h, low in present) + " |",
           "| --- |" + " --- |" * len(present)]
  for k, row in results.items():
    lines.append(f"| {k} | " + " | ".join(
        f"{row[key]:.4f}" if key in row else "–" for key, _, _ in present) + " |")
  if skipped:
    lines += ["", "Skipped:"] + [f"- {s['metric']}: {s['reason']}" for s in skipped]
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def evaluate(config, workdir: str) -> dict:
  """Evaluates the checkpoint of `workdir` for every K in `eval.num_sources`; returns metrics.json's dict."""
  config_utils.validate_config(config, num_devices=jax.device_count())
  mesh = sharding.make_mesh(config.train.mesh_shape)
  rep, batch_sharding = sharding.replicated(mesh), sharding.data_sharded(mesh)
  _, gen_params, step = inference.restore_generator(config, workdir, config.eval.step, sharding=rep)
  out_dir = os.path.join(workdir, "eval")
  if jax.process_index() == 0:
    os.makedirs(out_dir, exist_ok=True)
  data.ensure_dataset(config)
  generator = models.build_generator(config)
  keypoint_data = config.data.pose_kind == "keypoints"

  skipped = []
  inception = lpips = None
  ok, reason = metrics.InceptionFeatures.available(config)
  if ok:
    inception = metrics.InceptionFeatures.from_config(config)
  else:
    skipped.append({"metric": "fid", "reason": reason})
  ok, reason = metrics.LPIPSModel.available(config)
  if ok:
    lpips = metrics.LPIPSModel.from_config(config)
  else:
    skipped.append({"metric": "lpips", "reason": reason})
  if config.eval.mask_lpips and keypoint_data and lpips is None:
    skipped.append({"metric": "mask_lpips", "reason": "needs the LPIPS weights (see lpips)."})

  generate = jax.jit(
      lambda p, b: generator.apply({"params": p}, b["source_images"], b["source_poses"],
                                   b["target_pose"])["image"].astype(np.float32),
      in_shardings=(rep, batch_sharding), out_shardings=batch_sharding)

  @jax.jit
  def pixel_metrics(fake, real, mask):
    values = {"l1": metrics.l1(fake, real), "psnr": metrics.psnr(fake, real), "ssim": metrics.ssim(fake, real)}
    if mask is not None:
      values["l1_person"] = metrics.l1(fake, real, mask)
      values["ssim_person"] = metrics.ssim(fake, real, mask)
    return values

  def gather(x):
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

  # GFLA's mask (radius 4 px, 5x5 closing) is defined at 128-high Market images: scale with the height.
  scale = config.data.image_size[0] / 128.0
  mask_radius, mask_closing = masks.POINT_RADIUS * scale, max(1, round(masks.CLOSING_SIZE * scale))
  results, counts = {}, {}
  real_stats = None
  for k in config.eval.num_sources:
    batches = data.create_eval_batches(config, k)
    if jax.process_index() == 0:
      tuples_lib.write_test_tuples_csv(os.path.join(out_dir, f"test_tuples_K{k}.csv"), batches.names)
    stats_path = _real_stats_path(config, [n[-1] for n in batches.names])
    if inception is not None and real_stats is None and os.path.exists(stats_path):
      with np.load(stats_path) as f:
        real_stats = (f["mu"], f["sigma"])
    fake_stats = metrics.FeatureStatistics()
    real_acc = metrics.FeatureStatistics() if inception is not None and real_stats is None else None
    per_image: dict[str, list[np.ndarray]] = {}
    progress = _Progress(f"eval K={k}", len(batches), config.eval.batch_size)
    for i, batch in enumerate(batches):
      valid = np.asarray(batch.pop("valid"), bool)
      mask = (masks.limb_mask(batch["target_keypoints"], config.data.image_size,
                              point_radius=mask_radius, closing_size=mask_closing)
              if keypoint_data else None)
      global_batch = sharding.to_global_batch(batch, mesh)
      fake = generate(gen_params, global_batch)
      real = global_batch["target_image"]
      global_mask = None if mask is None else sharding.to_global_batch({"m": mask}, mesh)["m"]
      global_valid = gather(sharding.to_global_batch({"v": valid}, mesh)["v"])
      values = {name: gather(v) for name, v in pixel_metrics(fake, real, global_mask).items()}
      if lpips is not None:
        values["lpips"] = gather(lpips(fake, real))
        if config.eval.mask_lpips and global_mask is not None:
          values["mask_lpips"] = gather(lpips(fake, real, mask=global_mask))
      for name, v in values.items():
        per_image.setdefault(name, []).append(v[global_valid])
      if inception is not None:
        fake_stats.update(gather(inception(fake)), global_valid)
        if real_acc is not None:
          real_acc.update(gather(inception(real)), global_valid)
      if i == 0:
        # A global array may span several processes: gather it on every process (a collective), then
        # process 0 draws its own rows (the first per-host rows of the global batch, as to_global_batch
        # lays them out).
        fake_host = gather(fake)
        if jax.process_index() == 0:
          grid = visualize.sample_grid(batch, fake_host[:len(valid)], max_rows=min(8, int(valid.sum())))
          visualize.write_png(os.path.join(out_dir, f"samples_K{k}.png"), grid)
      progress(i + 1)
    row = {name: _mean(v) for name, v in per_image.items()}
    if inception is not None:
      if real_acc is not None:
        real_stats = real_acc.finalize()
        if jax.process_index() == 0:
          os.makedirs(os.path.dirname(stats_path), exist_ok=True)
          np.savez(stats_path, mu=real_stats[0], sigma=real_stats[1])
      row["fid"] = metrics.frechet_distance(*fake_stats.finalize(), *real_stats)
    results[str(k)] = row
    counts[str(k)] = int(sum(len(v) for v in per_image["l1"]))
    logging.info("eval K=%d (%d tuples): %s", k, counts[str(k)],
                 ", ".join(f"{n}={v:.4f}" for n, v in sorted(row.items())))

  report = {"step": int(step), "data": config.data.name, "results": results, "num_tuples": counts,
            "skipped": skipped}
  if jax.process_index() == 0:
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
      json.dump(report, f, indent=2, sort_keys=True)
    write_table(os.path.join(out_dir, "table.md"), results, step, skipped)
    with open(os.path.join(out_dir, "table.md")) as f:
      logging.info("Eval table:\n%s", f.read())
  return report
