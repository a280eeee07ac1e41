"""Generation from one's own photos: checkpoint restore, input preparation, the CLI, keypoint detection.

The checkpoint is written in the test with the trainer's own `Checkpointer`, holding a TrainState of
the shapes `rfgen_jax.runtime.state.init_state` gives for `configs/synthetic.py:tiny` (its structure from
`jax.eval_shape(init_state)`, filled with seeded random numbers: compiling the real init costs ~40 s on
a 2-core CPU; `test_real_init_state_checkpoint` does that, marked slow).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import models
from rfgen_jax.config_utils import load_config
from rfgen_jax.data import annotations
from rfgen_jax.tools import generate
from rfgen_jax.tools import pose_keypoints
from rfgen_jax.runtime import checkpointing
from rfgen_jax.runtime import state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "synthetic.py") + ":tiny"


def tiny_config():
  config = load_config(TINY)
  config.checkpoint.async_save = False
  return config


def random_state(config, seed: int = 0):
  """A TrainState with init_state's structure and shapes, filled with seeded random numbers."""
  abstract = state_lib.abstract_state(config, models.build_generator(config),
                                      models.build_discriminator(config))
  rng = np.random.default_rng(seed)

  def fill(a):
    if np.issubdtype(a.dtype, np.floating):
      return jax.numpy.asarray((0.2 * rng.standard_normal(a.shape)).astype(a.dtype))
    return jax.numpy.zeros(a.shape, a.dtype)

  return jax.tree.map(fill, abstract)


def write_checkpoint(workdir: str, config, step: int = 4, seed: int = 0):
  """Saves a TrainState at `step` with the trainer's Checkpointer; returns the state."""
  state = random_state(config, seed)
  checkpointer = checkpointing.Checkpointer(workdir, config)
  checkpointer.save(step, state, None, config)
  checkpointer.close()
  return state


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """(workdir, config, saved state) of a tiny run with one checkpoint."""
  workdir = str(tmp_path_factory.mktemp("run"))
  config = tiny_config()
  state = write_checkpoint(workdir, config)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  return workdir, config, state


def _person_keypoints(h: int, w: int) -> np.ndarray:
  """A plausible upright skeleton in an (h, w) frame, (18, 2) (y, x)."""
  rel = np.array([
      [0.10, 0.50], [0.20, 0.50], [0.20, 0.35], [0.35, 0.30], [0.48, 0.28], [0.20, 0.65], [0.35, 0.70],
      [0.48, 0.72], [0.52, 0.40], [0.72, 0.40], [0.92, 0.40], [0.52, 0.60], [0.72, 0.60], [0.92, 0.60],
      [0.08, 0.45], [0.08, 0.55], [0.09, 0.40], [0.09, 0.60]], np.float32)
  return np.round(rel * np.array([h - 1, w - 1], np.float32))


def _write_inputs(folder, sizes=((48, 24), (40, 40))):
  """Writes source images of the given sizes and a keypoint JSON; returns (paths, json path)."""
  rng = np.random.default_rng(1)
  paths, entries = [], {}
  for i, (h, w) in enumerate(sizes):
    path = os.path.join(folder, f"src{i}.png")
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    kp = _person_keypoints(h, w)
    kp[16] = -1      # a missing ear
    paths.append(path)
    entries[f"src{i}.png"] = {"keypoints_y": kp[:, 0].tolist(), "keypoints_x": kp[:, 1].tolist()}
  kp_path = os.path.join(folder, "kp.json")
  with open(kp_path, "w") as f:
    json.dump(entries, f)
  return paths, kp_path


# ------------------------------------------------------------------------------------ restore
@pytest.mark.parametrize("use_ema, field", [(None, "ema_params"), (True, "ema_params"),
                                             (False, "gen_params")])
def test_load_generator_restores_the_saved_params(run_dir, use_ema, field):
  """The EMA parameters by default (eval.use_ema), the raw ones on request."""
  workdir, config, state = run_dir
  generator, params = inference.load_generator(config, workdir, use_ema=use_ema)
  assert isinstance(generator, models.Generator)
  saved = jax.tree.leaves(getattr(state, field))
  restored = jax.tree.leaves(params)
  assert jax.tree.structure(params) == jax.tree.structure(state.gen_params)
  assert all(np.array_equal(a, b) for a, b in zip(saved, restored))


def test_load_generator_without_checkpoint(tmp_path):
  with pytest.raises(inference.NoCheckpointError, match="train first"):
    inference.load_generator(tiny_config(), str(tmp_path))
  os.makedirs(tmp_path / "checkpoints")
  with pytest.raises(inference.NoCheckpointError, match="train first"):
    inference.load_generator(tiny_config(), str(tmp_path))


def test_load_generator_unknown_step(run_dir):
  workdir, config, _ = run_dir
  with pytest.raises(inference.NoCheckpointError, match=r"step 99.*available steps: \[4\]"):
    inference.load_generator(config, workdir, step=99)


def test_load_generator_refuses_checkpoint_of_another_config(run_dir):
  workdir, _, _ = run_dir
  other = tiny_config()
  other.model.width = 0.25
  other.model.attention = False
  with pytest.raises(checkpointing.IncompatibleCheckpointError) as info:
    inference.load_generator(other, workdir)
  message = str(info.value)
  assert "model.width" in message and "model.attention" in message
  assert "data.image_size" not in message


# ------------------------------------------------------------------------------------ inputs
def test_prepare_inputs_shapes_and_pad():
  config = tiny_config()
  h, w = config.data.image_size                                    # (32, 32)
  tall = np.full((64, 32, 3), 200, np.uint8)                        # 2:1 -> padded to 64x64
  kp = np.full((18, 2), -1.0, np.float32)
  kp[0] = (10, 5)
  inputs = inference.prepare_inputs(config, [tall, tall[:40]], [kp, kp], kp, target_size=(64, 32))
  assert inputs["source_images"].shape == (1, 2, h, w, 3)
  assert inputs["source_poses"].shape == (1, 2, h, w, 18)
  assert inputs["target_pose"].shape == (1, h, w, 18)
  assert inputs["source_images"].dtype == np.float32
  assert -1.0 <= inputs["source_images"].min() and inputs["source_images"].max() <= 1.0
  # Pad 64x32 -> 64x64 (16 columns each side), then scale by 1/2 with pixel centres kept.
  expected = np.array([(10 + 0.5) / 2 - 0.5, (5 + 16 + 0.5) / 2 - 0.5], np.float32)
  np.testing.assert_allclose(inputs["source_keypoints"][0, 0, 0], expected)
  np.testing.assert_allclose(inputs["target_keypoints"][0, 0], expected)
  assert (inputs["source_keypoints"][0, :, 1:] == -1).all()
  assert inputs["source_poses"][0, 0, :, :, 1:].max() == 0.0        # missing joints: empty channels
  peak = np.unravel_index(np.argmax(inputs["target_pose"][0, :, :, 0]), (h, w))
  assert np.abs(np.array(peak) - expected).max() <= 0.5
  # The padded columns hold the border colour, not black.
  assert np.allclose(inputs["source_images"][0, 0, :, 0], 200 / 127.5 - 1, atol=1e-5)
  stretched = inference.prepare_inputs(config, [tall], [kp], kp, fit="stretch")
  np.testing.assert_allclose(stretched["source_keypoints"][0, 0, 0], [(10 + 0.5) / 2 - 0.5, 5])


def test_prepare_inputs_errors():
  config = tiny_config()
  image = np.zeros((32, 32, 3), np.uint8)
  kp = np.zeros((18, 2), np.float32)
  with pytest.raises(ValueError, match="K = 0"):
    inference.prepare_inputs(config, [], [], kp)
  with pytest.raises(ValueError, match=r"me\.jpg: expected 18 joints.*got 17"):
    inference.prepare_inputs(config, [image], [kp[:17]], kp, names=["me.jpg"])
  with pytest.raises(ValueError, match="target pose: expected 18 joints.*got 25"):
    inference.prepare_inputs(config, [image], [kp], np.zeros((25, 2)))
  with pytest.raises(ValueError, match="2 source images but 1 keypoint"):
    inference.prepare_inputs(config, [image, image], [kp], kp)
  with pytest.raises(ValueError, match="too small"):
    inference.prepare_inputs(config, [image[:1]], [kp], kp)


# ------------------------------------------------------------------------------------ the command
def test_generate_command_writes_image_and_grid(run_dir, tmp_path, capsys):
  workdir, config, _ = run_dir
  sources, kp_json = _write_inputs(str(tmp_path))
  target = _person_keypoints(64, 32)
  target_path = tmp_path / "target.json"
  target_path.write_text(json.dumps({"keypoints_y": target[:, 0].tolist(),
                                     "keypoints_x": target[:, 1].tolist(), "image_size": [64, 32]}))
  out = tmp_path / "out" / "gen.png"
  rc = generate.main([f"--workdir={workdir}", "--sources", ",".join(sources), "--keypoints", kp_json,
                      "--target_pose", str(target_path), "--out", str(out)])
  assert rc == 0, capsys.readouterr().err
  image = np.asarray(Image.open(out))
  assert image.shape == (*config.data.image_size, 3)
  grid = np.asarray(Image.open(tmp_path / "out" / "gen_grid.png"))
  assert grid.shape[0] >= 256 and grid.shape[1] > 4 * grid.shape[0]   # K + 2 = 4 cells and separators
  assert "from its image_size entry" in capsys.readouterr().out

  # The same with the annotation CSV and a target named in it; the generated image is deterministic.
  csv = tmp_path / "annotations.csv"
  pose_keypoints.write_annotation_csv(
      str(csv), [(os.path.basename(p), kp) for p, kp in
                 zip(sources + ["target.png"], [_keypoints_of(kp_json, s) for s in sources] + [target])])
  out2 = tmp_path / "gen2.png"
  rc = generate.main([f"--workdir={workdir}", f"--config={TINY}", "--sources", ",".join(sources),
                      "--keypoints", str(csv), "--target_pose", "target.png", "--target_size", "64,32",
                      "--out", str(out2)])
  assert rc == 0, capsys.readouterr().err
  # Bit-exact on any host: the same inputs (the keypoints read back from the CSV equal the JSON's) through
  # the same jitted generator at the same shapes in this process, so one program runs twice.
  np.testing.assert_array_equal(np.asarray(Image.open(out2)), image)


def _keypoints_of(kp_json, source):
  entry = json.load(open(kp_json))[os.path.basename(source)]
  return np.stack([entry["keypoints_y"], entry["keypoints_x"]], -1).astype(np.float32)


def test_generate_command_errors(run_dir, tmp_path, capsys):
  workdir, _, _ = run_dir
  sources, kp_json = _write_inputs(str(tmp_path))
  base = [f"--workdir={workdir}", "--keypoints", kp_json, "--out", str(tmp_path / "o.png")]

  def error(*args):
    assert generate.main(base + list(args)) == 2
    return capsys.readouterr().err

  # Wrong joint count in the JSON, naming the file and the entry.
  bad = json.load(open(kp_json))
  bad["src1.png"]["keypoints_x"] = bad["src1.png"]["keypoints_x"][:17]
  bad_path = tmp_path / "bad.json"
  bad_path.write_text(json.dumps(bad))
  err = generate.main([f"--workdir={workdir}", "--keypoints", str(bad_path), "--out",
                       str(tmp_path / "o.png"), "--sources", ",".join(sources), "--target_pose", "src0.png"])
  assert err == 2
  message = capsys.readouterr().err
  assert "bad.json" in message and "'src1.png'" in message and "got 17" in message
  # ... and in a CSV, naming the file, the line and the entry.
  csv = tmp_path / "bad.csv"
  csv.write_text('name:keypoints_y:keypoints_x\nsrc0.png:[1, 2]:[1, 2]\n')
  with pytest.raises(ValueError, match=r"bad\.csv, line 2.*got 2.*'src0\.png'"):
    generate.read_keypoints_file(str(csv))
  assert "K = 0" in error("--sources", "", "--target_pose", "src0.png")
  assert "Source image not found" in error("--sources", "nope.png", "--target_pose", "src0.png")
  assert "No keypoints for the target pose 'zzz'" in error("--sources", sources[0], "--target_pose", "zzz")
  assert "Target pose file not found" in error("--sources", sources[0], "--target_pose", "t.json")
  assert "--target_size" in error("--sources", sources[0], "--target_pose", "src0.png",
                                  "--target_size", "64")
  other = tmp_path / "other.png"
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(other)
  assert "No keypoints for source image 'other.png'" in error("--sources", str(other),
                                                              "--target_pose", "src0.png")
  empty = tmp_path / "empty_run"
  empty.mkdir()
  message = generate.main([f"--workdir={empty}", f"--config={TINY}", "--keypoints", kp_json, "--out",
                           str(tmp_path / "o.png"), "--sources", sources[0], "--target_pose", "src0.png"])
  assert message == 2 and "train first" in capsys.readouterr().err


@pytest.mark.slow
def test_real_init_state_checkpoint(tmp_path):
  """A checkpoint of the real `init_state` (compiled) restores and generates."""
  config = tiny_config()
  generator, discriminator = models.build_generator(config), models.build_discriminator(config)
  state = state_lib.create_state(config, jax.random.PRNGKey(0), generator, discriminator)
  checkpointer = checkpointing.Checkpointer(str(tmp_path), config)
  checkpointer.save(1, state, None, config)
  checkpointer.close()
  _, params = inference.load_generator(config, str(tmp_path))
  for a, b in zip(jax.tree.leaves(state.gen_params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  kp = _person_keypoints(32, 32)
  inputs = inference.prepare_inputs(config, [np.zeros((32, 32, 3), np.uint8)], [kp], kp)
  assert inference.generate(generator, params, inputs).shape == (1, 32, 32, 3)


# ------------------------------------------------------------------------------------ keypoint detection
def _landmarks():
  """33 BlazePose landmarks (x, y, visibility), landmark i at x = (i + 1) / 40, y = 1 - x."""
  x = (np.arange(33) + 1) / 40.0
  return np.stack([x, 1.0 - x, np.ones(33)], axis=-1)


def test_blazepose_to_openpose_mapping():
  h, w = 100, 80
  lm = _landmarks()
  kp = pose_keypoints.blazepose_to_openpose(lm, (h, w))
  assert kp.shape == (18, 2) and kp.dtype == np.float32

  def at(i):
    return np.array([lm[i, 1] * h - 0.5, lm[i, 0] * w - 0.5], np.float32)

  # OpenPose: nose, neck, R sho/elb/wri, L sho/elb/wri, R hip/knee/ankle, L hip/knee/ankle, R/L eye, R/L ear.
  expected_source = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23,
                     12: 25, 13: 27, 14: 5, 15: 2, 16: 8, 17: 7}
  for joint, landmark in expected_source.items():
    np.testing.assert_allclose(kp[joint], at(landmark), atol=1e-5, err_msg=f"joint {joint}")
  np.testing.assert_allclose(kp[1], (at(11) + at(12)) / 2, atol=1e-5)

  low = lm.copy()
  low[12, 2] = 0.2                      # right shoulder barely visible
  low[0, :2] = (1.5, 0.5)               # nose outside the image
  kp = pose_keypoints.blazepose_to_openpose(low, (h, w), min_visibility=0.5)
  assert (kp[2] == -1).all() and (kp[1] == -1).all() and (kp[0] == -1).all()
  assert (kp[5] >= 0).all()
  with pytest.raises(ValueError, match="33"):
    pose_keypoints.blazepose_to_openpose(lm[:17], (h, w))


def test_keypoint_csv_reads_back(tmp_path):
  kp = pose_keypoints.blazepose_to_openpose(_landmarks(), (128, 64))
  kp[3] = -1
  path = tmp_path / "sub" / "annotations.csv"
  pose_keypoints.write_annotation_csv(str(path), [("a.jpg", kp), ("b.jpg", kp)])
  table = annotations.read_annotations(str(path))
  assert list(table) == ["a.jpg", "b.jpg"]
  np.testing.assert_array_equal(table["a.jpg"], np.where(kp < 0, -1, np.round(kp)))


def test_pose_keypoints_imports_neither_jax_nor_tensorflow(tmp_path):
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
  code = ("import sys\n"
          "from rfgen_jax.tools import pose_keypoints\n"
          "bad = [m for m in ('jax', 'tensorflow', 'flax') if m in sys.modules]\n"
          "assert not bad, bad\n"
          "try:\n"
          "  import mediapipe\n"
          "  print('HAS_MEDIAPIPE')\n"
          "except ImportError:\n"
          f"  print('EXIT', pose_keypoints.main(['--images', {str(tmp_path)!r}, '--out', 'x.csv']))\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0, result.stderr
  # Without mediapipe: a user error (rfgen_jax/errors.py), one line on stderr naming the requirements file,
  # exit status 2.
  assert "HAS_MEDIAPIPE" in result.stdout or (
      "EXIT 2" in result.stdout and "requirements-keypoints.txt" in result.stderr), (result.stdout, result.stderr)


def test_config_json_of_an_older_version_is_refused(tmp_path):
  """A run's config.json without a key this version reads (a run from before the key existed) is one
  clear error naming the key, not a model silently built with today's default; a complete one loads."""
  config = load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  saved = json.loads(config.to_json_best_effort())
  (tmp_path / "config.json").write_text(json.dumps(saved))
  assert generate.load_config(None, str(tmp_path)).model.init == config.model.init
  del saved["model"]["attention_activation"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  with pytest.raises(ValueError, match=r"older rfgen_jax.*model\.attention_activation"):
    generate.load_config(None, str(tmp_path))
