"""Synthetic multi-view people in the Market-1501 layout of PATN/GFLA: the project's embedded data set.

    python -m rfgen_jax.data.synthetic --out DIR [--height 128 --width 64 --train-ids 200 --test-ids 20 \
        --views-per-id 8 --seed 0 --misalign off|moderate|scale=0.2,shift_y=10,...]

writes

    DIR/train/0001_c3s1_000117_00.png ...      ids 1..N
    DIR/test/0201_c1s1_000142_00.png ...       ids N+1..N+M (disjoint from train)
    DIR/market-annotation-{train,test}.csv     name:keypoints_y:keypoints_x (JSON lists of 18 ints, -1 = none)
    DIR/market-pairs-{train,test}.csv          from,to (a few pairs of the same identity)
    DIR/README.txt, DIR/info.json              generation parameters; info.json is written last

Why it is a multi-source task: every identity wears a top whose FRONT and BACK differ in colour and pattern
(stripes, checks, dots, a logo, a chest band; a backpack, seen only from behind, whose straps show in
front), may have sleeves of two colours, long hair seen only from behind, and is rendered at
orientations spread around the full circle. A view from the front says nothing about the back; the
target view (any orientation) needs the sources that saw that side.

The people: 18 OpenPose joints of an articulated 3D stick body (per-identity height, shoulder and hip
width, torso, limb and head sizes, build), posed (arm swing/abduction, elbow bend, walking or standing
legs, occasionally a raised arm), turned about the vertical axis by an orientation in [0, 360) degrees
(0 = facing the camera, 90 = facing image right) and projected orthographically. Torso faces (front,
back and the visible side, each with its own texture), limb capsules, head (a shaded sphere sprite with
face/hair by orientation) and backpack are painted far to near. Keypoints hidden as OpenPose would not
see them: nose and eyes from behind, the far eye and ear in profile, sometimes a wrist or ankle, and
sometimes (mostly in profile) the far shoulder or hip, so the ABF filter (drop images missing a shoulder
or a hip) has work; keypoints outside the frame are -1 too.

The cameras: 6 cameras, each with its own colour cast and 3 backgrounds (wall/floor split, gradients,
stripes, tiles, smooth noise); every image is shifted within its background and the person is scaled
(+-10%), shifted (+-3 px at 128 high, scaled with the height) and rotated (+-5 degrees) in the frame, the
keypoints with it exactly (up to rounding to integer pixels). `misalign` (off by default; `misalign.py`)
adds a systematic per-camera offset on top: camera distance, height in frame, roll, colour and brightness.

Rendering: Pillow polygons on a supersampled canvas (about 256 px high), box-reduced for anti-aliasing;
numpy textures for the torso and head. Deterministic: image (id, view) draws from
`SeedSequence([seed, id, view])`, so the same arguments give byte-identical files. Any size works
(128x64 default; 64x32 and 32x32 are tested).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from rfgen_jax.data import keypoints as kp_lib
from rfgen_jax.data.synthetic import misalign as misalign_lib
from rfgen_jax.data.synthetic.people_body import FORMAT_VERSION
from rfgen_jax.data.synthetic.people_body import INFO_FILE
from rfgen_jax.data.synthetic.people_body import NAME_PATTERN
from rfgen_jax.data.synthetic.people_body import NUM_CAMERAS
from rfgen_jax.data.synthetic.people_body import sample_identity
from rfgen_jax.data.synthetic.people_body import sample_view
from rfgen_jax.data.synthetic.people_render import make_backgrounds
from rfgen_jax.data.synthetic.people_render import render


# -------------------------------------------------------------------------------------------- data set
def _image_name(identity: int, camera: int, frame: int) -> str:
  return f"{identity:04d}_c{camera}s1_{frame:06d}_00.png"


def plan_identity(seed: int, person_id: int, views_per_id: int, offsets=None):
  """The identity and its views: [(name, View)], orientations spread around the circle.

  `offsets`: `misalign.camera_offsets(seed, settings)` to apply each camera's offset (None = none).
  """
  rng = np.random.default_rng(np.random.SeedSequence([seed, person_id]))
  identity = sample_identity(rng)
  start = rng.uniform(0, 360)
  cams = rng.permutation(NUM_CAMERAS)
  views = []
  for k in range(views_per_id):
    vrng = np.random.default_rng(np.random.SeedSequence([seed, person_id, k + 1]))
    orientation = (start + k * 360.0 / views_per_id + vrng.uniform(-0.3, 0.3) * 360.0 / views_per_id) % 360
    camera = int(cams[k % NUM_CAMERAS]) + 1
    view = sample_view(vrng, orientation, camera)
    if offsets is not None:
      view = misalign_lib.apply(view, offsets[camera])
    frame = 100 * (k + 1) + int(vrng.integers(0, 100))
    views.append((_image_name(person_id, camera, frame), view))
  return identity, views


def _atomic_write(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def _annotation_csv(rows) -> str:
  lines = ["name:keypoints_y:keypoints_x"]
  for name, kp in rows:
    lines.append(f"{name}:{json.dumps([int(v) for v in kp[:, 0]])}:{json.dumps([int(v) for v in kp[:, 1]])}")
  return "\n".join(lines) + "\n"


def _pairs_csv(names_by_id: Dict[int, List[str]], per_id: int) -> str:
  lines = ["from,to"]
  for pid in sorted(names_by_id):
    names = names_by_id[pid]
    n = len(names)
    for k in range(min(per_id, n if n > 1 else 0)):
      lines.append(f"{names[k]},{names[(k + n // 2) % n if n // 2 else (k + 1) % n]}")
  return "\n".join(lines) + "\n"


def generate(out_dir: str, height: int = 128, width: int = 64, train_ids: int = 200, test_ids: int = 20,
             views_per_id: int = 8, seed: int = 0, verbose: bool = False, misalign=None) -> dict:
  """Writes the synthetic people set in the Market-1501 layout (see the module docstring).

  Args:
    out_dir: the data root; created if needed. `info.json` is removed first and written last, so an
      interrupted run leaves a folder that `is_complete` rejects. Stale synthetic-named PNGs are removed.
    height, width: image size in pixels (any size; >= 16 recommended).
    train_ids, test_ids: number of identities (train ids 1..N, test ids N+1..N+M).
    views_per_id: images per identity (>= 1; >= 2 for multi-source tuples).
    seed: everything is a function of the arguments (identical bytes for identical arguments).
    verbose: print progress to stderr.
    misalign: per-camera offsets, a `misalign.Misalign` or a dict of its fields (None / all 0 = off, the
      output is then byte-identical to a generator without the switch); stored in info.json when on.

  Returns:
    The summary also written to info.json: parameters, image and identity counts, the number of images
    missing a shoulder or a hip, and the generation time in seconds.
  """
  if height < 8 or width < 8:
    raise ValueError(f"Image size {height}x{width} is too small (min 8x8).")
  if views_per_id < 1 or train_ids < 0 or test_ids < 0:
    raise ValueError("views_per_id must be >= 1 and the id counts >= 0.")
  settings = misalign_lib.from_mapping(misalign)
  offsets = misalign_lib.camera_offsets(seed, settings) if settings.active else None
  t0 = time.perf_counter()
  os.makedirs(out_dir, exist_ok=True)
  info_path = os.path.join(out_dir, INFO_FILE)
  if os.path.exists(info_path):
    os.remove(info_path)
  backgrounds = make_backgrounds(height, width, seed)
  splits = {"train": range(1, train_ids + 1), "test": range(train_ids + 1, train_ids + test_ids + 1)}
  counts, incomplete = {}, {}
  for split, ids in splits.items():
    folder = os.path.join(out_dir, split)
    os.makedirs(folder, exist_ok=True)
    rows, names_by_id, written = [], {}, set()
    for pid in ids:
      identity, views = plan_identity(seed, pid, views_per_id, offsets)
      for name, view in views:
        img, kp = render(identity, view, height, width, backgrounds, seed)
        Image.fromarray(img).save(os.path.join(folder, name), compress_level=1)
        rows.append((name, kp))
        names_by_id.setdefault(pid, []).append(name)
        written.add(name)
      if verbose and pid % 50 == 0:
        print(f"{split}: identity {pid}", file=sys.stderr)
    for stale in os.listdir(folder):
      if NAME_PATTERN.match(stale) and stale not in written:
        os.remove(os.path.join(folder, stale))
    rows.sort(key=lambda r: r[0])
    _atomic_write(os.path.join(out_dir, f"market-annotation-{split}.csv"), _annotation_csv(rows))
    _atomic_write(os.path.join(out_dir, f"market-pairs-{split}.csv"), _pairs_csv(names_by_id, 4))
    counts[split] = len(rows)
    incomplete[split] = int(sum(
        1 for _, kp in rows if np.any(kp[list(kp_lib.JOINT_INDEX[n] for n in
                                              ("r_shoulder", "l_shoulder", "r_hip", "l_hip"))] < 0)))
  elapsed = time.perf_counter() - t0
  params = {"height": height, "width": width, "train_ids": train_ids, "test_ids": test_ids,
            "views_per_id": views_per_id, "seed": seed}
  misalign_flag = ""
  if settings.active:   # absent when off, so that the default info.json keeps its bytes
    params["misalign"] = settings.as_dict()
    misalign_flag = " --misalign " + ",".join(f"{k}={v:g}" for k, v in settings.as_dict().items())
  summary = {"format_version": FORMAT_VERSION, "params": params,
             "images": counts, "identities": {"train": train_ids, "test": test_ids},
             "missing_shoulder_or_hip": incomplete,
             "seconds": round(elapsed, 3)}
  readme = (
      "Synthetic multi-view people (rfgen_jax.data.synthetic), Market-1501 layout of PATN/GFLA.\n"
      f"Generated with: python -m rfgen_jax.data.synthetic --out DIR --height {height} --width "
      f"{width} --train-ids {train_ids} --test-ids {test_ids} --views-per-id {views_per_id} --seed {seed}"
      f"{misalign_flag}\n"
      "train/, test/: {id:04d}_c{camera}s1_{frame:06d}_00.png; train and test identities are disjoint.\n"
      "market-annotation-{split}.csv: name:keypoints_y:keypoints_x, 18 OpenPose joints, -1 = missing.\n"
      "market-pairs-{split}.csv: from,to pairs of one identity. info.json: parameters, written last.\n")
  _atomic_write(os.path.join(out_dir, "README.txt"), readme)
  # The timing is not part of info.json, so that equal arguments give byte-identical folders.
  info = {k: v for k, v in summary.items() if k != "seconds"}
  _atomic_write(info_path, json.dumps(info, indent=2, sort_keys=True) + "\n")
  return summary


def is_complete(out_dir: str, height: Optional[int] = None, width: Optional[int] = None,
                misalign=None) -> bool:
  """True if `out_dir` holds a finished synthetic set (info.json present, CSVs and image counts match).

  With `height`/`width` given, the set must also have that image size; with `misalign` given (a
  `misalign.Misalign` or dict), the same per-camera offsets (a set without them counts as all 0).
  """
  try:
    with open(os.path.join(out_dir, INFO_FILE)) as f:
      info = json.load(f)
    if info.get("format_version") != FORMAT_VERSION:
      return False
    p = info["params"]
    if (height is not None and p["height"] != height) or (width is not None and p["width"] != width):
      return False
    if misalign is not None and misalign_lib.from_mapping(p.get("misalign")) != misalign_lib.from_mapping(
        misalign):
      return False
    for split in ("train", "test"):
      for name in (f"market-annotation-{split}.csv", f"market-pairs-{split}.csv"):
        if not os.path.isfile(os.path.join(out_dir, name)):
          return False
      pngs = [n for n in os.listdir(os.path.join(out_dir, split)) if n.endswith(".png")]
      if len(pngs) != info["images"][split]:
        return False
    return True
  except (OSError, ValueError, KeyError, TypeError):
    return False


# -------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.data.synthetic", description=__doc__.split(
      "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="output data root")
  parser.add_argument("--height", type=int, default=128)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--train-ids", type=int, default=200)
  parser.add_argument("--test-ids", type=int, default=20)
  parser.add_argument("--views-per-id", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--misalign", default="off", help="per-camera offsets: off | moderate | "
                      "scale=F,shift_y=PX,shift_x=PX,roll=DEG,colour=F,brightness=F (misalign.py)")
  args = parser.parse_args(argv)
  try:
    settings = misalign_lib.parse(args.misalign)
  except ValueError as e:
    parser.error(str(e))   # exit status 2
  summary = generate(args.out, args.height, args.width, args.train_ids, args.test_ids, args.views_per_id,
                     args.seed, verbose=True, misalign=settings)
  n = sum(summary["images"].values())
  print(f"Wrote {n} images ({summary['images']}) to {args.out} in {summary['seconds']:.1f} s "
        f"({n / max(summary['seconds'], 1e-9):.0f} images/s); missing a shoulder or hip: "
        f"{summary['missing_shoulder_or_hip']}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
