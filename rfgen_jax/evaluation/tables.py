"""The files of an evaluation report: `metrics.json` and `table.md` (the layout of the paper's Table 1).

Written by `--mode=eval` (`evaluator.py`) and by the trainer's periodic evaluation (`loop.run_evaluators`).
"""
from __future__ import annotations

import json
import os

import jax

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
