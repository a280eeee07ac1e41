r"""Turns videos of people into a training set in the Market-1501 layout.

    python -m rfgen_jax.tools.video_to_dataset --video V [--video V2 ...] --out DIR \
        [--max_frames N] [--frame_step 1] [--crop_every 2] [--test_fraction 0.25] [--image_size 128,64]

Per video (camera c = its position on the command line, from 1):
1. detect people in every `--frame_step`-th frame with OpenCV's HOG people detector
   (`cv2.HOGDescriptor_getDefaultPeopleDetector`, Dalal & Triggs: its linear SVM is compiled into
   OpenCV, so nothing is downloaded, and it is made for upright pedestrians; its 64x128 window sees
   people from ~96 px, so frames are upscaled by `--hog_upscale` (1.5) first);
2. track them with ByteTrack (Zhang et al., ECCV 2022) as packaged by Roboflow's `supervision`
   (`sv.ByteTrack`, pure Python on numpy/scipy, no weights; `supervision==0.26.1` is its last release
   that still has it: later ones moved it to the `trackers` package, which needs numpy >= 2 and so cannot
   share an environment with mediapipe); tracks seen in fewer than `--min_track_frames` processed frames
   are dropped, and so are tracks whose box moves less than `--min_motion` box heights (HOG fires on
   the same patch of background frame after frame; people standing still are lost with them);
3. every `--crop_every`-th box of a track is cropped, with `--margin` (a fraction of the box height) on
   each side and widened or heightened to the aspect of `--image_size` (Market 128x64: 2:1), and saved
   at `--image_size`; parts of the crop outside the frame are black;
4. the 18 OpenPose keypoints are detected on the crop (resampled to `--detect_scale` times
   `--image_size`, as BlazePose finds small people poorly) with `rfgen_jax.tools.pose_keypoints`
   (MediaPipe BlazePose) and scaled to the saved crop; crops without a person or missing a shoulder or
   a hip are dropped (the readers would drop them), and so are crops whose shoulder-to-hip height is
   below `--min_torso` of the crop height (a "pose" found in background clutter);
5. identities (= tracks, numbered from 1 over all videos) with at least 2 crops are split into train and
   test by identity (`--test_fraction`, seeded) and written as

       DIR/train/IIII_cCs1_FFFFFF_00.jpg  DIR/market-annotation-train.csv   (IIII identity, C camera,
       DIR/test/...                       DIR/market-annotation-test.csv     FFFFFF frame number)
       DIR/summary.json  DIR/contact_sheet.png

   which `configs/vtest.py` (data.name "market", any `data.root`) trains on.

It runs in the keypoints environment (OpenCV, mediapipe and supervision; see
requirements-keypoints.txt), not the main one:

    python3.11 -m venv ~/.venvs/rfgen-keypoints
    ~/.venvs/rfgen-keypoints/bin/pip install -r requirements-keypoints.txt
    ~/.venvs/rfgen-keypoints/bin/python -m rfgen_jax.tools.video_to_dataset --video vtest.avi --out data/vtest

This module is the pipeline and its command line; the OpenCV and supervision parts (decoding, HOG,
ByteTrack) are `rfgen_jax/tools/video_detection.py`, the numpy parts (tracks, crops, the Market-1501
writer, the contact sheet) `rfgen_jax/tools/video_tracking.py`.

A video that cannot be read, or in which no usable person is found, is a one-line error (exit status 2).
Known limits: HOG misses people far from upright or much smaller than ~60 px; a track can switch persons
when two cross (ByteTrack has no appearance model), which puts two people under one identity.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax.tools import pose_keypoints
from rfgen_jax.tools import video_tracking as vt
from rfgen_jax.tools.video_detection import ByteTrackAdapter
from rfgen_jax.tools.video_detection import Detector
from rfgen_jax.tools.video_detection import FrameSource
from rfgen_jax.tools.video_detection import HogPeopleDetector
from rfgen_jax.tools.video_detection import InputError
from rfgen_jax.tools.video_detection import video_frames
from rfgen_jax.tools.video_detection import video_info

PoseFn = Callable[[np.ndarray], "np.ndarray | None"]                # RGB crop -> (18, 2) keypoints | None


@dataclasses.dataclass
class Options:
  image_size: tuple[int, int] = (128, 64)
  margin: float = 0.05
  detect_scale: float = 2.0
  min_track_frames: int = 8
  crop_every: int = 2
  min_box_height: float = 48.0
  min_motion: float = 0.5
  min_torso: float = 0.15
  test_fraction: float = 0.25
  seed: int = 0


# ------------------------------------------------------------------------------------------ progress
class Progress:
  """Prints `what i/n (rate/s, ETA)` at most every `every_s` seconds."""

  def __init__(self, what: str, total: int | None, unit: str = "frames", every_s: float = 10.0):
    self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
    self.start = self.last = time.perf_counter()

  def update(self, done: int, force: bool = False) -> None:
    now = time.perf_counter()
    if not force and now - self.last < self.every_s:
      return
    self.last = now
    rate = done / max(now - self.start, 1e-9)
    if self.total:
      eta = (self.total - done) / rate if rate > 0 else float("inf")
      print(f"  {self.what}: {done}/{self.total} {self.unit} ({rate:.2f}/s, ETA {_duration(eta)})",
            flush=True)
    else:
      print(f"  {self.what}: {done} {self.unit} ({rate:.2f}/s)", flush=True)


def _duration(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# ------------------------------------------------------------------------------------------ the pipeline
@dataclasses.dataclass
class Timing:
  """Seconds spent per stage and frames processed, for the benchmark in docs/performance.md."""
  frames: int = 0
  decode: float = 0.0
  detect: float = 0.0
  track: float = 0.0
  keypoints: float = 0.0
  crops: int = 0

  def as_dict(self) -> dict:
    busy = self.detect + self.track + self.keypoints
    return {"frames": self.frames, "crops_to_keypoints": self.crops,
            "seconds": {"decode": round(self.decode, 2), "detect": round(self.detect, 2),
                        "track": round(self.track, 3), "keypoints": round(self.keypoints, 2)},
            "frames_per_second_detect_track_keypoints": round(self.frames / busy, 3) if busy else None}


def track_video(frames: FrameSource, detector: Detector, tracker: vt.TrackerFn, total: int | None,
                timing: Timing, label: str = "video") -> dict[int, list[vt.TrackPoint]]:
  """Pass 1: detection and tracking over the frames; {track id: points}."""
  progress = Progress(f"{label}: detect + track", total)
  tracks: dict[int, list[vt.TrackPoint]] = {}
  count = 0
  t = time.perf_counter()
  for frame_no, rgb in frames():
    t1 = time.perf_counter()
    timing.decode += t1 - t
    boxes, scores = detector(rgb)
    t2 = time.perf_counter()
    out_boxes, ids = tracker(boxes, scores)
    t3 = time.perf_counter()
    vt.update_tracks(tracks, frame_no, out_boxes, ids)
    timing.detect += t2 - t1
    timing.track += t3 - t2
    timing.frames += 1
    count += 1
    progress.update(count)
    t = time.perf_counter()
  progress.update(count, force=True)
  return tracks


def crop_tracks(frames: FrameSource, selected: dict[int, list[vt.TrackPoint]], identities: dict[int, int],
                camera: int, pose: PoseFn, options: Options, counts: collections.Counter, timing: Timing,
                label: str = "video") -> list[vt.Crop]:
  """Pass 2: crops the selected boxes, detects their keypoints and keeps those with shoulders and hips."""
  by_frame: dict[int, list[tuple[int, np.ndarray]]] = collections.defaultdict(list)
  for track_id, points in selected.items():
    for point in points:
      by_frame[point.frame].append((track_id, point.box))
  total = sum(len(v) for v in by_frame.values())
  progress = Progress(f"{label}: crops + keypoints", total, unit="crops")
  size = tuple(options.image_size)
  detect_size = tuple(int(round(s * options.detect_scale)) for s in size)
  aspect = size[0] / size[1]
  crops, done = [], 0
  last_frame = max(by_frame) if by_frame else -1
  for frame_no, rgb in frames():
    if frame_no > last_frame:
      break
    for track_id, box in by_frame.get(frame_no, ()):
      window = vt.crop_window(box, aspect, options.margin)
      t = time.perf_counter()
      kp = pose(vt.extract_crop(rgb, window, detect_size))
      timing.keypoints += time.perf_counter() - t
      timing.crops += 1
      done += 1
      progress.update(done)
      if kp is None:
        counts["crops without a detected pose"] += 1
        continue
      kp = vt.rescale_keypoints(kp, detect_size, size)
      if not vt.has_required_joints(kp):
        counts["crops missing a shoulder or hip"] += 1
        continue
      if vt.torso_fraction(kp, size[0]) < options.min_torso:
        counts[f"crops whose torso is < {options.min_torso:g} of the crop height"] += 1
        continue
      crops.append(vt.Crop(identities[track_id], camera, frame_no, vt.extract_crop(rgb, window, size), kp))
  progress.update(done, force=True)
  return crops


def build_dataset(videos: Sequence[tuple[str, FrameSource, int | None]], detector: Detector,
                  make_tracker: Callable[[int], vt.TrackerFn], pose: PoseFn, out_dir: str,
                  options: Options) -> dict:
  """The whole tool on already-opened inputs (the tests pass numpy frames and stand-in parts).

  Args:
    videos: (name, FrameSource, number of frames to process or None) per camera, in camera order.
    detector: see `Detector`.
    make_tracker: video index (0-based) -> a fresh tracker for that video.
    pose: see `PoseFn`.
    out_dir: the data set folder.
    options: see `Options`.

  Returns:
    The summary (also written to out_dir/summary.json).

  Raises:
    InputError if a video yields no frame or no usable person is found.
  """
  counts: collections.Counter = collections.Counter()
  timing = Timing()
  all_crops: list[vt.Crop] = []
  per_video = []
  next_identity = 1
  for index, (name, frames, total) in enumerate(videos):
    label = f"camera {index + 1} ({os.path.basename(name)})"
    frames_before = timing.frames
    tracks = track_video(frames, detector, make_tracker(index), total, timing, label)
    if timing.frames == frames_before:
      raise InputError(f"{name}: no frames to process.")
    selected = vt.select_crops(tracks, options.min_track_frames, options.crop_every,
                               options.min_box_height, counts, options.min_motion)
    identities = {}
    for track_id in sorted(selected):
      identities[track_id] = next_identity
      next_identity += 1
    crops = crop_tracks(frames, selected, identities, index + 1, pose, options, counts, timing, label)
    all_crops.extend(crops)
    per_video.append({"video": name, "camera": index + 1, "frames": timing.frames - frames_before,
                      "tracks": len(tracks), "tracks_cropped": len(selected),
                      "identities_with_crops": len({c.identity for c in crops}), "crops_kept": len(crops)})
  if not all_crops:
    raise InputError(f"No usable person found in {', '.join(v[0] for v in videos)}: "
                     f"{sum(p['tracks'] for p in per_video)} tracks; dropped: {dict(counts) or 'none'}.")
  layout = vt.write_market_layout(out_dir, all_crops, options.test_fraction, options.seed)
  if layout["dropped_lonely_crops"]:
    counts["crops of identities with < 2 crops"] += layout.pop("dropped_lonely_crops")
  else:
    layout.pop("dropped_lonely_crops")
  if not layout["train"]["images"]:
    raise InputError(f"No identity with 2 or more usable crops in {', '.join(v[0] for v in videos)} "
                     f"(dropped: {dict(counts)}).")
  written = [c for c in all_crops if os.path.isfile(os.path.join(out_dir, "train", c.name))
             or os.path.isfile(os.path.join(out_dir, "test", c.name))]
  sheet = vt.contact_sheet(written, scale=2)
  Image.fromarray(sheet).save(os.path.join(out_dir, "contact_sheet.png"))
  summary = {"videos": per_video, "splits": layout, "dropped": dict(counts),
             "options": dataclasses.asdict(options), "timing": timing.as_dict()}
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def print_summary(summary: dict, out_dir: str) -> None:
  for v in summary["videos"]:
    print(f"camera {v['camera']} {v['video']}: {v['frames']} frames, {v['tracks']} tracks, "
          f"{v['tracks_cropped']} long enough, {v['identities_with_crops']} with usable crops, "
          f"{v['crops_kept']} crops kept.")
  s = summary["splits"]
  print(f"Wrote {out_dir}: train {s['train']['identities']} identities / {s['train']['images']} images, "
        f"test {s['test']['identities']} identities / {s['test']['images']} images.")
  print("Dropped: " + (", ".join(f"{n} {why}" for why, n in summary["dropped"].items()) or "nothing") + ".")
  t = summary["timing"]
  print(f"Detection + tracking + keypoints: {t['frames_per_second_detect_track_keypoints']} frames/s "
        f"(seconds: {t['seconds']}); summary.json and contact_sheet.png beside the data.")


# ------------------------------------------------------------------------------------------ CLI
def _parse_size(text: str) -> tuple[int, int]:
  try:
    h, w = (int(v) for v in text.replace("x", ",").split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected H,W, got {text!r}") from None
  if h <= 0 or w <= 0:
    raise argparse.ArgumentTypeError(f"expected positive H,W, got {text!r}")
  return h, w


def _earlier_outputs(out_dir: str, overwrite: bool) -> list[str]:
  """The tool's own outputs present in `out_dir`; InputError (a user error) if any and not `overwrite`."""
  ours = ["train", "test", "market-annotation-train.csv", "market-annotation-test.csv", "summary.json",
          "contact_sheet.png"]
  present = [n for n in ours if os.path.exists(os.path.join(out_dir, n))]
  if present and not overwrite:
    raise InputError(f"{out_dir} (--out) already holds a data set ({', '.join(present)}); "
                     "pass --overwrite to replace it, or choose another --out.")
  return present


def prepare_out_dir(out_dir: str, overwrite: bool) -> None:
  """Refuses to mix with an earlier data set unless `overwrite` (which removes the tool's own outputs)."""
  present = _earlier_outputs(out_dir, overwrite)
  for n in present:
    path = os.path.join(out_dir, n)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  os.makedirs(out_dir, exist_ok=True)


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m rfgen_jax.tools.video_to_dataset",
      description="Detect, track and crop people in videos and write a Market-1501-layout data set.")
  parser.add_argument("--video", action="append", required=True,
                      help="a video file (repeat for several cameras)")
  parser.add_argument("--out", required=True, help="data set folder to write")
  parser.add_argument("--overwrite", action="store_true", help="replace an earlier data set in --out")
  parser.add_argument("--max_frames", type=int, default=0, help="only the first N frames (0: all)")
  parser.add_argument("--frame_step", type=int, default=1, help="process every N-th frame")
  parser.add_argument("--crop_every", type=int, default=2, help="crop every N-th box of a track")
  parser.add_argument("--min_track_frames", type=int, default=8,
                      help="drop tracks seen in fewer processed frames")
  parser.add_argument("--min_box_height", type=float, default=48.0, help="drop smaller boxes (pixels)")
  parser.add_argument("--min_motion", type=float, default=0.5,
                      help="drop tracks whose box centre moves less (in box heights; 0: keep static ones)")
  parser.add_argument("--min_torso", type=float, default=0.15,
                      help="drop crops whose shoulder-to-hip height is a smaller fraction of the crop")
  parser.add_argument("--image_size", type=_parse_size, default=(128, 64),
                      help="H,W of the saved crops (the model's data.image_size aspect)")
  parser.add_argument("--margin", type=float, default=0.05,
                      help="margin on each side of a box, fraction of its height")
  parser.add_argument("--detect_scale", type=float, default=2.0,
                      help="keypoints are detected on crops of this many times --image_size")
  parser.add_argument("--hog_upscale", type=float, default=1.5, help="frames are upscaled for HOG")
  parser.add_argument("--min_visibility", type=float, default=0.5,
                      help="BlazePose landmarks with lower visibility are missing")
  parser.add_argument("--test_fraction", type=float, default=0.25, help="share of identities in test")
  parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
  args = parser.parse_args(argv)
  for flag in ("max_frames", "frame_step", "crop_every", "min_track_frames"):
    if getattr(args, flag) < (0 if flag == "max_frames" else 1):
      raise errors.BadInputError(f"--{flag} must be >= {0 if flag == 'max_frames' else 1}.")
  if not 0 <= args.test_fraction < 1:
    raise errors.BadInputError("--test_fraction must be in [0, 1).")
  _earlier_outputs(args.out, args.overwrite)   # refused before any video is read
  options = Options(image_size=args.image_size, margin=args.margin, detect_scale=args.detect_scale,
                    min_track_frames=args.min_track_frames, crop_every=args.crop_every,
                    min_box_height=args.min_box_height, min_motion=args.min_motion,
                    min_torso=args.min_torso, test_fraction=args.test_fraction, seed=args.seed)
  videos, infos = [], []
  for path in args.video:
    info = video_info(path)
    total = info["frames"] if not args.max_frames else min(info["frames"], args.max_frames)
    videos.append((path, video_frames(path, args.frame_step, args.max_frames),
                   -(-total // args.frame_step)))
    infos.append(info)
    print(f"camera {len(videos)}: {path}: {info['frames']} frames, {info['width']}x{info['height']}, "
          f"{info['fps']:g} fps.")
  prepare_out_dir(args.out, args.overwrite)
  detector = HogPeopleDetector(upscale=args.hog_upscale)
  with pose_keypoints.PoseDetector(min_visibility=args.min_visibility) as pose:
    summary = build_dataset(
        videos, detector, lambda i: ByteTrackAdapter(infos[i]["fps"] / args.frame_step), pose, args.out,
        options)
  print_summary(summary, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
