"""The ablation study's report: the paper's Table 4 layout (markdown, JSON), the orderings, a bar plot PNG.

Input: one `metrics.json` per run (written by `rfgen_jax/evaluation/evaluator.py`: `{"step", "results":
{"1": {metric: value}, ...}}`), grouped by variant; a variant trained with several seeds is summarised by
the mean, the standard deviation and the range (min, max) over its seeds.

The orderings (the paper's claim: Full beats every ablation): for each metric and K, Full's mean minus a
variant's mean, signed so that + means Full is better, and whether it holds beyond the seed-to-seed spread:
`spread` = the largest range (max - min over seeds) of any variant trained with >= 2 seeds at that metric
and K; "yes" when the improvement exceeds it, "no" when Full is worse by more than it, "within" otherwise,
"n/a" with fewer than two seeds anywhere. The plot is drawn with Pillow (no matplotlib needed).
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# (key in metrics.json, header, lower is better); the evaluator's column order.
METRICS = (("fid", "FID", True), ("lpips", "LPIPS", True), ("mask_lpips", "Mask-LPIPS", True),
           ("ssim", "SSIM", False), ("psnr", "PSNR", False), ("l1", "L1", True),
           ("ssim_person", "SSIM (person)", False), ("l1_person", "L1 (person)", True))
_LOWER = {k: low for k, _, low in METRICS}
_HEADER = {k: h for k, h, _ in METRICS}


def summarise(runs: Mapping[str, Mapping[int, dict]], ks: Sequence[int],
              metrics: Sequence[str]) -> Dict[str, Dict[str, Dict[str, dict]]]:
  """Per variant, K (as str) and metric: {mean, std, min, max, n, seeds: {seed: value}}.

  Args:
    runs: variant -> seed -> the run's metrics.json dict.
    ks: the K values (eval.num_sources).
    metrics: metric keys to summarise (absent ones are left out).
  """
  out = {}
  for variant, by_seed in runs.items():
    out[variant] = {}
    for k in ks:
      row = {}
      for m in metrics:
        values = {seed: float(r["results"][str(k)][m]) for seed, r in sorted(by_seed.items())
                  if m in r["results"].get(str(k), {})}
        finite = [v for v in values.values() if math.isfinite(v)]
        if not finite:
          continue
        a = np.asarray(finite, np.float64)
        row[m] = {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
                  "min": float(a.min()), "max": float(a.max()), "n": int(a.size),
                  "seeds": {str(s): v for s, v in values.items()}}
      out[variant][str(k)] = row
  return out


def orderings(summary: dict, reference: str, ks: Sequence[int], metrics: Sequence[str]) -> dict:
  """Per other variant, K and metric: {gain (+ = reference better), spread, verdict}; see the docstring."""
  out = {}
  if reference not in summary:
    return out
  for variant in summary:
    if variant == reference:
      continue
    out[variant] = {}
    for k in ks:
      row = {}
      for m in metrics:
        ref, other = summary[reference][str(k)].get(m), summary[variant][str(k)].get(m)
        if ref is None or other is None:
          continue
        gain = other["mean"] - ref["mean"] if _LOWER[m] else ref["mean"] - other["mean"]
        ranges = [summary[v][str(k)][m]["max"] - summary[v][str(k)][m]["min"] for v in summary
                  if m in summary[v][str(k)] and summary[v][str(k)][m]["n"] >= 2]
        spread = max(ranges) if ranges else None
        if spread is None:
          verdict = "n/a"
        elif gain > spread:
          verdict = "yes"
        elif gain < -spread:
          verdict = "no"
        else:
          verdict = "within"
        row[m] = {"gain": gain, "spread": spread, "verdict": verdict}
      out[variant][str(k)] = row
  return out


def present_metrics(summary: dict, wanted: Sequence[str]) -> List[str]:
  """The metrics of `wanted` (in METRICS order) that at least one variant has."""
  have = {m for v in summary.values() for row in v.values() for m in row}
  order = [k for k, _, _ in METRICS]
  return [m for m in order if m in wanted and m in have]


def _cell(entry: Optional[dict]) -> str:
  if entry is None:
    return "–"
  if entry["n"] > 1:
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}"
  return f"{entry['mean']:.4f}"


def table_markdown(summary: dict, order: Sequence[str], labels: Mapping[str, str], ks: Sequence[int],
                   metrics: Sequence[str], ords: dict, reference: str, notes: Sequence[str] = ()) -> str:
  """Table 4's layout: a row per variant, a column per (K, metric); then the orderings table."""
  lines = ["| Variant | seeds | " + " | ".join(
      f"K={k} {_HEADER[m]} {'↓' if _LOWER[m] else '↑'}" for k in ks for m in metrics) + " |",
           "| --- | --- |" + " --- |" * (len(ks) * len(metrics))]
  for v in order:
    if v not in summary:
      continue
    n = max((e["n"] for row in summary[v].values() for e in row.values()), default=0)
    lines.append(f"| {labels.get(v, v)} | {n} | " + " | ".join(
        _cell(summary[v][str(k)].get(m)) for k in ks for m in metrics) + " |")
  lines += ["", "Mean ± standard deviation over seeds where a variant has several."]
  if ords:
    lines += ["", f"{labels.get(reference, reference)} minus each variant (+ = {labels.get(reference, reference)} "
              "better; yes / no = beyond the seed-to-seed spread, within = not; n/a = no variant has two seeds):", "",
              "| Variant | " + " | ".join(f"K={k} {_HEADER[m]}" for k in ks for m in metrics) + " |",
              "| --- |" + " --- |" * (len(ks) * len(metrics))]
    for v in order:
      if v not in ords:
        continue
      cells = []
      for k in ks:
        for m in metrics:
          e = ords[v][str(k)].get(m)
          cells.append("–" if e is None else f"{e['gain']:+.4f} ({e['verdict']})")
      lines.append(f"| {labels.get(v, v)} | " + " | ".join(cells) + " |")
    spreads = sorted({round(e["spread"], 6) for v in ords.values() for row in v.values() for e in row.values()
                      if e["spread"] is not None})
    if spreads:
      lines += ["", f"Seed-to-seed spread (largest range over seeds) per K and metric: "
                f"{min(spreads):.4f} .. {max(spreads):.4f}."]
  lines += list(notes)
  return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- bar plot
_PALETTE = ((120, 120, 120), (230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (213, 94, 0),
            (0, 114, 178), (240, 228, 66))


def _nice_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
  span = max(hi - lo, 1e-12)
  raw = span / n
  mag = 10 ** math.floor(math.log10(raw))
  step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10 * mag)
  first = math.ceil(lo / step) * step
  return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def bar_plot(summary: dict, order: Sequence[str], labels: Mapping[str, str], ks: Sequence[int],
             metrics: Sequence[str], title: str = "") -> np.ndarray:
  """One panel per metric: groups K = 1, 2, 3, a bar per variant (its mean), a line for the seed range.

  Returns an (H, W, 3) uint8 image.
  """
  font = ImageFont.load_default()
  variants = [v for v in order if v in summary]
  pw, ph, margin_l, margin_b, margin_t = 360, 240, 52, 34, 26
  legend_h = 18 * ((len(variants) + 2) // 3) + 8
  width, height = pw * max(len(metrics), 1) + 10, ph + legend_h + (20 if title else 0)
  img = Image.new("RGB", (width, height), (255, 255, 255))
  d = ImageDraw.Draw(img)
  top0 = 20 if title else 0
  if title:
    d.text((8, 4), title, fill=(0, 0, 0), font=font)
  for p, m in enumerate(metrics):
    x0, y0 = p * pw + margin_l, top0 + margin_t
    x1, y1 = (p + 1) * pw - 8, top0 + ph - margin_b
    entries = [summary[v][str(k)].get(m) for k in ks for v in variants]
    values = [e[key] for e in entries if e is not None for key in ("min", "max", "mean")]
    if not values:
      continue
    lo, hi = min(values), max(values)
    pad = 0.15 * max(hi - lo, 1e-3 * max(abs(hi), 1e-6))
    lo, hi = lo - pad, hi + pad   # a zoomed axis: the differences are what matters; the axis says where
    ticks = _nice_ticks(lo, hi)

    def y_of(v):
      return y1 - (v - lo) / (hi - lo) * (y1 - y0)

    d.text((x0 - margin_l + 4, top0 + 6), f"{_HEADER[m]} ({'lower' if _LOWER[m] else 'higher'} is better)",
           fill=(0, 0, 0), font=font)
    for t in ticks:
      yt = y_of(t)
      d.line([(x0, yt), (x1, yt)], fill=(225, 225, 225))
      d.text((x0 - margin_l + 2, yt - 6), f"{t:.4g}", fill=(60, 60, 60), font=font)
    d.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    group_w = (x1 - x0) / len(ks)
    bar_w = group_w * 0.8 / max(len(variants), 1)
    for gi, k in enumerate(ks):
      gx = x0 + gi * group_w + group_w * 0.1
      for vi, v in enumerate(variants):
        e = summary[v][str(k)].get(m)
        if e is None:
          continue
        bx0, bx1 = gx + vi * bar_w + 1, gx + (vi + 1) * bar_w - 1
        d.rectangle([bx0, y_of(e["mean"]), bx1, y1], fill=_PALETTE[vi % len(_PALETTE)])
        if e["n"] > 1:
          cx = (bx0 + bx1) / 2
          d.line([(cx, y_of(e["min"])), (cx, y_of(e["max"]))], fill=(0, 0, 0), width=2)
          for yv in (e["min"], e["max"]):
            d.line([(cx - 3, y_of(yv)), (cx + 3, y_of(yv))], fill=(0, 0, 0), width=1)
      d.text((x0 + gi * group_w + group_w / 2 - 10, y1 + 6), f"K={k}", fill=(0, 0, 0), font=font)
  ly = top0 + ph + 2
  for vi, v in enumerate(variants):
    lx = 10 + (vi % 3) * 160
    yy = ly + 18 * (vi // 3)
    d.rectangle([lx, yy + 2, lx + 12, yy + 12], fill=_PALETTE[vi % len(_PALETTE)])
    d.text((lx + 18, yy + 1), labels.get(v, v), fill=(0, 0, 0), font=font)
  d.text((width - 250, ly + legend_h - 18), "bar: mean over seeds; line: min..max", fill=(90, 90, 90), font=font)
  return np.asarray(img)


def write_report(out_dir: str, runs: Mapping[str, Mapping[int, dict]], order: Sequence[str],
                 labels: Mapping[str, str], ks: Sequence[int], metrics: Sequence[str], reference: str,
                 plot_metrics: Sequence[str], extra: Optional[dict] = None,
                 notes: Sequence[str] = ()) -> dict:
  """Writes `table4.md`, `table4.json` and `table4.png` into `out_dir`; returns the JSON dict."""
  summary = summarise(runs, ks, [m for m, _, _ in METRICS])
  shown = present_metrics(summary, metrics)
  ords = orderings(summary, reference, ks, shown)
  report = {"ks": list(ks), "metrics": shown, "reference": reference,
            "variants": [v for v in order if v in summary], "labels": dict(labels),
            "summary": summary, "orderings": ords, **(extra or {})}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "table4.json"), "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  with open(os.path.join(out_dir, "table4.md"), "w") as f:
    f.write(table_markdown(summary, order, labels, ks, shown, ords, reference, notes))
  plotted = present_metrics(summary, plot_metrics) or shown[:2]
  Image.fromarray(bar_plot(summary, order, labels, ks, plotted,
                           title="Ablation (Table 4 layout)")).save(os.path.join(out_dir, "table4.png"),
                                                                    optimize=True)
  return report
