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

import os

import jax
import numpy as np
from absl import logging

from rfgen_jax import config_utils, data, inference, models, visualize
from rfgen_jax.inference import NoCheckpointError  # pylint: disable=unused-import (re-exported)
from rfgen_jax.evaluation import loop, source_use, tables
from rfgen_jax.evaluation.loop import NonFiniteImageError  # pylint: disable=unused-import (re-exported)
from rfgen_jax.runtime import sharding

def write_inner_map_grids(config, generator, params, out_dir: str) -> None:
  """`eval/samples_maps_K{k}.png`: the first test batch of each K with every source's flow, occlusion
  and attention per level (`visualize.sample_grid_with_maps`); process 0 only (`eval.inner_maps`)."""
  if jax.process_index() != 0:
    return
  for k in config.eval.num_sources:
    batch = next(iter(data.create_eval_batches(config, k, 0, 1)))
    valid = np.asarray(batch.pop("valid"), bool)
    host = {key: np.asarray(v)[valid] for key, v in batch.items()}
    grid = inference.inner_maps_sample_grid(generator, params, host)
    visualize.write_png(os.path.join(out_dir, f"samples_maps_K{k}.png"), grid)


def measure_source_use(config, generator, params) -> dict:
  """`{"source_use_K{k}": {measure: value}}` for K = data.num_sources over the evaluation tuples
  (rfgen_jax/evaluation/source_use.py); {} for data without body keypoints or off process 0."""
  if jax.process_index() != 0 or data.pose_kind(config) != "keypoints":
    return {}
  k = int(config.data.num_sources)
  host_params = jax.device_get(params)
  values = source_use.measure(generator, host_params, data.create_eval_batches(config, k, 0, 1),
                              config.data.image_size, inference.generator_outputs)
  logging.info("Source use, K = %d (person region, best source; 0 = finest level): %s", k,
               ", ".join(f"{key} {value:.4f}" for key, value in values.items()))
  return {f"source_use_K{k}": values}


def evaluate(config, workdir: str, mesh: jax.sharding.Mesh | None = None, release=None) -> dict:
  """Evaluates the checkpoint of `workdir` for every K in `eval.num_sources`; returns metrics.json's dict.

  `mesh`: the run's mesh from `config_utils.setup_run` (which also checked the config); without it,
  `setup_run` is called here. `release`: a released model (`rfgen_jax.runtime.pretrained.Release`,
  `--pretrained`) whose parameters are evaluated instead of a checkpoint; `workdir` then only receives
  `eval/`."""
  mesh = mesh if mesh is not None else config_utils.setup_run(config)
  rep, batch_sharding = sharding.replicated(mesh), sharding.data_sharded(mesh)
  if release is not None:
    _, gen_params, step = inference.released_generator(release, sharding=rep)
  else:
    _, gen_params, step = inference.restore_generator(config, workdir, config.eval.step, sharding=rep)
  data.ensure_dataset(config)
  generator = models.build_generator(config)
  generate = jax.jit(
      lambda p, b: generator.apply({"params": p}, b["source_images"], b["source_poses"],
                                   b["target_pose"])["image"].astype(np.float32),
      in_shardings=(rep, batch_sharding), out_shardings=batch_sharding)
  out_dir = os.path.join(workdir, "eval")
  report = loop.evaluate_generator(config, generate, gen_params, step, out_dir, config.eval.evaluators, mesh)
  if release is not None:
    report["pretrained"] = release.name
  if config.eval.source_use:
    report.update(measure_source_use(config, generator, gen_params))
  tables.write_report(out_dir, report)
  if config.eval.inner_maps:
    write_inner_map_grids(config, generator, gen_params, out_dir)
  if jax.process_index() == 0:
    with open(os.path.join(out_dir, "table.md")) as f:
      logging.info("Eval table:\n%s", f.read())
  return report
