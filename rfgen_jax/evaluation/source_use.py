"""Source-use measures: do the predicted flows bring the sources closer to the target?

For each test tuple and each fusion level l, every source is warped to the target by the level's flow
upsampled to the image (`rfgen_jax.ops.resize_flow`, bilinear warp with border padding), and compared
with the target by L1 over the target's person region (GFLA's limb mask, `masks.limb_mask`; images in
[0, 1]). Per tuple the best source counts (the smallest L1 over K), as the generator may take each region
from any source. Reported, as means over the tuples:
- `l1_unwarped`: the best source as is;
- `l1_warped_{l}`: the best source warped by the flow estimator's flow of level l;
- `l1_refined_{l}`: the same with the refined flow (estimator's flow + the RF block's residual);
- `l1_generated`: the generated image;
- `flow_px_{l}`: the mean length of the estimator's flow of level l over the person region, in image
  pixels;
- `occlusion_{l}`: the mean occlusion map (the share the target's own features get) over the person
  region;
- `l1_keypoint_reference`, `flow_px_keypoint_reference`: the best source warped by the thin-plate-spline
  flow of the TRUE keypoint correspondences (`keypoint_reference_flow.py`), and that flow's mean length:
  the yardstick for `l1_warped` (how much of the gap between the sources and the target geometry alone
  can close on this data).
A flow that aligns gives `l1_warped` well below `l1_unwarped`, towards `l1_keypoint_reference`. `python -m rfgen_jax.tools.flow_report`
prints them for a run; `--mode=eval` writes them to `eval/metrics.json` (`source_use_K{k}/...`).
"""
from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from rfgen_jax.evaluation import masks
from rfgen_jax.evaluation import metrics
from rfgen_jax.evaluation.keypoint_reference_flow import keypoint_reference_flows
from rfgen_jax.ops import bilinear_warp, resize_flow


def _best_of_k(images, target, mask):
  """min over K of the person-region L1 (`metrics.l1`) of images (B, K, H, W, 3) against the target: (B,).

  0 where the mask is empty (a target with no body joints) instead of metrics.l1's 0/0."""
  l1 = jnp.stack([metrics.l1(images[:, i], target, mask) for i in range(images.shape[1])], 1)
  present = jnp.sum(mask, axis=(1, 2, 3)) > 0
  return jnp.where(present, jnp.min(jnp.where(present[:, None], l1, 0.0), axis=1), 0.0)


def _warped(sources, flows):
  """Sources (B, K, H, W, 3) warped by flows (B, K, h, w, 2) upsampled to the image, and the upsampled
  flows (B * K, H, W, 2)."""
  b, k, h, w, _ = sources.shape
  up = resize_flow(flows.reshape((b * k,) + flows.shape[2:]), (h, w))
  warped = bilinear_warp(sources.reshape((b * k, h, w, 3)), up, padding="border").reshape(sources.shape)
  return warped, up


def _mean_length(flows_up, mask, area):
  """Mean over K of the person-region mean length of flows (B, K, H, W, 2): (B,)."""
  length = jnp.sqrt(jnp.sum(jnp.square(flows_up), axis=-1, keepdims=True))
  return jnp.mean(jnp.sum(length * mask[:, None], axis=(2, 3, 4)), axis=1) / area


@jax.jit
def source_use_values(sources, target, generated, mask, outputs,
                      reference_flows=None) -> Dict[str, jax.Array]:
  """Per-tuple measures (module docstring).

  Args:
    sources: (B, K, H, W, 3) in [-1, 1]; target, generated: (B, H, W, 3) in [-1, 1].
    mask: (B, H, W, 1) person region in {0, 1}.
    outputs: the generator's outputs (`rfgen_jax.inference.generator_outputs`): lists over the levels
      (coarse to fine) of `initial_flows`, `flows` (B, K, h, w, 2) and `occlusion` (B, K, h, w, 1).
    reference_flows: optional (B, K, H, W, 2) image-size flows in pixels (`keypoint_reference_flows`);
      adds `l1_keypoint_reference` and `flow_px_keypoint_reference`.
  Returns:
    {name: (B,)} with the level suffix the level's index from the finest (0 = finest).
  """
  k = sources.shape[1]
  out = {"l1_unwarped": _best_of_k(sources, target, mask),
         "l1_generated": _best_of_k(generated[:, None], target, mask)}
  area = jnp.maximum(jnp.sum(mask, axis=(1, 2, 3)), 1.0)
  levels = len(outputs["initial_flows"])
  for i in range(levels):
    name = levels - 1 - i       # 0 = finest
    warped, up = _warped(sources, outputs["initial_flows"][i])
    out[f"l1_warped_{name}"] = _best_of_k(warped, target, mask)
    out[f"l1_refined_{name}"] = _best_of_k(_warped(sources, outputs["flows"][i])[0], target, mask)
    out[f"flow_px_{name}"] = _mean_length(up.reshape(sources.shape[:4] + (2,)), mask, area)
    occ = outputs["occlusion"][i]
    occ_up = jax.image.resize(occ.reshape((-1,) + occ.shape[2:]), (occ.shape[0] * k,) + mask.shape[1:3] + (1,),
                              "bilinear").reshape(sources.shape[:4] + (1,))
    out[f"occlusion_{name}"] = jnp.mean(jnp.sum(occ_up * mask[:, None], axis=(2, 3, 4)), axis=1) / area
  if reference_flows is not None:
    b, k, h, w, _ = sources.shape
    warped = bilinear_warp(sources.reshape((b * k, h, w, 3)), reference_flows.reshape((b * k, h, w, 2)),
                           padding="border").reshape(sources.shape)
    out["l1_keypoint_reference"] = _best_of_k(warped, target, mask)
    out["flow_px_keypoint_reference"] = _mean_length(reference_flows, mask, area)
  return out


def person_mask(target_keypoints: np.ndarray, image_size) -> np.ndarray:
  """(B, H, W, 1) float32 limb mask of the target poses (GFLA's Mask-LPIPS mask)."""
  return masks.limb_mask(np.asarray(target_keypoints), tuple(image_size))


def measure(generator, params, batches, image_size, outputs_fn) -> Dict[str, float]:
  """Means over the valid rows of `batches` (host batches with keypoints and `valid`).

  `outputs_fn(generator, params, batch)` returns the generator's outputs as numpy
  (`rfgen_jax.inference.generator_outputs`)."""
  sums: Dict[str, float] = {}
  rows = 0
  for batch in batches:
    outputs = outputs_fn(generator, params, batch)
    values = source_use_values(jnp.asarray(batch["source_images"]), jnp.asarray(batch["target_image"]),
                               jnp.asarray(outputs["image"]),
                               jnp.asarray(person_mask(batch["target_keypoints"], image_size)),
                               {key: outputs[key] for key in ("initial_flows", "flows", "occlusion")},
                               jnp.asarray(keypoint_reference_flows(batch["source_keypoints"],
                                                                    batch["target_keypoints"], image_size)))
    valid = np.asarray(batch["valid"], bool)
    for key, value in values.items():
      sums[key] = sums.get(key, 0.0) + float(np.sum(np.asarray(value)[valid]))
    rows += int(valid.sum())
  return {key: value / max(rows, 1) for key, value in sorted(sums.items())}
