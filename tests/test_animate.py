"""Pose sequences (rfgen_jax.tools.pose_sequences) and the animation tool (rfgen_jax.tools.animate)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import animate
from rfgen_jax.tools import pose_sequences as seq
from rfgen_jax.tools import session as session_lib

from app_fixtures import make_run


def _person(h=128.0, w=64.0) -> np.ndarray:
  """A frontal upright skeleton, (18, 2) (y, x)."""
  rel = np.array([
      [0.10, 0.50], [0.20, 0.50], [0.20, 0.35], [0.35, 0.30], [0.48, 0.28], [0.20, 0.65], [0.35, 0.70],
      [0.48, 0.72], [0.52, 0.40], [0.72, 0.40], [0.92, 0.40], [0.52, 0.60], [0.72, 0.60], [0.92, 0.60],
      [0.08, 0.45], [0.08, 0.55], [0.09, 0.40], [0.09, 0.60]])
  return (rel * [h, w]).astype(np.float32)


LIMBS = [(seq.R_HIP, seq.R_KNEE), (seq.R_KNEE, seq.R_ANKLE), (seq.L_HIP, seq.L_KNEE), (seq.L_KNEE, seq.L_ANKLE),
         (seq.R_SHOULDER, seq.R_ELBOW), (seq.R_ELBOW, seq.R_WRIST), (seq.L_SHOULDER, seq.L_ELBOW),
         (seq.L_ELBOW, seq.L_WRIST)]


def test_walk_cycle_keeps_limb_lengths_and_alternates():
  base = _person()
  frames = seq.walk_cycle(base, 16)
  assert frames.shape == (16, 18, 2)
  for a, b in LIMBS:
    np.testing.assert_allclose(np.linalg.norm(frames[:, a] - frames[:, b], axis=-1),
                               np.linalg.norm(base[a] - base[b]), rtol=1e-4)
  # Torso and head do not move; the legs swing in opposite phase (quarter cycle: most apart).
  fixed = [seq.NOSE, seq.NECK, seq.R_SHOULDER, seq.L_SHOULDER, seq.R_HIP, seq.L_HIP]
  np.testing.assert_allclose(frames[:, fixed], np.broadcast_to(base[fixed], (16, 6, 2)), atol=1e-4)
  r = frames[4, seq.R_KNEE, 1] - base[seq.R_KNEE, 1]
  l = frames[4, seq.L_KNEE, 1] - base[seq.L_KNEE, 1]
  assert r * l < 0 and abs(r) > 1
  # A whole cycle: frame 16 would equal frame 0 (the sequence is periodic).
  np.testing.assert_allclose(seq.walk_cycle(base, 16)[0], seq.walk_cycle(base, 8)[0], atol=1e-5)


def test_walk_keeps_missing_joints_missing():
  base = _person()
  base[seq.L_WRIST] = -1
  frames = seq.walk_cycle(base, 4)
  assert (frames[:, seq.L_WRIST] == -1).all()


def test_turn_around_front_side_back():
  base = _person()
  frames = seq.turn_around(base, 4)        # 0, 90, 180, 270 degrees
  np.testing.assert_allclose(frames[0], base, atol=1e-4)
  centre = base[[2, 5, 8, 11], 1].mean()
  # Back view: x mirrored about the centre line, y unchanged; nose and eyes hidden, ears seen.
  back = frames[2]
  body = [j for j in range(18) if j not in seq.FACE]
  np.testing.assert_allclose(back[body, 1] - centre, -(base[body, 1] - centre), atol=1e-3)
  np.testing.assert_allclose(back[body, 0], base[body, 0])
  assert (back[list(seq.FACE_FRONT)] == -1).all()
  assert (back[[seq.R_EAR, seq.L_EAR]] >= 0).all()
  # Side views: shoulders collapse onto the centre line, one ear hidden.
  np.testing.assert_allclose(frames[1, [seq.R_SHOULDER, seq.L_SHOULDER], 1], centre, atol=1e-3)
  assert ((frames[1, [seq.R_EAR, seq.L_EAR]] == -1).all(axis=-1)).sum() == 1


def test_orbit():
  poses = seq.orbit(np.array([34, 10]), None, 36)
  assert poses.shape == (36, 2)
  np.testing.assert_array_equal(poses[:3], [[34, 10], [35, 10], [0, 10]])
  np.testing.assert_array_equal(seq.orbit(np.array([0, 0]), 4, 36)[:, 0], [0, 9, 18, 27])
  with pytest.raises(ValueError, match="view pose"):
    seq.orbit(np.zeros(6), 4)


def test_read_pose_csv_in_file_order(tmp_path):
  path = tmp_path / "p.csv"
  a, b = _person(), _person() + 1
  rows = [f"{n}:{json.dumps(k[:, 0].tolist())}:{json.dumps(k[:, 1].tolist())}" for n, k in (("z", a), ("a", b))]
  path.write_text("name:keypoints_y:keypoints_x\n" + "\n".join(rows) + "\n")
  names, kps = seq.read_pose_csv(str(path))
  assert names == ["z", "a"]
  np.testing.assert_allclose(kps, np.stack([a, b]), atol=1e-4)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("animate_run"))
  make_run(workdir, "synthetic")
  return workdir


def _gif_frames(path):
  frames = []
  with Image.open(path) as im:
    for i in range(im.n_frames):
      im.seek(i)
      frames.append(np.asarray(im.convert("RGB")))
  return np.stack(frames)


def test_animate_walk_matches_the_model(run, tmp_path, capsys):
  out = str(tmp_path / "walk.gif")
  code = animate.main(["--workdir", run, "--test_tuple", "0", "--num_sources", "2", "--sequence", "walk",
                       "--num_frames", "5", "--batch_size", "2", "--layout", "generated", "--scale", "2",
                       "--out", out])
  assert code == 0
  printed = capsys.readouterr().out
  assert "frames/s" in printed
  frames = _gif_frames(out)
  assert frames.shape == (5, 64, 64, 3)
  # Oracle: the generator applied directly, one target pose at a time.
  session = session_lib.ModelSession(run)
  names, target = session.test_tuple(0, 2)
  examples = [session.test_example(n) for n in names]
  poses = seq.walk_cycle(session.test_example(target)[1], 5)
  for t in (0, 4):
    batch = {"source_images": (np.stack([e[0] for e in examples]).astype(np.float32) / 127.5 - 1)[None],
             "source_poses": np.stack([session.encode_pose(e[1]) for e in examples])[None],
             "target_pose": session.encode_pose(poses[t])[None]}
    expected = visualize.to_uint8(inference.generate(session.generator, session.params, batch)[0])
    # GIF frames are palette-quantised: compare loosely, and check the frames differ from each other.
    assert np.abs(frames[t, ::2, ::2].astype(int) - expected.astype(int)).mean() < 8
  assert not np.array_equal(frames[0], frames[4])


def test_session_run_batches_equal_single(run):
  session = session_lib.ModelSession(run, batch_size=2)
  names, target = session.test_tuple(0, 2)
  examples = [session.test_example(n) for n in names]
  poses = seq.turn_around(session.test_example(target)[1], 3)
  images, src = [e[0] for e in examples], [e[1] for e in examples]
  batched = session.run(images, src, list(poses))
  assert batched["image"].shape == (3, 32, 32, 3)
  for t in range(3):
    single = session.run(images, src, [poses[t]])
    # float32 rounding differs between batch sizes (XLA picks other conv loops): measured up to 1.9e-5
    # on [-1, 1] images; an 8-bit level is 7.8e-3.
    np.testing.assert_allclose(batched["image"][t], single["image"][0], atol=1e-4)
    np.testing.assert_allclose(batched["attention"][-1][t].sum(axis=0), 1.0, atol=1e-5)


def test_animate_mp4_and_panel(run, tmp_path):
  pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg (requirements-app.txt)")
  import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel
  out = str(tmp_path / "turn.mp4")
  assert animate.main(["--workdir", run, "--test_tuple", "1", "--num_sources", "1", "--sequence", "turn",
                       "--num_frames", "3", "--out", out]) == 0
  video = imageio.mimread(out)
  assert len(video) == 3 and os.path.isfile(str(tmp_path / "turn.gif"))
  # Panel: skeleton | generated at >= 256 pixels high (32 -> x8), 2-pixel separator.
  assert np.asarray(video[0]).shape[:2] == (256, 2 * 256 + 2)


def test_animate_csv_sequence(run, tmp_path):
  session = session_lib.ModelSession(run)
  _, target = session.test_tuple(0, 2)
  kp = session.test_example(target)[1] * 2 + 0.5     # in a 64x64 frame (pixel centres kept)
  path = tmp_path / "poses.csv"
  kp2 = kp.copy()
  kp2[4] += (8, 6)          # another frame: the right wrist moved (GIF merges identical frames)
  path.write_text("".join(f"f{i}:{json.dumps(k[:, 0].tolist())}:{json.dumps(k[:, 1].tolist())}\n"
                          for i, k in enumerate((kp, kp2))))
  out = str(tmp_path / "csv.gif")
  assert animate.main(["--workdir", run, "--test_tuple", "0", "--sequence", str(path), "--pose_size", "64,64",
                       "--layout", "generated", "--scale", "1", "--out", out]) == 0
  assert _gif_frames(out).shape == (2, 32, 32, 3)


@pytest.mark.parametrize("argv, message", [
    (["--sequence", "orbit", "--test_tuple", "0"], "orbit is for view-pose models"),
    (["--test_tuple", "0", "--num_sources", "0"], "--num_sources must be >= 1"),
    (["--sequence", "jump", "--test_tuple", "0"], "expected walk, turn, orbit"),
    (["--test_sources", "nope.png"], "No test record named 'nope.png'"),
    ([], "exactly one of --test_tuple"),
    (["--test_tuple", "0", "--sequence", "clip.mp4", "--keypoints_python", ""], "keypoints environment"),
])
def test_animate_user_errors(run, tmp_path, capsys, argv, message, monkeypatch):
  monkeypatch.setenv("RFGEN_KEYPOINTS_PYTHON", "/nonexistent/python")
  monkeypatch.setenv("HOME", str(tmp_path))
  code = animate.main(["--workdir", run, "--out", str(tmp_path / "x.gif")] + argv)
  err = capsys.readouterr().err
  assert code == 2 and message in err and "Traceback" not in err


def test_animate_no_checkpoint(tmp_path, capsys):
  (tmp_path / "config.json").write_text(json.dumps({}))
  code = animate.main(["--workdir", str(tmp_path), "--config", os.path.join(
      os.path.dirname(os.path.dirname(__file__)), "configs", "synthetic.py") + ":tiny",
      "--test_tuple", "0", "--out", str(tmp_path / "x.gif")])
  assert code == 2 and "No checkpoint" in capsys.readouterr().err
