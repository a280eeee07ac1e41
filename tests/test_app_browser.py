"""The app in a real browser: headless Chromium drags a joint with pointer events, presses Generate, and
the page's output image must change and equal the model's output for the dragged pose.

Needs gradio (requirements-app.txt), selenium, and Debian's `chromium` and `chromium-driver`:
    apt-get update && apt-get install -y chromium chromium-driver
    pip install -r requirements-app.txt selenium
    python -m pytest -q tests/test_app_browser.py
Skipped (with the reason) when any of them is missing. $CHROME_BIN and $CHROMEDRIVER override the
browser and driver paths (default: chromium and chromedriver on $PATH).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import app as app_lib
from rfgen_jax.tools import session as session_lib

from app_fixtures import make_run

gr = pytest.importorskip("gradio", reason="the app needs gradio (pip install -r requirements-app.txt)")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip)")
from selenium.webdriver.chrome.options import Options  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.chrome.service import Service  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.common.by import By  # noqa: E402  pylint: disable=g-import-not-at-top

CHROME = os.environ.get("CHROME_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROME and DRIVER), reason="needs Debian's chromium and "
                                "chromium-driver (apt-get install -y chromium chromium-driver)")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _wait(predicate, timeout: float = 180.0, what: str = "condition"):
  start = time.time()
  while time.time() - start < timeout:
    value = predicate()
    if value is not None and value is not False and (not hasattr(value, "__len__") or len(value)):
      return value
    time.sleep(0.25)
  raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("browser_run"))
  make_run(workdir, "synthetic")
  app = app_lib.App(session_lib.ModelSession(workdir, batch_size=1))
  app.test_names()
  port = _free_port()
  demo = app_lib.launch(app, "127.0.0.1", port, prevent_thread_lock=True)
  options = Options()
  for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
               "--window-size=1400,1200"):
    options.add_argument(flag)
  options.binary_location = CHROME
  driver = webdriver.Chrome(service=Service(DRIVER), options=options)
  try:
    yield app, driver, f"http://127.0.0.1:{port}/"
  finally:
    driver.quit()
    demo.close()


def _output_image(driver, previous_src=None):
  """The output image's src (after it differs from `previous_src`) and its pixels."""
  def ready():
    imgs = driver.find_elements(By.CSS_SELECTOR, "#output-image img")
    src = imgs[0].get_attribute("src") if imgs else None
    return src if src and src != previous_src else None
  src = _wait(ready, what="the generated image")
  with urllib.request.urlopen(src, timeout=30) as response:
    return src, np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))


def _oracle(app, names, pose):
  """The generator applied directly (inference.generate) on the test records and the pose."""
  s = app.session
  examples = [s.test_example(n) for n in names]
  batch = {"source_images": (np.stack([e[0] for e in examples]).astype(np.float32) / 127.5 - 1)[None],
           "source_poses": np.stack([s.encode_pose(e[1]) for e in examples])[None],
           "target_pose": s.encode_pose(pose)[None]}
  return visualize.to_uint8(inference.generate(s.generator, s.params, batch)[0])


def test_drag_a_joint_and_generate(served):
  app, driver, url = served
  driver.get(url)
  circles = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pose-editor circle.joint"),
                  what="the pose editor's joints")
  box = driver.find_element(By.CSS_SELECTOR, f"#{app_lib.POSE_BOX_ID} textarea")
  names, _ = app.test_tuple(0, int(app.session.config.data.num_sources))
  chips = driver.find_element(By.CSS_SELECTOR, "#source-names").text
  assert all(n in chips for n in names)

  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  _wait(lambda: "Generated" in driver.find_element(By.CSS_SELECTOR, "#status").text, what="status")
  src, before = _output_image(driver)
  f = app.display_factor()
  pose_before = np.asarray(json.loads(box.get_attribute("value")), np.float32)
  np.testing.assert_array_equal(before[::f, ::f], _oracle(app, names, pose_before))

  # Drag the right wrist (or the first joint drawn) with real pointer events: press, move, release.
  joint = next((c for c in circles if c.get_attribute("data-joint") == "4"), circles[0])
  j = int(joint.get_attribute("data-joint"))
  ActionChains(driver).move_to_element(joint).click_and_hold().move_by_offset(25, 15) \
      .move_by_offset(15, 10).release().perform()
  pose_after = _wait(lambda: (lambda p: p if not np.array_equal(p, pose_before) else None)(
      np.asarray(json.loads(box.get_attribute("value")), np.float32)), what="the pose box to change")
  moved = np.flatnonzero((pose_after != pose_before).any(axis=-1))
  assert moved.tolist() == [j]
  # 40 x 25 screen pixels at DISPLAY_HEIGHT / H screen pixels per model pixel.
  scale = app_lib.DISPLAY_HEIGHT / app.session.image_size[0]
  np.testing.assert_allclose(pose_after[j] - pose_before[j], [25 / scale, 40 / scale], atol=0.6)
  # The editor drew the circle where the pose box says.
  cx, cy = float(joint.get_attribute("cx")), float(joint.get_attribute("cy"))
  np.testing.assert_allclose([cy - 0.5, cx - 0.5], pose_after[j], atol=0.06)

  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  _, after = _output_image(driver, previous_src=src)
  assert not np.array_equal(after, before)
  np.testing.assert_array_equal(after[::f, ::f], _oracle(app, names, pose_after))
  assert len(driver.find_elements(By.CSS_SELECTOR, "#maps img")) == \
      len(names) * len(tuple(app.session.config.model.levels)) * 3
  assert "Traceback" not in driver.page_source


def test_bad_pose_text_is_a_sentence_in_the_page(served):
  _, driver, url = served
  driver.get(url)
  box = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{app_lib.POSE_BOX_ID} textarea"),
              what="the pose box")[0]
  _wait(lambda: box.get_attribute("value"), what="the initial pose")
  box.clear()
  box.send_keys("[[1, 2]")
  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  status = _wait(lambda: (lambda t: t if "Error" in t else None)(
      driver.find_element(By.CSS_SELECTOR, "#status").text), what="the error message")
  assert "not valid JSON" in status and "Traceback" not in driver.page_source
