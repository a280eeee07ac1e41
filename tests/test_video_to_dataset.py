"""tools.video_to_dataset: cropping, tracker glue, the Market-1501 writer, the pipeline on a tiny video.

The fast tests run in the main environment: the numpy parts (`rfgen_jax.tools.video_tracking`) and the
pipeline (`video_to_dataset.build_dataset`) on a video of moving figures made here, with stand-in
detector / tracker / pose callables. The parts that need OpenCV, supervision and mediapipe
(HOG, ByteTrack, BlazePose, the CLI) run in the keypoints environment through a subprocess when it
exists (`RFGEN_KEYPOINTS_PYTHON`, `~/.venvs/rfgen-keypoints`, `.venv-keypoints`) and are skipped with the
reason otherwise. The slow test builds a set from the first 60 frames of OpenCV's `vtest.avi`.
"""
from __future__ import annotations

import collections
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from rfgen_jax.data import annotations
from rfgen_jax.data.datasets import market
from rfgen_jax.tools import video_to_dataset as v2d
from rfgen_jax.tools import video_tracking as vt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


# ------------------------------------------------------------------------------------------ helpers
def keypoints_python() -> str | None:
  candidates = [os.environ.get("RFGEN_KEYPOINTS_PYTHON", ""),
                os.path.expanduser("~/.venvs/rfgen-keypoints/bin/python"),
                os.path.join(ROOT, ".venv-keypoints", "bin", "python"),
                "/work/venvs/keypoints/bin/python"]
  for python in candidates:
    if python and os.path.isfile(python):
      ok = subprocess.run([python, "-c", "import cv2, mediapipe, supervision; supervision.ByteTrack"],
                          capture_output=True, check=False)
      if ok.returncode == 0:
        return python
  return None


def need_keypoints_env() -> str:
  python = keypoints_python()
  if python is None:
    pytest.skip("no keypoints environment with cv2, mediapipe and supervision.ByteTrack (create it as "
                "requirements-keypoints.txt says, or set RFGEN_KEYPOINTS_PYTHON)")
  return python


def run_in_keypoints_env(python: str, *args: str, code: str | None = None, timeout: int = 600):
  cmd = [python, "-c", code] if code is not None else [python, "-m", *args]
  env = dict(os.environ, PYTHONPATH=ROOT, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout,
                        check=False)


# Three figures walking across a grey 96x160 frame, each a coloured 40x16 rectangle.
FIGURES = [((255, 0, 0), (10, 5), (0, 3)), ((0, 200, 0), (40, 20), (0, 2)), ((0, 0, 255), (50, 130), (0, -3))]


def tiny_video(num_frames: int = 12, height: int = 96, width: int = 160) -> np.ndarray:
  frames = np.full((num_frames, height, width, 3), 128, np.uint8)
  for t in range(num_frames):
    for colour, (y, x), (vy, vx) in FIGURES:
      y0, x0 = y + vy * t, x + vx * t
      frames[t, max(y0, 0):y0 + 40, max(x0, 0):x0 + 16] = colour
  return frames


def colour_detector(rgb: np.ndarray):
  """Boxes of the saturated figures: one box per pure colour channel present."""
  boxes, scores = [], []
  for c in range(3):
    mask = (rgb[..., c] > 150) & (rgb.max(axis=-1) - rgb.min(axis=-1) > 100) & (rgb.argmax(axis=-1) == c)
    if mask.sum() > 20:
      ys, xs = np.nonzero(mask)
      boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
      scores.append(0.9)
  return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores)


def iou(a, b):
  x0, y0 = np.maximum(a[:2], b[:2])
  x1, y1 = np.minimum(a[2:], b[2:])
  inter = max(0, x1 - x0) * max(0, y1 - y0)
  area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
  return inter / (area(a) + area(b) - inter)


class GreedyIouTracker:
  """A stand-in tracker: each box takes the id of the last box it overlaps most (IoU > 0.3)."""

  def __init__(self):
    self.last: dict[int, np.ndarray] = {}
    self.next_id = 7

  def __call__(self, boxes, scores):
    del scores
    ids = []
    for box in boxes:
      best = max(self.last.items(), key=lambda kv: iou(kv[1], box), default=None)
      if best is not None and iou(best[1], box) > 0.3 and best[0] not in ids:
        ids.append(best[0])
      else:
        ids.append(self.next_id)
        self.next_id += 1
    self.last = {i: b for i, b in zip(ids, boxes)}
    return boxes, np.asarray(ids)


def body_pose(crop: np.ndarray):
  """Stand-in pose: joints on the figure in the crop (its saturated pixels); None without one;
  the blue figure never shows its hips."""
  sat = crop.max(axis=-1).astype(int) - crop.min(axis=-1)
  ys, xs = np.nonzero(sat > 100)
  if len(ys) < 10:
    return None
  y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
  kp = np.full((18, 2), -1.0, np.float32)
  kp[[2, 5], 0] = y0 + 0.25 * (y1 - y0)
  kp[[8, 11], 0] = y0 + 0.6 * (y1 - y0)
  kp[[2, 8], 1], kp[[5, 11], 1] = x0 + 0.25 * (x1 - x0), x0 + 0.75 * (x1 - x0)
  if crop[ys, xs].mean(axis=0).argmax() == 2:
    kp[[8, 11]] = -1
  return kp


def frame_source(frames):
  return lambda: iter(enumerate(frames))


# ------------------------------------------------------------------------------------------ cropping
def test_crop_window_has_the_aspect_and_holds_the_box_with_its_margin():
  for box, aspect, margin in [((10, 20, 30, 60), 2.0, 0.1), ((0, 0, 50, 40), 2.0, 0.0), ((5, 5, 9, 50), 1.5, 0.2)]:
    x0, y0, x1, y1 = vt.crop_window(box, aspect, margin)
    assert (y1 - y0) / (x1 - x0) == pytest.approx(aspect)
    pad = margin * (box[3] - box[1])
    assert x0 <= box[0] - pad + 1e-9 and x1 >= box[2] + pad - 1e-9
    assert y0 <= box[1] - pad + 1e-9 and y1 >= box[3] + pad - 1e-9
    assert (x0 + x1) / 2 == pytest.approx((box[0] + box[2]) / 2)
  # A tall box is limited by its height (+ margins), a wide one by its width.
  assert vt.crop_window((0, 0, 10, 100), 2.0, 0.1)[3] - vt.crop_window((0, 0, 10, 100), 2.0, 0.1)[1] \
      == pytest.approx(120)
  with pytest.raises(ValueError, match="Empty box"):
    vt.crop_window((5, 5, 5, 9), 2.0, 0.0)


@pytest.mark.parametrize("window", [(10.3, 5.7, 42.9, 70.1), (-20.0, -8.0, 30.0, 92.0), (100.0, 40.0, 180.0, 200.0)])
def test_extract_crop_matches_torch_grid_sample_with_zero_padding(window):
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
  size = (32, 16)
  ours = vt.extract_crop(frame, window, size).astype(np.float64)
  fh, fw = frame.shape[:2]
  x0, y0, x1, y1 = window
  xs = x0 + (np.arange(size[1]) + 0.5) * (x1 - x0) / size[1] - 0.5
  ys = y0 + (np.arange(size[0]) + 0.5) * (y1 - y0) / size[0] - 0.5
  gx = (2 * xs + 1) / fw - 1
  gy = (2 * ys + 1) / fh - 1
  grid = np.stack(np.broadcast_arrays(gx[None, :], gy[:, None]), axis=-1)[None]
  ref = torch.nn.functional.grid_sample(
      torch.tensor(frame, dtype=torch.float64).permute(2, 0, 1)[None], torch.tensor(grid),
      mode="bilinear", padding_mode="zeros", align_corners=False)[0].permute(1, 2, 0).numpy()
  assert np.abs(ours - np.clip(np.round(ref), 0, 255)).max() <= 1


def test_rescale_keypoints_maps_pixel_centres_and_keeps_missing():
  kp = np.array([[0, 0], [255, 127], [-1, -1], [100.5, 50]], np.float32)
  out = vt.rescale_keypoints(kp, (256, 128), (128, 64))
  np.testing.assert_allclose(out[[1, 3]], [[127, 63], [50, 24.75]])
  np.testing.assert_array_equal(out[2], [-1, -1])
  assert out[0].min() >= 0
  np.testing.assert_allclose(vt.rescale_keypoints(out[[3]], (128, 64), (256, 128)), kp[[3]], atol=1e-4)


# ------------------------------------------------------------------------------------------ tracks
def test_run_tracker_collects_tracks_and_calls_the_tracker_on_empty_frames():
  calls = []

  def tracker(boxes, scores):
    calls.append(len(boxes))
    return boxes, np.arange(len(boxes)) + 1

  detections = [(0, np.array([[0, 0, 10, 20], [5, 5, 15, 25]]), np.array([0.9, 0.8])),
                (2, np.zeros((0, 4)), np.zeros(0)),
                (4, np.array([[1, 0, 11, 20]]), np.array([0.7]))]
  tracks = vt.run_tracker(detections, tracker)
  assert calls == [2, 0, 1]
  assert [p.frame for p in tracks[1]] == [0, 4] and [p.frame for p in tracks[2]] == [0]
  np.testing.assert_array_equal(tracks[1][1].box, [1, 0, 11, 20])
  with pytest.raises(ValueError, match="2 boxes but 1 ids"):
    vt.update_tracks({}, 0, np.zeros((2, 4)), np.zeros(1))


def test_select_crops_drops_short_static_and_small_and_thins_the_rest():
  def walk(n, dx, h=60.0, x=0.0):
    return [vt.TrackPoint(t, np.array([x + dx * t, 0, x + dx * t + h / 2, h])) for t in range(n)]

  tracks = {3: walk(10, 8.0), 1: walk(3, 8.0), 2: walk(10, 0.0), 4: walk(10, 8.0, h=30.0)}
  counts = collections.Counter()
  kept = vt.select_crops(tracks, min_track_frames=5, crop_every=3, min_box_height=48, counts=counts,
                         min_motion=0.5)
  assert list(kept) == [3]
  assert [p.frame for p in kept[3]] == [0, 3, 6, 9]
  assert counts == {"tracks shorter than 5 frames": 1, "static tracks (moving < 0.5 box heights)": 1,
                    "boxes lower than 48 px": 4}
  assert vt.track_motion(walk(10, 8.0)) == pytest.approx(72 / 60)


# ------------------------------------------------------------------------------------------ layout
def make_crop(identity, camera, frame, seed):
  rng = np.random.default_rng(seed)
  kp = np.stack([rng.uniform(0, 127, 18), rng.uniform(0, 63, 18)], axis=-1).astype(np.float32)
  kp[16] = -1
  return vt.Crop(identity, camera, frame, rng.integers(0, 256, (128, 64, 3), dtype=np.uint8), kp)


def test_market_layout_is_read_back_by_the_data_readers(tmp_path):
  crops = [make_crop(i, 1 + i % 2, 10 * f + i, 100 * i + f) for i in range(1, 9) for f in range(3)]
  crops.append(make_crop(9, 1, 5, 999))     # an identity with one crop: not written
  summary = vt.write_market_layout(str(tmp_path), crops, test_fraction=0.25, seed=3)
  assert summary["dropped_lonely_crops"] == 1
  assert summary["train"] == {"identities": 6, "images": 18} and summary["test"] == {"identities": 2, "images": 6}
  ids = {}
  for split in ("train", "test"):
    records = annotations.load_split(str(tmp_path), market.LAYOUT, split)
    ids[split] = {r.identity for r in records}
    table = annotations.read_annotations(str(tmp_path / f"market-annotation-{split}.csv"))
    assert sorted(os.listdir(tmp_path / split)) == sorted(table)
    for r in records:
      crop = next(c for c in crops if c.name == r.name)
      assert r.identity == f"{crop.identity:04d}"
      np.testing.assert_array_equal(r.keypoints, np.where(crop.keypoints < 0, -1, np.round(crop.keypoints)))
      with Image.open(r.path) as im:
        assert im.size == (64, 128)
  assert not ids["train"] & ids["test"] and len(ids["train"] | ids["test"]) == 8
  assert vt.market_name(12, 3, 451) == "0012_c3s1_000451_00.jpg"
  with pytest.raises(ValueError, match="distractor"):
    vt.market_name(0, 1, 1)


def test_split_identities_is_seeded_and_never_leaves_a_split_empty():
  train, test = vt.split_identities(range(1, 21), 0.25, seed=0)
  assert len(test) == 5 and not train & test and train | test == set(range(1, 21))
  assert vt.split_identities(range(1, 21), 0.25, seed=0) == (train, test)
  assert vt.split_identities(range(1, 21), 0.25, seed=1) != (train, test)
  assert [len(s) for s in vt.split_identities([4, 7], 0.01, 0)] == [1, 1]


# ------------------------------------------------------------------------------------------ pipeline
def test_build_dataset_on_a_tiny_video(tmp_path, capsys):
  frames = tiny_video(12)
  options = v2d.Options(image_size=(64, 32), detect_scale=2.0, min_track_frames=4, crop_every=2,
                        min_box_height=20, test_fraction=0.5, seed=0, min_motion=0.5, min_torso=0.1)
  summary = v2d.build_dataset([("tiny.avi", frame_source(frames), len(frames))], colour_detector,
                              lambda i: GreedyIouTracker(), body_pose, str(tmp_path), options)
  video = summary["videos"][0]
  assert video["frames"] == 12 and video["tracks"] == 3 and video["tracks_cropped"] == 3
  # Red and green tracks: 6 crops each (every 2nd of 12 frames); blue never has hips.
  assert summary["dropped"] == {"crops missing a shoulder or hip": 6}
  assert summary["splits"] == {"train": {"identities": 1, "images": 6}, "test": {"identities": 1, "images": 6}}
  names = sorted(os.listdir(tmp_path / "train")) + sorted(os.listdir(tmp_path / "test"))
  assert {n.split("_")[0] for n in names} == {"0001", "0002"}
  assert all("_c1s1_" in n for n in names)
  assert sorted(int(n.split("_")[2]) for n in names if n.startswith("0001")) == [0, 2, 4, 6, 8, 10]
  # Each crop is centred on its figure, and its keypoints lie on it.
  for split in ("train", "test"):
    for r in annotations.load_split(str(tmp_path), market.LAYOUT, split):
      with Image.open(r.path) as im:
        crop = np.asarray(im)
      assert crop.shape == (64, 32, 3)
      sat = crop.max(axis=-1).astype(int) - crop.min(axis=-1)
      ys, xs = np.nonzero(sat > 100)
      assert abs(xs.mean() - 15.5) < 2 and abs(ys.mean() - 31.5) < 3
      for y, x in r.keypoints[[2, 5, 8, 11]]:
        assert sat[int(y), int(x)] > 100
  assert (tmp_path / "contact_sheet.png").exists() and (tmp_path / "summary.json").exists()
  assert summary["timing"]["frames"] == 12 and summary["timing"]["crops_to_keypoints"] == 18


def test_build_dataset_without_people_is_an_input_error(tmp_path):
  blank = np.full((6, 64, 64, 3), 128, np.uint8)
  with pytest.raises(v2d.InputError, match="No usable person found in empty.avi"):
    v2d.build_dataset([("empty.avi", frame_source(blank), 6)], colour_detector, lambda i: GreedyIouTracker(),
                      body_pose, str(tmp_path), v2d.Options())
  with pytest.raises(v2d.InputError, match="no frames"):
    v2d.build_dataset([("none.avi", frame_source(blank[:0]), 0)], colour_detector,
                      lambda i: GreedyIouTracker(), body_pose, str(tmp_path), v2d.Options())


def test_prepare_out_dir_refuses_an_existing_set(tmp_path):
  (tmp_path / "train").mkdir()
  with pytest.raises(v2d.InputError, match="--overwrite"):
    v2d.prepare_out_dir(str(tmp_path), overwrite=False)
  v2d.prepare_out_dir(str(tmp_path), overwrite=True)
  assert not (tmp_path / "train").exists()


# ------------------------------------------------------------------------------------------ keypoints env
def test_bytetrack_adapter_keeps_ids_of_walking_boxes():
  python = need_keypoints_env()
  code = """
import numpy as np
from rfgen_jax.tools import video_to_dataset as v2d, video_tracking as vt
tracker = v2d.ByteTrackAdapter(fps=10)
dets = []
for t in range(20):
  boxes = np.array([[10 + 3 * t, 10, 40 + 3 * t, 70], [200 - 3 * t, 20, 230 - 3 * t, 80]], float)
  if t == 9:
    boxes = boxes[:1]   # the second person is missed once
  dets.append((t, boxes, np.full(len(boxes), 0.9)))
tracks = vt.run_tracker(dets, tracker)
print(sorted((len(p), round(float(p[0].box[0]))) for p in tracks.values()))
"""
  result = run_in_keypoints_env(python, code=code)
  assert result.returncode == 0, result.stderr[-2000:]
  lengths = eval(result.stdout.strip().splitlines()[-1])  # pylint: disable=eval-used
  # Two tracks over all 20 frames (minus the first frames before activation and the missed one).
  assert len(lengths) == 2 and all(n >= 16 for n, _ in lengths), lengths


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path):
  python = need_keypoints_env()
  bad = tmp_path / "broken.avi"
  bad.write_bytes(b"not a video")
  result = run_in_keypoints_env(python, "rfgen_jax.tools.video_to_dataset", "--video", str(bad),
                                "--out", str(tmp_path / "out"))
  assert result.returncode == 2 and "Cannot read video" in result.stderr and "Traceback" not in result.stderr
  result = run_in_keypoints_env(python, "rfgen_jax.tools.video_to_dataset", "--video",
                                str(tmp_path / "missing.avi"), "--out", str(tmp_path / "out"))
  assert result.returncode == 2 and "Video not found" in result.stderr
  # A video of moving coloured rectangles: HOG finds no person in it.
  np.save(tmp_path / "tiny.npy", tiny_video(12))
  write = f"""
import cv2, numpy as np
w = cv2.VideoWriter({str(tmp_path / 'tiny.avi')!r}, cv2.VideoWriter_fourcc(*'MJPG'), 10, (160, 96))
for f in np.load({str(tmp_path / 'tiny.npy')!r}):
  w.write(np.ascontiguousarray(f[..., ::-1]))
w.release()
"""
  made = run_in_keypoints_env(python, code=write)
  assert made.returncode == 0, made.stderr[-2000:]
  result = run_in_keypoints_env(python, "rfgen_jax.tools.video_to_dataset", "--video",
                                str(tmp_path / "tiny.avi"), "--out", str(tmp_path / "out"))
  assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
  assert "No usable person found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_builds_a_set_from_the_start_of_vtest(tmp_path):
  python = need_keypoints_env()
  if not os.path.isfile(VTEST):
    install = subprocess.run(["apt-get", "install", "-y", "-q", "opencv-doc"], capture_output=True,
                             text=True, check=False)
    if not os.path.isfile(VTEST):
      pytest.skip(f"{VTEST} absent and `apt-get install opencv-doc` failed: {install.stderr[-300:]}")
  out = tmp_path / "vtest"
  result = run_in_keypoints_env(python, "rfgen_jax.tools.video_to_dataset", "--video", VTEST, "--out",
                                str(out), "--max_frames", "40", "--min_track_frames", "6", timeout=1200)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "ETA" in result.stdout and "Dropped:" in result.stdout
  total = 0
  for split in ("train", "test"):
    records = annotations.load_split(str(out), market.LAYOUT, split)
    total += len(records)
    for r in records:
      assert "_c1s1_" in r.name and 0 <= int(r.name.split("_")[2]) < 40
      kp = r.keypoints
      present = (kp >= 0).all(axis=-1)
      assert present[[2, 5, 8, 11]].all()
      assert (kp[present, 0] <= 127).all() and (kp[present, 1] <= 63).all()
      # Shoulders above hips: an upright person.
      assert kp[[2, 5], 0].mean() < kp[[8, 11], 0].mean()
  assert total >= 20
  assert (out / "contact_sheet.png").exists()


# ------------------------------------------------------------------------------------------ config
def test_vtest_config_loads_validates_and_keeps_the_common_keys():
  from configs import common  # pylint: disable=import-outside-toplevel
  from rfgen_jax import config_utils  # pylint: disable=import-outside-toplevel

  def keys(node, prefix=""):
    out = set()
    for key, value in node.items():
      out |= keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
    return out

  for spec in ("configs/vtest.py", "configs/vtest.py:steps=30"):
    config = config_utils.load_config(os.path.join(ROOT, spec))
    config_utils.validate_config(config, num_devices=1)
    assert keys(config) == keys(common.get_base_config())
    assert config.data.name == "market" and tuple(config.data.image_size) == (64, 32)
  assert config.train.total_steps == 30 and config.train.flow_warmup_steps == 3
