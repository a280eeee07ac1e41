r"""Animates K source images along a pose sequence with a trained model: an MP4 and a GIF.

    python -m rfgen_jax.tools.animate (--workdir=RUN | --pretrained=NAME) --out walk.mp4 \
        (--test_tuple I [--num_sources K] | --test_sources NAME,NAME | --sources a.jpg,b.jpg --keypoints kp.csv)
        [--sequence walk|turn|orbit|poses.csv|video.mp4] [--num_frames N] [--fps 8] [--batch_size 8]
        [--layout panel|generated] [--scale S] [--config=configs/x.py] [--step N]

The model: a training run (`--workdir`) or a released model (`--pretrained`, docs/pretrained.md).
Sources: the K images of the `--test_tuple` I (the evaluator's fixed tuples of K = `--num_sources`
sources), named test records (`--test_sources`), or one's own photos with their keypoints
(`--sources`, `--keypoints` as in `python -m rfgen_jax.tools.generate`; body-keypoint models only).

Pose sequences (`rfgen_jax.tools.pose_sequences`):
- `walk` (default for people), `turn`: built from a base pose: the target of `--test_tuple`, else the
  first source's keypoints (`--base` NAME picks a test record instead);
- `orbit` (default for camera poses): every azimuth bin from the base view (ShapeNet chairs, the turntable);
- a CSV in the annotation format (`name:keypoints_y:keypoints_x`, one frame per line in order), in
  pixels of a frame of `--pose_size H,W` (default: the model's size), mapped like `--fit`;
- a video (.mp4, .avi, .mov, .webm, .gif): its frames' keypoints are detected with the keypoints
  environment (requirements-keypoints.txt; `--keypoints_python`, default $RFGEN_KEYPOINTS_PYTHON or
  ~/.venvs/rfgen-keypoints/bin/python).

Output: `--out` (.mp4, H.264 via imageio-ffmpeg, which ships its ffmpeg binary) and the same frames as a
GIF beside it (`<out stem>.gif`, or only a GIF when `--out` ends in .gif). `--layout panel` (default)
shows the target skeleton beside each generated frame; `generated` the frame alone; frames are scaled
up `--scale` times (nearest; default: to at least 256 pixels high). Frames are generated in batches of
`--batch_size` on the default device; the frames per second of generation (after compilation) are
printed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.data import keypoints as keypoints_lib
from rfgen_jax.tools import generate as generate_tool
from rfgen_jax.tools import pose_sequences
from rfgen_jax.tools import session as session_lib

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif")


class UsageError(errors.BadInputError):
  """A user error: printed as one line, exit status 2 (`rfgen_jax/errors.py`)."""


# ------------------------------------------------------------------------------------------ inputs
def load_sources(session, args) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None, list[str]]:
  """(K images uint8 at the model's size, K raw poses or pose maps, the default base pose or None, names)."""
  chosen = [bool(args.test_tuple is not None), bool(args.test_sources), bool(args.sources)]
  if sum(chosen) != 1:
    raise UsageError("Choose the sources with exactly one of --test_tuple I, --test_sources NAME,... or "
                     "--sources FILE,... (with --keypoints).")
  if args.sources:
    if session.pose_kind != "keypoints":
      raise UsageError(f"--sources (own photos) needs a body-keypoint model; this one has "
                       f"pose kind {session.pose_kind!r} (data.name={session.config.data.name!r}): use --test_tuple or --test_sources.")
    if not args.keypoints:
      raise UsageError("--sources needs --keypoints (an annotation CSV or keypoint JSON of the photos).")
    paths = [s for s in args.sources.split(",") if s]
    table = generate_tool.read_keypoints_file(args.keypoints, int(session.config.data.num_keypoints))
    images = [generate_tool.read_image(p) for p in paths]
    kps = [generate_tool._lookup(table, p, args.keypoints, "source image").keypoints  # pylint: disable=protected-access
           for p in paths]
    inputs = inference.prepare_inputs(session.config, images, kps, kps[0], target_size=images[0].shape[:2],
                                      names=[os.path.basename(p) for p in paths], fit=args.fit)
    imgs = [np.asarray(np.clip(np.round((im + 1) * 127.5), 0, 255), np.uint8)
            for im in inputs["source_images"][0]]
    return imgs, list(inputs["source_keypoints"][0]), inputs["source_keypoints"][0][0], \
        [os.path.basename(p) for p in paths]
  if args.test_tuple is not None:
    names, target = session.test_tuple(int(args.test_tuple), int(args.num_sources))
    base = session.test_example(target)[1]
  else:
    names, base = [n for n in args.test_sources.split(",") if n], None
  examples = [session.test_example(n) for n in names]
  if base is None:
    base = examples[0][1]
  return [e[0] for e in examples], [e[1] for e in examples], base, names


def detect_video_keypoints(path: str, keypoints_python: str | None, fit: str, session) -> np.ndarray:
  """(T, 18, 2) keypoints of a video's frames at the model's size, via the keypoints environment."""
  import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel  (optional: requirements-app.txt)
  python = keypoints_python or session_lib.default_keypoints_python()
  if not python:
    raise UsageError(f"{path}: detecting keypoints in a video needs the keypoints environment "
                     "(requirements-keypoints.txt, see rfgen_jax/tools/pose_keypoints.py); pass "
                     "--keypoints_python=PATH/bin/python, or give a CSV of keypoints per frame.")
  if not os.path.isfile(path):
    raise UsageError(f"Pose sequence video not found: {path}")
  with tempfile.TemporaryDirectory(prefix="rfgen_video_") as tmp:
    try:
      frames = imageio.mimread(path, memtest=False)
    except Exception as e:  # imageio raises several types for unreadable files
      raise UsageError(f"Cannot read video {path} ({type(e).__name__}: {e}).") from None
    if not frames:
      raise UsageError(f"{path}: no frames.")
    for i, frame in enumerate(frames):
      Image.fromarray(np.asarray(frame)[..., :3]).save(os.path.join(tmp, f"{i:06d}.png"))
    csv = os.path.join(tmp, "keypoints.csv")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([python, "-m", "rfgen_jax.tools.pose_keypoints", "--images", tmp, "--out", csv],
                            cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise UsageError(f"Keypoint detection on {path} failed: {result.stderr.strip().splitlines()[-1:]}")
    names, kps = pose_sequences.read_pose_csv(csv)
    frame_size = np.asarray(frames[0]).shape[:2]
  order = np.argsort(names)
  return np.stack([inference.fit_keypoints(kps[i], frame_size, session.image_size, fit) for i in order])


def pose_sequence(session, args, base: np.ndarray | None) -> np.ndarray:
  """The target poses: (T, J, 2) keypoints or (T, D) camera poses."""
  sequence = args.sequence or ("orbit" if session.pose_kind == "camera" else "walk")
  if args.base:
    base = session.test_example(args.base)[1]
  n = args.num_frames
  if sequence in ("walk", "turn"):
    if session.pose_kind != "keypoints":
      raise UsageError(f"--sequence={sequence} is for body-keypoint models; this one has "
                       f"pose kind {session.pose_kind!r} (data.name={session.config.data.name!r}) (camera models: --sequence=orbit).")
    return (pose_sequences.walk_cycle(base, n or 16) if sequence == "walk"
            else pose_sequences.turn_around(base, n or 24))
  if sequence == "orbit":
    if session.pose_kind != "camera" or session.config.data.camera_encoding != "one_hot_view":
      raise UsageError("--sequence=orbit is for view-pose models (data.camera_encoding=one_hot_view: "
                       "ShapeNet chairs, the turntable).")
    return pose_sequences.orbit(base, n, int(session.config.data.num_azimuths))
  if sequence.lower().endswith(VIDEO_EXTENSIONS):
    poses = detect_video_keypoints(sequence, args.keypoints_python, args.fit, session)
  elif sequence.lower().endswith(".csv"):
    if session.pose_kind == "camera":
      raise UsageError("A keypoint CSV sequence needs a keypoint or landmark model.")
    num = int(session.config.data.num_keypoints if session.pose_kind == "keypoints"
              else session.config.data.num_landmarks)
    _, kps = pose_sequences.read_pose_csv(sequence, num)
    frame = generate_tool.parse_size(args.pose_size) or session.image_size
    poses = np.stack([inference.fit_keypoints(kp, frame, session.image_size, args.fit) for kp in kps])
  else:
    raise UsageError(f"--sequence={sequence!r}: expected walk, turn, orbit, a .csv of keypoints or a "
                     f"video ({', '.join(VIDEO_EXTENSIONS)}).")
  return poses[:n] if n else poses


# ------------------------------------------------------------------------------------------ frames
def render_frames(session, images, target_poses, generated: np.ndarray, layout: str, scale: int) -> np.ndarray:
  """(T, H', W', 3) uint8 video frames: per frame [target skeleton |] generated, scaled up `scale` times."""
  frames = []
  h, w = session.image_size
  for pose, image in zip(target_poses, visualize.to_uint8(generated)):
    big = visualize.resize_nearest(image, (h * scale, w * scale))
    cells = [big]
    if layout == "panel":
      if np.ndim(pose) == 2:     # keypoints / landmarks: the skeleton on black
        kp = (np.asarray(pose, np.float32) + 0.5) * scale - 0.5
        kp[(np.asarray(pose) < 0).any(axis=-1)] = -1
        cells.insert(0, keypoints_lib.draw_skeleton(np.zeros_like(big), kp))
      else:                      # a camera pose: its pose map's first 3 channels as a strip is meaningless;
        cells.insert(0, _camera_label(pose, big.shape))   # show the view numbers instead
    frames.append(visualize.hstack_with_separator(cells, 2) if len(cells) > 1 else big)
  frames = np.stack(frames)
  # H.264 (yuv420p) needs even sizes.
  pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
  return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=255)


def _camera_label(pose, shape) -> np.ndarray:
  canvas = Image.new("RGB", (shape[1], shape[0]), (0, 0, 0))
  text = "\n".join(f"{v:g}" for v in np.asarray(pose).reshape(-1)[:6])
  ImageDraw.Draw(canvas).multiline_text((4, 4), "view\n" + text, fill=(255, 255, 255))
  return np.asarray(canvas)


def write_outputs(frames: np.ndarray, out: str, fps: float) -> list[str]:
  """Writes the MP4 (unless `out` is a .gif) and the GIF; returns the paths written."""
  os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
  stem, ext = os.path.splitext(out)
  written = []
  if ext.lower() != ".gif":
    try:
      import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel  (optional: requirements-app.txt)
      import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import  (optional: checked)
    except ImportError:
      raise UsageError("Writing an MP4 needs imageio and imageio-ffmpeg (pip install -r "
                       "requirements-app.txt); or pass --out NAME.gif.") from None
    imageio.mimwrite(out, list(frames), fps=fps, codec="libx264", macro_block_size=1,
                     pixelformat="yuv420p", quality=8)
    written.append(out)
  gif = stem + ".gif"
  pictures = [Image.fromarray(f) for f in frames]
  pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=int(round(1000 / fps)),
                   loop=0, optimize=False)
  written.append(gif)
  return written


def animate(session, images, source_poses, target_poses, out: str, fps: float = 8.0, layout: str = "panel",
            scale: int | None = None) -> dict:
  """Generates and writes the animation; returns {"paths", "frames", "seconds", "fps", "first_batch_s"}."""
  if layout not in ("panel", "generated"):
    raise UsageError(f"--layout={layout!r}; accepted: panel, generated.")
  t = len(target_poses)
  if t == 0:
    raise UsageError("The pose sequence is empty.")
  b = max(1, min(session.batch_size, t))
  start = time.perf_counter()
  first = session.run(images, source_poses, target_poses[:b])      # compiles, then one batch
  first_s = time.perf_counter() - start
  rest_start = time.perf_counter()
  outputs = [first["image"]]
  done = b
  while done < t:
    outputs.append(session.run(images, source_poses, target_poses[done:done + b])["image"])
    done += b
    elapsed = time.perf_counter() - rest_start
    print(f"  {min(done, t)}/{t} frames, {(done - b) / elapsed:.1f} frames/s", flush=True)
  rest_s = time.perf_counter() - rest_start
  generated = np.concatenate(outputs)[:t]
  if t > b:
    fps_measured = (t - b) / rest_s
  else:   # one batch holds every frame: time it once more, compiled
    again = time.perf_counter()
    session.run(images, source_poses, target_poses[:b])
    fps_measured = b / (time.perf_counter() - again)
  scale = scale or max(1, -(-256 // session.image_size[0]))
  frames = render_frames(session, images, target_poses, generated, layout, scale)
  paths = write_outputs(frames, out, fps)
  return {"paths": paths, "frames": t, "seconds": first_s + rest_s, "fps": fps_measured,
          "first_batch_s": first_s}


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.animate",
                                   description="Animate K source images along a pose sequence.")
  parser.add_argument("--workdir", default=None, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--pretrained", default=None, help=generate_tool.PRETRAINED_HELP)
  parser.add_argument("--config", default=None, help="config spec; default: <workdir>/config.json")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--out", required=True, help="output .mp4 (a .gif is written beside it) or .gif")
  parser.add_argument("--test_tuple", type=int, default=None, help="index of a fixed test tuple")
  parser.add_argument("--num_sources", type=int, default=2, help="K of --test_tuple")
  parser.add_argument("--test_sources", default=None, help="comma-separated test record names")
  parser.add_argument("--sources", default=None, help="comma-separated own photos (with --keypoints)")
  parser.add_argument("--keypoints", default=None, help="annotation CSV or keypoint JSON of --sources")
  parser.add_argument("--fit", default="pad", choices=("pad", "stretch"), help="other aspect ratios")
  parser.add_argument("--sequence", default=None, help="walk | turn | orbit | FILE.csv | VIDEO")
  parser.add_argument("--base", default=None, help="test record whose pose the built-in sequence starts from")
  parser.add_argument("--pose_size", default=None, help="H,W of the frame of a CSV sequence's keypoints")
  parser.add_argument("--keypoints_python", default=None, help="python of the keypoints environment")
  parser.add_argument("--num_frames", type=int, default=None, help="frames (default: the sequence's)")
  parser.add_argument("--fps", type=float, default=8.0, help="frames per second of the video")
  parser.add_argument("--batch_size", type=int, default=8, help="frames generated per device batch")
  parser.add_argument("--layout", default="panel", choices=("panel", "generated"))
  parser.add_argument("--scale", type=int, default=None, help="integer upscaling of each frame")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out (and its .gif)")
  args = parser.parse_args(argv)
  if args.num_sources < 1:
    raise UsageError(f"--num_sources must be >= 1 (K sources of --test_tuple), got {args.num_sources}.")
  if args.batch_size < 1 or args.fps <= 0 or (args.num_frames is not None and args.num_frames < 1):
    raise UsageError("--batch_size and --num_frames must be >= 1 and --fps > 0.")
  if not args.out.lower().endswith((".mp4", ".gif", ".mov", ".mkv", ".webm")):
    raise UsageError(f"--out must name a video (.mp4) or a .gif, got {args.out!r}.")
  if not args.overwrite:
    for path in {args.out, os.path.splitext(args.out)[0] + ".gif"}:
      errors.check_output_free(path)
  config, release = generate_tool.load_model_config(args)
  session = session_lib.ModelSession(args.workdir, config, args.step, batch_size=args.batch_size,
                                     release=release)
  images, source_poses, base, names = load_sources(session, args)
  targets = pose_sequence(session, args, base)
  print(f"Sources ({len(images)}): {', '.join(names)}; {len(targets)} target poses; "
        f"{session.description}.", flush=True)
  result = animate(session, images, source_poses, targets, args.out, args.fps, args.layout, args.scale)
  print(f"Generated {result['frames']} frames in {result['seconds']:.2f} s: {result['fps']:.1f} frames/s "
        f"after the first batch (compilation + first batch: {result['first_batch_s']:.2f} s).")
  print("Wrote " + " and ".join(result["paths"]) + ".")
  return 0


if __name__ == "__main__":
  sys.exit(main())
