"""Per-camera misalignment of the synthetic people (rfgen_jax/data/synthetic/misalign.py)."""
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import common
from rfgen_jax.data.synthetic import misalign
from rfgen_jax.data.synthetic import people
from rfgen_jax.data.synthetic import people_body
from rfgen_jax.data.synthetic import people_render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(train_ids=2, test_ids=1, views_per_id=6)

# Digests of sets written by the generator before the switches existed (commit 511b5ce, wt-data), with the
# same `_digest` (decoded pixels, CSVs, info.json, README.txt). If the renderer is changed on purpose,
# recompute them with that commit's generator and the new one and check that the change was intended.
REFERENCE = {
    (32, 16, 0): "a40cb5f6080da9e62d236c53f1aebc0130c6afe950abe2de3ed3bc213d720caf",
    (64, 32, 3): "df6bc1dfc44f3ebe15597e19f00a0f046b831b1b3e5d6d6e02c2ff892a790ac3",
}


def _digest(out):
  h = hashlib.sha256()
  for split in ("train", "test"):
    for n in sorted(os.listdir(os.path.join(out, split))):
      h.update(n.encode())
      h.update(np.asarray(Image.open(os.path.join(out, split, n))).tobytes())
    for f in (f"market-annotation-{split}.csv", f"market-pairs-{split}.csv"):
      with open(os.path.join(out, f), "rb") as fh:
        h.update(fh.read())
  for f in ("info.json", "README.txt"):
    with open(os.path.join(out, f), "rb") as fh:
      h.update(fh.read())
  return h.hexdigest()


@pytest.mark.parametrize("size_seed", sorted(REFERENCE))
def test_off_is_byte_identical_to_the_generator_before_the_switches(tmp_path, size_seed):
  h, w, seed = size_seed
  people.generate(str(tmp_path / "default"), h, w, seed=seed, **TINY)
  assert _digest(str(tmp_path / "default")) == REFERENCE[size_seed]
  people.generate(str(tmp_path / "zeros"), h, w, seed=seed, misalign=misalign.OFF, **TINY)
  assert _digest(str(tmp_path / "zeros")) == REFERENCE[size_seed]


def _a_view(camera=1):
  identity, views = people.plan_identity(0, 7, 4)
  return identity, dataclasses.replace(views[0][1], camera=camera, drop=())


def _offset(scale=1.0, shift=(0.0, 0.0), roll=0.0, gain=(1.0, 1.0, 1.0)):
  return misalign.CameraOffset(scale=scale, shift=shift, roll=roll, gain=gain)


def test_keypoints_follow_the_camera_offset():
  """Oracle: the offset is a similarity about the frame centre (cy, cx) + shift, applied to the keypoints."""
  identity, view = _a_view()
  h, w = 256, 128
  view = dataclasses.replace(view, scale=0.8, shift=(0.0, 0.0), rotation=0.0)
  base = people_body.view_keypoints(identity, view, h, w).astype(np.float64)
  centre = np.array([(h - 1) / 2, (w - 1) / 2])
  unit = h / 128.0
  for off in (_offset(shift=(5.0, -3.0)), _offset(scale=1.15), _offset(roll=8.0),
              _offset(scale=0.85, shift=(-4.0, 2.0), roll=-6.0)):
    moved = people_body.view_keypoints(identity, misalign.apply(view, off), h, w).astype(np.float64)
    both = (base >= 0).all(1) & (moved >= 0).all(1)
    assert both.sum() >= 12
    rho = math.radians(off.roll)
    rot = np.array([[math.cos(rho), math.sin(rho)], [-math.sin(rho), math.cos(rho)]])  # on (y, x)
    expected = centre + np.array(off.shift) * unit + off.scale * (base[both] - centre) @ rot.T
    np.testing.assert_allclose(moved[both], expected, atol=1.01)   # both sides rounded to pixels
  # A pure shift by whole pixels is exact.
  moved = people_body.view_keypoints(identity, misalign.apply(view, _offset(shift=(2.0, -1.0))), h, w)
  np.testing.assert_array_equal(moved[(base >= 0).all(1)], base[(base >= 0).all(1)] + [4, -2])


def test_colour_gain_multiplies_the_pixels():
  identity, view = _a_view()
  backgrounds = people_render.make_backgrounds(64, 32, 0)
  plain, kp0 = people_render.render(identity, view, 64, 32, backgrounds, 0)
  gain = (1.1, 0.9, 0.8)
  cast, kp1 = people_render.render(identity, misalign.apply(view, _offset(gain=gain)), 64, 32, backgrounds, 0)
  np.testing.assert_array_equal(kp0, kp1)
  # Before rounding: plain ~ x * t, cast ~ x * t * gain, each truncated to uint8 (within 1 + gain).
  unclipped = plain.astype(np.float64) * np.asarray(gain) < 254
  err = np.abs(cast.astype(np.float64) - plain * np.asarray(gain))
  assert err[unclipped].max() <= 2.0
  assert np.abs(cast.astype(np.float64).mean((0, 1)) / plain.mean((0, 1)) - gain).max() < 0.02


def test_camera_offsets_span_the_documented_range():
  s = misalign.Misalign(scale=0.2, shift_y=10, shift_x=6, roll=8, colour=0.1, brightness=0.0)
  offs = misalign.camera_offsets(0, s)
  assert sorted(offs) == list(range(1, people_body.NUM_CAMERAS + 1))
  grid = np.linspace(-1, 1, people_body.NUM_CAMERAS)
  np.testing.assert_allclose(sorted(o.scale for o in offs.values()), 1 + 0.2 * grid)
  np.testing.assert_allclose(sorted(o.shift[0] for o in offs.values()), 10 * grid)
  np.testing.assert_allclose(sorted(o.shift[1] for o in offs.values()), 6 * grid)
  np.testing.assert_allclose(sorted(o.roll for o in offs.values()), 8 * grid)
  for c in range(3):
    np.testing.assert_allclose(sorted(o.gain[c] for o in offs.values()), 1 + 0.1 * grid)
  other = misalign.camera_offsets(1, s)
  assert [o.roll for o in offs.values()] != [o.roll for o in other.values()]   # the seed shuffles
  for o in misalign.camera_offsets(0, misalign.OFF).values():
    assert o == _offset()


def test_settings_parse_and_validate():
  assert misalign.parse("off") == misalign.OFF and misalign.parse("moderate") == misalign.MODERATE
  assert misalign.parse("scale=0.1,roll=3") == misalign.Misalign(scale=0.1, roll=3.0)
  assert misalign.from_mapping(dict(common.get_base_config().data.synthetic_misalign)) == misalign.OFF
  for bad in ("scale=1.5", "roll=-1", "tilt=3", "scale", "roll=x"):
    with pytest.raises(ValueError):
      misalign.parse(bad)


def test_on_keeps_the_layout_and_changes_the_images(tmp_path):
  off, on = str(tmp_path / "off"), str(tmp_path / "on")
  people.generate(off, 32, 16, seed=0, **TINY)
  people.generate(on, 32, 16, seed=0, misalign=misalign.MODERATE, **TINY)
  for split in ("train", "test"):
    assert sorted(os.listdir(os.path.join(off, split))) == sorted(os.listdir(os.path.join(on, split)))
    with open(os.path.join(off, f"market-pairs-{split}.csv")) as a, \
         open(os.path.join(on, f"market-pairs-{split}.csv")) as b:
      assert a.read() == b.read()
  with open(os.path.join(on, "market-annotation-train.csv")) as f:
    header = f.readline().strip()
  assert header == "name:keypoints_y:keypoints_x"
  with open(os.path.join(on, "info.json")) as f:
    info = json.load(f)
  assert info["params"]["misalign"] == misalign.MODERATE.as_dict()
  with open(os.path.join(off, "info.json")) as f:
    assert "misalign" not in json.load(f)["params"]
  assert _digest(off) != _digest(on)
  assert people.is_complete(on, misalign=misalign.MODERATE) and people.is_complete(on)
  assert not people.is_complete(on, misalign=misalign.OFF)
  assert people.is_complete(off, misalign={"scale": 0.0}) and not people.is_complete(off, misalign=misalign.MODERATE)


def test_data_set_regenerates_when_the_config_changes_the_misalignment(tmp_path):
  from rfgen_jax.data.datasets import synthetic_people  # pylint: disable=g-import-not-at-top
  c = common.get_base_config()
  c.data.name, c.data.root, c.data.image_size = "synthetic", str(tmp_path / "syn"), (32, 16)
  c.data.synthetic_train_ids, c.data.synthetic_test_ids, c.data.synthetic_views_per_id = 2, 1, 2
  synthetic_people.generate(c)
  assert people.is_complete(c.data.root, misalign=misalign.OFF)
  c.data.synthetic_misalign.roll = 8.0
  synthetic_people.generate(c)
  assert people.is_complete(c.data.root, misalign=misalign.Misalign(roll=8.0))


def test_cli_flag(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  cmd = [sys.executable, "-m", "rfgen_jax.data.synthetic", "--out", str(tmp_path / "s"), "--height", "16",
         "--width", "16", "--train-ids", "1", "--test-ids", "1", "--views-per-id", "2"]
  ok = subprocess.run(cmd + ["--misalign", "scale=0.1,colour=0.05"], env=env, capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr
  with open(tmp_path / "s" / "README.txt") as f:
    assert "--misalign scale=0.1,shift_y=0,shift_x=0,roll=0,colour=0.05,brightness=0\n" in f.read()
  bad = subprocess.run(cmd + ["--misalign", "tilt=3"], env=env, capture_output=True, text=True)
  assert bad.returncode == 2 and "tilt" in bad.stderr and "Traceback" not in bad.stderr


def test_contact_sheet_shape():
  from rfgen_jax.data.synthetic import misalign_sheet  # pylint: disable=import-outside-toplevel
  sheet = misalign_sheet.contact_sheet(misalign.MODERATE, 32, 16, identities=(1,))
  assert sheet.dtype == np.uint8 and sheet.shape == (2 * 32 + 2, 6 * 16 + 5 * 2, 3)
  assert not np.array_equal(sheet[:32], sheet[34:])
