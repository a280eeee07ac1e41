"""`--mode=eval`: restore a checkpoint, run the evaluators of `eval.evaluators` for every K, write the tables.

Outputs under `<workdir>/eval/`:
- `metrics.json`: `{"step": S, "results": {"1": {metric: value, ...}, ...}, "num_tuples": {"1": T, ...},
  "counts": {"1": {"tuples", "scored", "unreadable", ...}}, "skipped": [{"metric", "reason"}],
  "evaluators": [...], "fid_real": "train" | "test", "test_pairs": CSV or ""}` — one entry per K in
  `eval.num_sources`, every metric computed, each metric skipped with the reason (a missing weight file
  and the command that makes it).
- `table.md`: the layout of the paper's Table 1 (a row per K, a column per metric).
- `samples_K{k}.png`: sample grids; `images_K{k}/*.png`: every generated test image, 8-bit, named after
  its tuple (`image_files.png_name`); `test_tuples_K{k}.csv`: the tuples evaluated (`from_0..,to`).

The evaluators and their metrics: `evaluators.py`; the loop: `loop.py`; what each number means and how
it follows GFLA: docs/protocol.md and docs/design.md, "## 6. Evaluation".
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from absl import logging

from rfgen_jax import config_utils, inference, models, visualize
from rfgen_jax.inference import NoCheckpointError  # pylint: disable=unused-import (re-exported)
from rfgen_jax.evaluation import loop
from rfgen_jax.evaluation.loop import NonFiniteImageError  # pylint: disable=unused-import (re-exported)
from rfgen_jax.train import sharding

# Column order of table.md: (key in results, header, lower is better).
COLUMNS = (("fid", "FID (GFLA)", True), ("fid_pytorch", "FID (pytorch-fid)", True), ("lpips", "LPIPS", True),
           ("mask_lpips", "Mask-LPIPS", True), ("ssim", "SSIM", False), ("psnr", "PSNR", False),
           ("l1", "L1", True), ("ssim_person", "SSIM (person)", False), ("l1_person", "L1 (person)", True))


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


def write_report(out_dir: str, report: dict) -> None:
  """metrics.json and table.md of a report (process 0 only)."""
  if jax.process_index() != 0:
    return
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  write_table(os.path.join(out_dir, "table.md"), report["results"], report["step"], report["skipped"])


def write_inner_map_grids(config, generator, params, out_dir: str) -> None:
  """`eval/samples_maps_K{k}.png`: the first test batch of each K with every source's flow, occlusion
  and attention per level (`visualize.sample_grid_with_maps`); process 0 only (`eval.inner_maps`)."""
  from rfgen_jax import data  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0:
    return
  for k in config.eval.num_sources:
    batch = next(iter(data.create_eval_batches(config, k, 0, 1)))
    valid = np.asarray(batch.pop("valid"), bool)
    host = {key: np.asarray(v)[valid] for key, v in batch.items()}
    grid = visualize.inner_maps_sample_grid(generator, params, host)
    visualize.write_png(os.path.join(out_dir, f"samples_maps_K{k}.png"), grid)


def measure_source_use(config, generator, params) -> dict:
  """`{"source_use_K{k}": {measure: value}}` for K = data.num_sources over the evaluation tuples
  (rfgen_jax/evaluation/source_use.py); {} for data without body keypoints or off process 0."""
  from rfgen_jax import data  # pylint: disable=g-import-not-at-top
  from rfgen_jax.evaluation import source_use  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0 or data.pose_kind(config) != "keypoints":
    return {}
  k = int(config.data.num_sources)
  host_params = jax.device_get(params)
  values = source_use.measure(generator, host_params, data.create_eval_batches(config, k, 0, 1),
                              config.data.image_size, inference.generator_outputs)
  logging.info("Source use, K = %d (person region, best source; 0 = finest level): %s", k,
               ", ".join(f"{key} {value:.4f}" for key, value in values.items()))
  return {f"source_use_K{k}": values}


def evaluate(config, workdir: str) -> dict:
  """Evaluates the checkpoint of `workdir` for every K in `eval.num_sources`; returns metrics.json's dict."""
  config_utils.validate_config(config, num_devices=jax.device_count())
  mesh = sharding.make_mesh(config.train.mesh_shape)
  rep, batch_sharding = sharding.replicated(mesh), sharding.data_sharded(mesh)
  _, gen_params, step = inference.restore_generator(config, workdir, config.eval.step, sharding=rep)
  from rfgen_jax import data  # pylint: disable=g-import-not-at-top
  data.ensure_dataset(config)
  generator = models.build_generator(config)
  generate = jax.jit(
      lambda p, b: generator.apply({"params": p}, b["source_images"], b["source_poses"],
                                   b["target_pose"])["image"].astype(np.float32),
      in_shardings=(rep, batch_sharding), out_shardings=batch_sharding)
  out_dir = os.path.join(workdir, "eval")
  report = loop.evaluate_generator(config, generate, gen_params, step, out_dir, config.eval.evaluators, mesh)
  if config.eval.source_use:
    report.update(measure_source_use(config, generator, gen_params))
  write_report(out_dir, report)
  if config.eval.inner_maps:
    write_inner_map_grids(config, generator, gen_params, out_dir)
  if jax.process_index() == 0:
    with open(os.path.join(out_dir, "table.md")) as f:
      logging.info("Eval table:\n%s", f.read())
  return report
