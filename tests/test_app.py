"""The app's logic (rfgen_jax.tools.app.App) without a browser: pose text, editor, generation, errors.

The browser test (drag a joint in headless Chromium) is tests/test_app_browser.py.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import app as app_lib
from rfgen_jax.tools import app_handlers
from rfgen_jax.tools import app_html
from rfgen_jax.tools import session as session_lib

from app_fixtures import make_run


@pytest.fixture(scope="module")
def people(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("app_run"))
  make_run(workdir, "synthetic")
  session = session_lib.ModelSession(workdir, batch_size=2)
  return app_handlers.App(session)


def _oracle(app, images_uint8, poses, target):
  """The generator applied directly (inference.generate) on inputs encoded here."""
  s = app.session
  enc = s.encoder
  batch = {"source_images": (np.stack(images_uint8).astype(np.float32) / 127.5 - 1)[None],
           "source_poses": np.stack([enc.encode(np.asarray(p, np.float32), s.image_size) for p in poses])[None],
           "target_pose": enc.encode(np.asarray(target, np.float32), s.image_size)[None]}
  return visualize.to_uint8(inference.generate(s.generator, s.params, batch)[0])


def assert_same_image(got: np.ndarray, want: np.ndarray):
  """The app's image against `_oracle`'s, up to float rounding: at most one uint8 level anywhere, and
  on at most 1% of the values (mean absolute difference <= 0.01 level).

  The two are different compiled programs (the app's session batch vs inference.generate's), and XLA
  does not promise two programs the same rounding: batch shape, fusion and the CPU's vector width
  change it, so on one host they agree to the bit and on another (AVX-512) one value of 3,072 differs
  by one level. A wrong input or pose changes whole regions by many levels.
  """
  assert got.shape == want.shape and got.dtype == want.dtype == np.uint8
  diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
  assert diff.max() <= 1, f"differ by up to {diff.max()} levels at {np.argwhere(diff > 1)[:5].tolist()}"
  assert diff.mean() <= 0.01, f"{np.count_nonzero(diff)} of {diff.size} values differ (mean {diff.mean():.4f})"


def test_pose_text_round_trip_and_errors():
  pose = np.array([[1.0, 2.0], [-1.0, -1.0], [3.25, 4.0]])
  text = app_handlers.pose_to_text(pose)
  np.testing.assert_allclose(app_handlers.text_to_pose(text, "keypoints", 3), [[1, 2], [-1, -1], [3.2, 4]],
                             atol=0.06)
  for bad, pattern in [("", "empty"), ("[[1, 2]", "not valid JSON"), ("[[1, 2]]", "3 \\[y, x\\] pairs"),
                       ('[["a", 1]]', "list of numbers"), ("[[NaN, 1], [1, 1], [1, 1]]", "NaN")]:
    with pytest.raises(app_handlers.UserError, match=pattern):
      app_handlers.text_to_pose(bad, "keypoints", 3)
  # A negative coordinate marks the joint missing.
  np.testing.assert_array_equal(app_handlers.text_to_pose("[[5, -2], [1, 1], [2, 2]]", "keypoints", 3)[0], [-1, -1])
  np.testing.assert_array_equal(app_handlers.text_to_pose("[3, 10]", "camera", 0), [3, 10])
  with pytest.raises(app_handlers.UserError, match="flat list"):
    app_handlers.text_to_pose("[[3, 10]]", "camera", 0)


def test_editor_draws_present_joints_at_pixel_centres():
  pose = np.full((18, 2), -1.0)
  pose[1] = (7, 3)
  pose[2] = (9, 5)
  html = app_html.editor_html(np.zeros((32, 16, 3), np.uint8), pose, (32, 16), ((1, 2), (2, 3)))
  circles = re.findall(r"data-joint='(\d+)' cx='([\d.]+)' cy='([\d.]+)'", html)
  assert circles == [("1", "3.5", "7.5"), ("2", "5.5", "9.5")]
  assert "viewBox='0 0 16 32'" in html
  # The limb to the missing joint 3 is hidden; 1-2 is visible.
  assert re.search(r"data-a='1' data-b='2'[^>]*stroke-width='[\d.]+'/>", html)
  assert re.search(r"data-a='2' data-b='3'[^>]*visibility='hidden'", html)
  assert "data-editable='0'" in app_html.editor_html(None, np.zeros(2), (32, 16))


def test_generate_matches_the_generator_and_moving_a_joint_changes_it(people):
  app = people
  names, target = app.test_tuple(0, 2)
  assert len(names) == 2
  images, poses = app.sources_from_test(names)
  _, text = app.target_from_test(target)
  image, gallery, status = app.generate(images, poses, text)
  f = app.display_factor()
  assert image.shape == (32 * f, 32 * f, 3) and image.dtype == np.uint8
  target_pose = app_handlers.text_to_pose(text, "keypoints", 18)
  assert_same_image(image[::f, ::f], _oracle(app, images, poses, target_pose))
  assert "K = 2" in status
  # Gallery: K sources x 3 levels x (flow, occlusion, attention), captioned.
  levels = tuple(app.session.config.model.levels)
  assert len(gallery) == 2 * len(levels) * 3
  assert gallery[0][1] == f"s1 1/{levels[0]} flow" and gallery[-1][1] == f"s2 1/{levels[-1]} attention"
  # Drag a joint (as the page script writes it): the output follows the model for the new pose.
  moved = json.loads(text)
  j = next(i for i, p in enumerate(moved) if p[0] >= 0)
  moved[j] = [moved[j][0] + 6, moved[j][1] + 5]
  image2, _, _ = app.generate(images, poses, json.dumps(moved))
  assert not np.array_equal(image, image2)
  assert_same_image(image2[::f, ::f], _oracle(app, images, poses, np.asarray(moved, np.float32)))


@pytest.mark.parametrize("k", [1, 3])
def test_any_k(people, k):
  app = people
  names, target = app.test_tuple(1, k)
  assert len(names) == k
  images, poses = app.sources_from_test(names)
  _, text = app.target_from_test(target)
  image, gallery, _ = app.generate(images, poses, text)
  assert len(gallery) == k * len(tuple(app.session.config.model.levels)) * 3
  f = app.display_factor()
  assert_same_image(image[::f, ::f], _oracle(app, images, poses, app_handlers.text_to_pose(text, "keypoints", 18)))


def test_user_errors_are_sentences(people):
  app = people
  with pytest.raises(app_handlers.UserError, match="K = 0"):
    app.sources_from_test([])
  with pytest.raises(app_handlers.UserError, match="No test record named 'nope.png'"):
    app.sources_from_test(["nope.png"])
  with pytest.raises(app_handlers.UserError, match="K must be at least 1"):
    app.test_tuple(0, 0)
  with pytest.raises(app_handlers.UserError, match="does not exist"):
    app.test_tuple(10_000, 2)
  for exc in (app_handlers.UserError("x is wrong."), KeyError("no such entry"), RuntimeError("boom")):
    text = app_handlers.describe(exc)
    assert "Traceback" not in text and text and "\n" not in text


def test_upload_with_annotation_file(people, tmp_path):
  app = people
  names, _ = app.test_tuple(0, 2)
  rows, paths = [], []
  for n in names:
    image, kp = app.session.test_example(n)
    path = tmp_path / n
    Image.fromarray(image).save(path)
    paths.append(str(path))
    rows.append(f"{n}:{json.dumps([int(round(v)) for v in kp[:, 0]])}:{json.dumps([int(round(v)) for v in kp[:, 1]])}")
  csv = tmp_path / "kp.csv"
  csv.write_text("name:keypoints_y:keypoints_x\n" + "\n".join(rows) + "\n")
  images, poses = app.sources_from_upload(paths, str(csv))
  assert len(images) == 2 and images[0].shape == (32, 32, 3)
  np.testing.assert_array_equal(images[0], np.asarray(Image.open(paths[0])))
  # A photo missing from the keypoint file: one sentence naming it.
  Image.fromarray(images[0]).save(tmp_path / "other.png")
  with pytest.raises(app_handlers.UserError, match="No keypoints for source image 'other.png'"):
    app.sources_from_upload([str(tmp_path / "other.png")], str(csv))


def test_upload_that_is_not_an_image_is_named_before_keypoints(people, tmp_path):
  """The upload's own problem comes first: a file that is not an image is named as such whether or not
  keypoints came with it (and before detection runs); a real photo without keypoints asks for them."""
  app = people
  not_image = tmp_path / "notes.png"
  not_image.write_text("not a picture")
  photo = tmp_path / "me.png"
  Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(photo)
  never_run = tmp_path / "never_run_python"
  never_run.write_text("#!/bin/sh\ntouch \"$(dirname \"$0\")/ran\"\nexit 1\n")
  never_run.chmod(0o755)
  detecting = app_handlers.App(app.session, keypoints_python=str(never_run))
  for call in (lambda: app.sources_from_upload([str(photo), str(not_image)], None),
               lambda: app.sources_from_upload([str(not_image)], str(tmp_path / "kp.csv")),
               lambda: detecting.sources_from_upload([str(not_image)], None, detect=True)):
    with pytest.raises(app_handlers.UserError, match="'notes.png' is not an image that can be read") as e:
      call()
    assert "keypoints" not in str(e.value) and "\n" not in str(e.value)
  assert not (tmp_path / "ran").exists()
  with pytest.raises(app_handlers.UserError, match="Uploaded photos need keypoints"):
    app.sources_from_upload([str(photo)], None)


def test_busy_port_is_one_sentence_and_exit_status_2(tmp_path, capsys):
  """A port another server listens on ends the command before the model is loaded (the workdir is not
  even read): one line on stderr naming the port, exit status 2 (`cli.exit_2_on_user_error`); so does a
  missing gradio."""
  import socket  # pylint: disable=import-outside-toplevel
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    assert app_lib.main(["--workdir", str(tmp_path / "no_run"), "--port", str(port)]) == 2
  err = capsys.readouterr().err
  assert f"Port {port} on 127.0.0.1 is in use" in err and "--port" in err
  assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
  assert app_lib.main(["--workdir", str(tmp_path), "--port", "70000"]) == 2
  assert "not a port number" in capsys.readouterr().err
  assert app_lib.port_problem("127.0.0.1", port) is None       # free again once closed
  if importlib.util.find_spec("gradio") is None:                # the test venv: no app extras
    assert app_lib.main(["--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "needs gradio: pip install -r requirements-app.txt" in err and len(err.strip().splitlines()) == 1


def test_pictures_are_whole_and_captioned_in_full():
  """The page's pictures (source thumbnails, inner maps): each at an integer scale of its own size
  (never cropped), with its whole caption (never cut)."""
  image = np.zeros((64, 32, 3), np.uint8)
  page = app_html.pictures_html([image, image], ["0007_c2s1_000416_00.png", "b&c.png"], "thumbs")
  assert page.count("<img ") == 2 and "width='64' height='128'" in page
  assert ">0007_c2s1_000416_00.png</figcaption>" in page and ">b&amp;c.png</figcaption>" in page
  levels = (8, 4, 2)
  items = [(np.zeros((64, 32, 3), np.uint8), f"s{s} 1/{lv} {kind}") for s in (1, 2) for lv in levels
           for kind in visualize.MAP_KINDS]
  table = app_html.maps_html(items, 2, levels)
  assert table.count("<img ") == 18 and table.count("<tr>") == 4     # 2 header rows + a row per source
  assert "level 1/8" in table and ">occlusion</th>" in table and ">source 2</th>" in table
  assert "alt='s2 1/2 attention'" in table and "width='32' height='64'" in table
  assert "<img " in app_html.legend_html() and "hue = direction" in app_html.legend_html()


def test_camera_checkpoint_loads_and_generates_from_test_poses(tmp_path):
  workdir = str(tmp_path / "turntable_run")
  os.makedirs(workdir)
  make_run(workdir, "turntable")
  app = app_handlers.App(session_lib.ModelSession(workdir, batch_size=1))
  names, target = app.test_tuple(0, 2)
  html, text = app.target_from_test(target)
  assert "data-editable='0'" in html
  pose = json.loads(text)
  assert len(pose) == 2      # [azimuth index, elevation]
  images, poses = app.sources_from_test(names)
  image, gallery, _ = app.generate(images, poses, text)
  assert image.shape[2] == 3 and len(gallery) == 2 * 3 * 3
  with pytest.raises(app_handlers.UserError, match="body-keypoint model"):
    app.sources_from_upload(["a.png"], "kp.csv")


def test_build_ui(people):
  pytest.importorskip("gradio")
  demo = app_lib.build_ui(people)
  ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
  assert {"generate", app_html.POSE_BOX_ID, "output-image", "maps-box", "sources-box", "source-names",
          "k-number"} <= ids


def test_landmark_checkpoint_loads_and_generates_from_test_poses(tmp_path):
  from rfgen_jax.data.datasets import voxceleb  # pylint: disable=import-outside-toplevel
  root = tmp_path / "vox"
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    for identity in ("id00001", "id00002"):
      for video in ("va", "vb"):
        d = root / split / identity / video
        d.mkdir(parents=True)
        names = [f"{i:05d}.png" for i in range(2)]
        for n in names:
          Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / n)
        voxceleb.write_landmarks_csv(str(d / voxceleb.LANDMARKS_FILE), names,
                                     rng.uniform(2, 29, (2, 68, 2)).astype(np.float32))
  workdir = str(tmp_path / "vox_run")
  os.makedirs(workdir)
  make_run(workdir, "voxceleb2", arg="runlocal", root=str(root),
           overrides={"data.image_size": (32, 32), "model.width": 0.125})
  app = app_handlers.App(session_lib.ModelSession(workdir, batch_size=1))
  names, target = app.test_tuple(0, 2)
  html, text = app.target_from_test(target)
  assert html.count("class='joint'") == 68       # landmarks are drawn (and draggable), without limbs
  assert "<line" not in html
  images, poses = app.sources_from_test(names)
  image, gallery, _ = app.generate(images, poses, text)
  f = app.display_factor()
  assert_same_image(image[::f, ::f], _oracle(app, images, poses, app_handlers.text_to_pose(text, "landmarks", 68)))


def test_upload_with_detected_keypoints_runs_the_keypoints_environment(people, tmp_path):
  """The detection plumbing: a stand-in for the keypoints environment's python that writes, like
  `python -m rfgen_jax.tools.pose_keypoints --images DIR --out CSV`, one fixed skeleton per image."""
  app = people
  names, _ = app.test_tuple(0, 1)
  image, kp = app.session.test_example(names[0])
  photo = tmp_path / "me.png"
  Image.fromarray(image).save(photo)
  ys, xs = json.dumps([int(round(v)) for v in kp[:, 0]]), json.dumps([int(round(v)) for v in kp[:, 1]])
  fake = tmp_path / "fake_python"
  fake.write_text("#!/bin/sh\n# args: -m rfgen_jax.tools.pose_keypoints --images DIR --out CSV\n"
                  f"echo \"me.png:{ys}:{xs}\" > \"$6\"\n")
  fake.chmod(0o755)
  detecting = app_handlers.App(app.session, keypoints_python=str(fake))
  images, poses = detecting.sources_from_upload([str(photo)], None, detect=True)
  np.testing.assert_array_equal(images[0], image)
  np.testing.assert_allclose(poses[0], np.round(kp), atol=1e-4)
  with pytest.raises(app_handlers.UserError, match="keypoints environment"):
    app.sources_from_upload([str(photo)], None, detect=True)
