"""The synthetic people data set (rfgen_jax.data.synthetic) and the OpenPose-18 constants (keypoints)."""
import dataclasses
import filecmp
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from rfgen_jax.data import keypoints as kp_lib
from rfgen_jax.data.synthetic import people as synthetic
from rfgen_jax.data.synthetic import people_body
from rfgen_jax.data.synthetic import people_render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(height=64, width=32, train_ids=4, test_ids=2, views_per_id=4)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("syn") / "a")
  summary = synthetic.generate(out, seed=3, **SMALL)
  return out, summary


def _read_annotations(path):
  with open(path) as f:
    lines = f.read().splitlines()
  rows = {}
  for line in lines[1:]:
    name, ys, xs = line.split(":")
    rows[name] = (json.loads(ys), json.loads(xs))
  return lines[0], rows


# ------------------------------------------------------------------------------------------- keypoints
def test_keypoint_constants():
  assert kp_lib.NUM_JOINTS == len(kp_lib.JOINT_NAMES) == 18
  assert kp_lib.JOINT_NAMES[:5] == ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist")
  assert kp_lib.JOINT_NAMES[14:] == ("r_eye", "l_eye", "r_ear", "l_ear")
  assert len(kp_lib.LIMBS) == 19 and all(0 <= a < 18 and 0 <= b < 18 for a, b in kp_lib.LIMBS)
  assert (1, 2) in kp_lib.LIMBS and (12, 13) in kp_lib.LIMBS   # neck-r_shoulder, l_knee-l_ankle
  flip = np.array((0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16))   # left <-> right
  assert np.array_equal(flip[flip], np.arange(18))
  for i, name in enumerate(kp_lib.JOINT_NAMES):
    other = kp_lib.JOINT_NAMES[flip[i]]
    assert other == name.replace("r_", "x_").replace("l_", "r_").replace("x_", "l_")


def test_draw_skeleton_draws_present_limbs_only():
  img = np.zeros((64, 32, 3), np.uint8)
  kp = np.full((18, 2), -1.0)
  kp[1] = (10, 16)       # neck
  kp[2] = (12, 8)        # r_shoulder
  kp[3] = (30, 8)        # r_elbow
  out = kp_lib.draw_skeleton(img, kp)
  assert out.shape == img.shape and out.dtype == np.uint8
  assert img.max() == 0                               # input untouched
  assert out[20, 8].max() > 0                         # on the r_shoulder - r_elbow limb
  assert out[50, 20].max() == 0                       # nothing where no joint is
  only_points = kp_lib.draw_skeleton(img, np.full((3, 2), 5.0), limbs=())
  assert only_points[5, 5].max() > 0
  with pytest.raises(ValueError):
    kp_lib.draw_skeleton(img.astype(np.float32), kp)


# ------------------------------------------------------------------------------------------- layout
def test_layout_and_csv_format(small_set):
  out, summary = small_set
  n_views = SMALL["views_per_id"]
  ids = {}
  for split, n_ids in (("train", SMALL["train_ids"]), ("test", SMALL["test_ids"])):
    files = sorted(os.listdir(os.path.join(out, split)))
    assert len(files) == n_ids * n_views == summary["images"][split]
    header, rows = _read_annotations(os.path.join(out, f"market-annotation-{split}.csv"))
    assert header == "name:keypoints_y:keypoints_x"
    assert sorted(rows) == files
    for name, (ys, xs) in rows.items():
      assert synthetic.NAME_PATTERN.match(name), name
      assert len(ys) == len(xs) == 18
      assert all(isinstance(v, int) for v in ys + xs)
      assert all((y == -1) == (x == -1) for y, x in zip(ys, xs))
      assert all(-1 <= y < SMALL["height"] for y in ys) and all(-1 <= x < SMALL["width"] for x in xs)
      with Image.open(os.path.join(out, split, name)) as im:
        assert im.size == (SMALL["width"], SMALL["height"]) and im.mode == "RGB"
    ids[split] = {n.split("_")[0] for n in files}
    assert len(ids[split]) == n_ids
    with open(os.path.join(out, f"market-pairs-{split}.csv")) as f:
      lines = f.read().splitlines()
    assert lines[0] == "from,to" and len(lines) > 1
    for line in lines[1:]:
      a, b = line.split(",")
      assert a in rows and b in rows and a != b and a.split("_")[0] == b.split("_")[0]
  assert not ids["train"] & ids["test"]
  assert min(int(i) for i in ids["train"]) == 1
  with open(os.path.join(out, "info.json")) as f:
    info = json.load(f)
  assert info["params"]["height"] == SMALL["height"] and info["params"]["seed"] == 3
  assert os.path.isfile(os.path.join(out, "README.txt"))


def test_readable_by_project_annotation_reader(small_set):
  from rfgen_jax.data import annotations   # the project's own reader (drops images missing a shoulder/hip)
  out, _ = small_set
  table = annotations.read_annotations(os.path.join(out, "market-annotation-train.csv"))
  assert len(table) == SMALL["train_ids"] * SMALL["views_per_id"]
  assert all(v.shape == (18, 2) for v in table.values())


def test_deterministic_for_a_seed(tmp_path, small_set):
  out, _ = small_set
  again = str(tmp_path / "b")
  synthetic.generate(again, seed=3, **SMALL)
  cmp = filecmp.dircmp(out, again)
  assert not cmp.left_only and not cmp.right_only
  for sub in ("", "train", "test"):
    names = [n for n in os.listdir(os.path.join(out, sub)) if os.path.isfile(os.path.join(out, sub, n))]
    _, mismatch, errors = filecmp.cmpfiles(os.path.join(out, sub), os.path.join(again, sub), names,
                                           shallow=False)
    assert not mismatch and not errors, (sub, mismatch, errors)
  other = str(tmp_path / "c")
  synthetic.generate(other, seed=4, **SMALL)
  a = sorted(os.listdir(os.path.join(out, "train")))
  b = sorted(os.listdir(os.path.join(other, "train")))
  first_a = np.asarray(Image.open(os.path.join(out, "train", a[0])))
  first_b = np.asarray(Image.open(os.path.join(other, "train", b[0])))
  assert a != b or not np.array_equal(first_a, first_b)
  assert not np.array_equal(first_a, first_b)


@pytest.mark.parametrize("size", [(32, 32), (128, 64), (48, 40)])
def test_any_size(tmp_path, size):
  h, w = size
  out = str(tmp_path / "s")
  synthetic.generate(out, h, w, train_ids=1, test_ids=1, views_per_id=3, seed=0)
  assert synthetic.is_complete(out) and synthetic.is_complete(out, h, w)
  assert not synthetic.is_complete(out, h + 1, w)
  for split in ("train", "test"):
    for name in os.listdir(os.path.join(out, split)):
      img = np.asarray(Image.open(os.path.join(out, split, name)))
      assert img.shape == (h, w, 3)
      assert img.std() > 5          # not blank


def test_is_complete_detects_partial_folders(tmp_path, small_set):
  out, _ = small_set
  assert synthetic.is_complete(out)
  assert not synthetic.is_complete(str(tmp_path / "nothing"))
  partial = str(tmp_path / "p")
  synthetic.generate(partial, 32, 16, train_ids=2, test_ids=1, views_per_id=2, seed=0)
  assert synthetic.is_complete(partial)
  victim = sorted(os.listdir(os.path.join(partial, "train")))[0]
  os.remove(os.path.join(partial, "train", victim))
  assert not synthetic.is_complete(partial)
  synthetic.generate(partial, 32, 16, train_ids=2, test_ids=1, views_per_id=2, seed=0)   # repairs it
  assert synthetic.is_complete(partial)
  os.remove(os.path.join(partial, "market-annotation-test.csv"))
  assert not synthetic.is_complete(partial)
  synthetic.generate(partial, 32, 16, train_ids=2, test_ids=1, views_per_id=2, seed=0)
  os.remove(os.path.join(partial, "info.json"))          # info.json is written last
  assert not synthetic.is_complete(partial)


def test_regenerating_smaller_removes_stale_images(tmp_path):
  out = str(tmp_path / "r")
  synthetic.generate(out, 32, 16, train_ids=3, test_ids=1, views_per_id=2, seed=0)
  synthetic.generate(out, 32, 16, train_ids=1, test_ids=1, views_per_id=2, seed=0)
  assert len(os.listdir(os.path.join(out, "train"))) == 2 and synthetic.is_complete(out)


def test_cli(tmp_path):
  out = str(tmp_path / "cli")
  proc = subprocess.run(
      [sys.executable, "-m", "rfgen_jax.data.synthetic", "--out", out, "--height", "32", "--width", "16",
       "--train-ids", "2", "--test-ids", "1", "--views-per-id", "2", "--seed", "1"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert synthetic.is_complete(out, 32, 16)
  assert len(os.listdir(os.path.join(out, "test"))) == 2


# ------------------------------------------------------------------------------------------- content
def _views(n_ids, views_per_id=8, seed=0):
  for pid in range(1, n_ids + 1):
    identity, views = synthetic.plan_identity(seed, pid, views_per_id)
    for _, view in views:
      yield identity, view


def test_keypoints_lie_on_the_person():
  h, w = 128, 64
  hits = total = 0
  limb_hits = limb_total = 0
  for identity, view in _views(15):
    cover, kp = people_render.render(identity, view, h, w, mask=True)
    img_kp = people_render.render(identity, view, h, w)[1]
    assert np.array_equal(kp, img_kp)
    for j, (y, x) in enumerate(kp):
      if y >= 0:
        on = cover[y, x] > 64
        hits += on
        total += 1
        if j in (4, 7, 10, 13):   # wrists and ankles: the ends of thin limbs
          limb_hits += on
          limb_total += 1
  assert total > 15 * 8 * 12
  assert hits / total > 0.98, (hits, total)
  assert limb_hits / limb_total > 0.97, (limb_hits, limb_total)


def test_keypoints_move_with_the_person():
  identity, views = synthetic.plan_identity(0, 5, 2)
  view = dataclasses.replace(views[0][1], drop=(), rotation=0.0, shift=(0.0, 0.0), scale=1.0)
  base = people_body.view_keypoints(identity, view, 128, 64)
  shifted = people_body.view_keypoints(identity, dataclasses.replace(view, shift=(0.0, 3.0)), 128, 64)
  ok = (base >= 0).all(1) & (shifted >= 0).all(1)
  np.testing.assert_array_equal(shifted[ok, 1] - base[ok, 1], 3)
  np.testing.assert_array_equal(shifted[ok, 0], base[ok, 0])
  bigger = people_body.view_keypoints(identity, dataclasses.replace(view, scale=1.1), 128, 64)
  neck_to_ankle = lambda k: k[10, 0] - k[1, 0]
  assert neck_to_ankle(bigger) > neck_to_ankle(base)
  # The keypoints rotate with the rendered person: the coverage moves where the keypoints go.
  rot = dataclasses.replace(view, rotation=5.0)
  cover, kp = people_render.render(identity, rot, 128, 64, mask=True)
  present = (kp >= 0).all(1)
  assert (cover[kp[present, 0], kp[present, 1]] > 64).mean() > 0.9


def test_face_hidden_from_behind_and_far_side_in_profile():
  identity, views = synthetic.plan_identity(0, 2, 1)
  view = dataclasses.replace(views[0][1], drop=())
  at = lambda deg: people_body.view_keypoints(identity, dataclasses.replace(view, orientation=deg), 128, 64)
  j = kp_lib.JOINT_INDEX
  front, back, right = at(0.0), at(180.0), at(90.0)   # 90: facing image right, left side away
  for name in ("nose", "r_eye", "l_eye", "r_ear", "l_ear", "neck"):
    assert (front[j[name]] >= 0).all(), name
  for name in ("nose", "r_eye", "l_eye"):
    assert (back[j[name]] == -1).all(), name
  assert (right[j["l_ear"]] == -1).all() and (right[j["l_eye"]] == -1).all()
  assert (right[j["r_ear"]] >= 0).all() and (right[j["nose"]] >= 0).all()


def test_missing_joint_statistics():
  required = [2, 5, 8, 11]
  n = dropped = back_views = back_face = 0
  for identity, view in _views(60):
    kp = people_body.view_keypoints(identity, view, 128, 64)
    n += 1
    dropped += bool((kp[required] < 0).any())
    if 150 < view.orientation < 210:
      back_views += 1
      back_face += bool((kp[[0, 14, 15]] >= 0).any())
  assert 0.01 < dropped / n < 0.15, dropped / n    # the ABF filter has something to do, most stay usable
  assert back_views > 20 and back_face == 0


def _torso_box(kp):
  ys = kp[[2, 5, 8, 11], 0]
  xs = kp[[2, 5], 1]
  return slice(ys[:2].max() + 3, ys[2:].min() - 4), slice(xs.min() + 2, xs.max() - 1)


def test_front_and_back_differ_in_the_torso():
  """The multi-source property: one side of the top does not tell what the other side looks like."""
  h, w = 128, 64
  front_back = []
  for pid in range(1, 21):
    identity, views = synthetic.plan_identity(0, pid, 1)
    view = dataclasses.replace(views[0][1], drop=(), rotation=0.0, shift=(0.0, 0.0), scale=1.0,
                               arm_swing=(0.0, 0.0), arm_abduct=(25.0, 25.0), elbow=(0.0, 0.0),
                               leg_swing=(0.0, 0.0), knee=(0.0, 0.0), brightness=1.0)
    imgs = {o: people_render.render(identity, dataclasses.replace(view, orientation=o), h, w)[0].astype(float)
            for o in (0.0, 180.0)}
    box = _torso_box(people_body.view_keypoints(identity, dataclasses.replace(view, orientation=0.0), h, w))
    front_back.append(np.abs(imgs[0.0][box] - imgs[180.0][box]).mean())
    assert imgs[0.0][box].size > 3 * 10 * 10
  assert min(front_back) > 15, np.round(front_back)
  assert np.median(front_back) > 40, np.round(front_back)
  # And the identity's garments really are different objects, not only the lighting.
  for pid in range(1, 50):
    identity, _ = synthetic.plan_identity(0, pid, 1)
    assert identity.front.pattern != identity.back.pattern
    assert np.linalg.norm(np.subtract(identity.front.base, identity.back.base)) >= 90 - 1e-6


def test_orientations_cover_the_circle_for_each_identity():
  for pid in range(1, 11):
    _, views = synthetic.plan_identity(0, pid, 8)
    deg = np.array([v.orientation for _, v in views])
    cos = np.cos(np.radians(deg))
    assert cos.max() > 0.5 and cos.min() < -0.5    # every identity is seen from the front and the back
    cams = {v.camera for _, v in views}
    assert len(cams) >= 4 and all(1 <= c <= synthetic.NUM_CAMERAS for c in cams)
