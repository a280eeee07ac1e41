"""The app in a real browser: `python -m rfgen_jax.tools.app` serves a tiny run, its console line gives
the address, and headless Chromium (1400x1100) drags a joint with pointer events and presses Generate:
the page's output must change and match the model's output for the dragged pose. Also checked in the
page: every picture is whole and uncovered and every caption uncut, K = 0 is one sentence (no pop-up, no
red "Error" badges, also after switching to Upload), and a bad pose text is one sentence.

Needs Debian's `chromium` and `chromium-driver`, selenium in the interpreter that runs pytest, and gradio
(requirements-app.txt) in the interpreter that serves the app: $RFGEN_APP_PYTHON, else this interpreter
when it has gradio, else the app venv of the README (`.venv-app/bin/python`). With the README's venvs:
    apt-get install -y chromium chromium-driver
    .venv-app/bin/pip install -r requirements-app.txt selenium pytest
    .venv-app/bin/python -m pytest -q tests/test_app_browser.py
Skipped (with the reason) when any of them is missing. $CHROME_BIN and $CHROMEDRIVER override the
browser and driver paths (default: chromium and chromedriver on $PATH); $RFGEN_APP_SCREENSHOTS=DIR saves
the pages the tests check as PNGs there.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import app as app_lib
from rfgen_jax.tools import app_html
from rfgen_jax.tools import session as session_lib

from app_fixtures import ROOT, make_run

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip)")
from selenium.webdriver.chrome.options import Options  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.chrome.service import Service  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.common.by import By  # noqa: E402  pylint: disable=g-import-not-at-top
from selenium.webdriver.common.keys import Keys  # noqa: E402  pylint: disable=g-import-not-at-top

CHROME = os.environ.get("CHROME_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")


def _app_python() -> str | None:
  """The interpreter that serves the app (it needs gradio)."""
  if os.environ.get("RFGEN_APP_PYTHON"):
    return os.environ["RFGEN_APP_PYTHON"]
  if importlib.util.find_spec("gradio") is not None:
    return sys.executable
  local = os.path.join(ROOT, ".venv-app", "bin", "python")
  return local if os.path.isfile(local) else None


APP_PYTHON = _app_python()
pytestmark = [
    pytest.mark.skipif(not (CHROME and DRIVER), reason="needs Debian's chromium and chromium-driver "
                       "(apt-get install -y chromium chromium-driver)"),
    pytest.mark.skipif(APP_PYTHON is None, reason="the app needs gradio: pip install -r requirements-app.txt "
                       "here, or in .venv-app (README), or name its python in $RFGEN_APP_PYTHON"),
]
# Chromium as root, with no network: no sandbox, GPU, QUIC, first-run, background or update traffic,
# and a profile of its own.
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1400,1100")


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
  """(App of the run in this process, WebDriver, the page's address, the app's console output)."""
  workdir = str(tmp_path_factory.mktemp("browser_run"))
  make_run(workdir, "synthetic")
  app = app_lib.App(session_lib.ModelSession(workdir, batch_size=1))
  app.test_names()     # prepares the test split here first, so the server only reads it
  port = _free_port()
  log_path = os.path.join(workdir, "app_console.txt")
  with open(log_path, "w") as log:
    server = subprocess.Popen([APP_PYTHON, "-m", "rfgen_jax.tools.app", f"--workdir={workdir}",
                               f"--port={port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))

  def console():
    with open(log_path) as f:
      return f.read()

  driver = None
  try:
    def address():
      if server.poll() is not None:
        raise AssertionError(f"the app exited with status {server.returncode}:\n{console()[-3000:]}")
      match = re.search(r"^Serving .* at (http://\S+)", console(), re.MULTILINE)
      return match.group(1) if match else None
    url = _wait(address, what="the app's console line with its address")
    options = Options()
    for flag in CHROME_FLAGS + (f"--user-data-dir={tempfile.mkdtemp(prefix='rfgen_chromium_')}",):
      options.add_argument(flag)
    options.binary_location = CHROME
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield app, driver, url, console
  finally:
    if driver is not None:
      driver.quit()
    server.send_signal(signal.SIGINT)       # Ctrl+C, as a user stops it
    try:
      server.wait(timeout=30)
    except subprocess.TimeoutExpired:
      server.kill()
      server.wait()


def _screenshot(driver, name: str):
  folder = os.environ.get("RFGEN_APP_SCREENSHOTS")
  if folder:
    os.makedirs(folder, exist_ok=True)
    driver.save_screenshot(os.path.join(folder, name + ".png"))


def _open(driver, url):
  """Loads the page and waits until the first test tuple's target pose is in the editor."""
  driver.get(url)
  return _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pose-editor circle.joint"),
               what="the pose editor's joints")


def _status(driver) -> str:
  return driver.find_element(By.CSS_SELECTOR, "#status").text


def _output_image(driver, previous_src=None):
  """The output image's src (after it differs from `previous_src`) and its pixels."""
  def ready():
    imgs = driver.find_elements(By.CSS_SELECTOR, "#output-image img")
    src = imgs[0].get_attribute("src") if imgs else None
    return src if src and src != previous_src else None
  src = _wait(ready, what="the generated image")
  if src.startswith("data:"):
    data = base64.b64decode(src.split(",", 1)[1])
  else:
    with urllib.request.urlopen(src, timeout=30) as response:
      data = response.read()
  return src, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _oracle(app, names, pose):
  """The generator applied directly (inference.generate) on the test records and the pose."""
  s = app.session
  examples = [s.test_example(n) for n in names]
  batch = {"source_images": (np.stack([e[0] for e in examples]).astype(np.float32) / 127.5 - 1)[None],
           "source_poses": np.stack([s.encode_pose(e[1]) for e in examples])[None],
           "target_pose": s.encode_pose(pose)[None]}
  return visualize.to_uint8(inference.generate(s.generator, s.params, batch)[0])


def assert_same_image(got: np.ndarray, want: np.ndarray):
  """The page's image against `_oracle`'s, up to float rounding (at most one uint8 level, on at most 1%
  of the values): the server and `_oracle` run different compiled programs, whose rounding XLA does not
  promise to agree across CPU types (as tests/test_app.py, `assert_same_image`)."""
  assert got.shape == want.shape
  diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
  assert diff.max() <= 1 and diff.mean() <= 0.01, (diff.max(), np.count_nonzero(diff))


# Problems a person would see, found in the page: a picture squeezed, cut by its container, or covered
# by another element (a label, an icon) at its centre or a corner; a caption cut short.
_LAYOUT_JS = r"""
const problems = [];
const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('alt') ? "[alt='" + el.getAttribute('alt') + "']" : '');
for (const el of document.querySelectorAll(arguments[0])) {
  // Scroll the window only (a picture out of its own container's view counts as cut).
  const top = el.getBoundingClientRect().top + window.scrollY;
  window.scrollTo(0, top - window.innerHeight / 2);
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) { problems.push(name(el) + ' is not shown'); continue; }
  const fit = getComputedStyle(el).objectFit;
  if (el.tagName === 'IMG' && el.naturalWidth && fit !== 'contain' && fit !== 'scale-down' &&
      Math.abs(r.width / r.height - el.naturalWidth / el.naturalHeight) > 0.02 * el.naturalWidth / el.naturalHeight) {
    problems.push(name(el) + ' is squeezed or cropped (object-fit ' + fit + ')');
  }
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
    const b = a.getBoundingClientRect();
    if (r.left < b.left - 1 || r.top < b.top - 1 || r.right > b.right + 1 || r.bottom > b.bottom + 1) {
      problems.push(name(el) + ' is cut by ' + name(a)); break;
    }
  }
  for (const [x, y] of [[0.5, 0.5], [0.03, 0.03], [0.97, 0.03], [0.03, 0.97], [0.97, 0.97]]) {
    const hit = document.elementFromPoint(r.left + x * r.width, r.top + y * r.height);
    if (hit && hit !== el && !el.contains(hit)) {
      problems.push(name(el) + ' is covered by ' + name(hit) + " '" + (hit.textContent || '').trim().slice(0, 40) + "'");
      break;
    }
  }
}
for (const el of document.querySelectorAll(arguments[1])) {
  if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
    problems.push("caption '" + el.textContent.trim() + "' is cut");
  }
}
window.scrollTo(0, 0);
return problems;
"""
_PICTURES = ("#source-thumbs img, #maps img, #flow-wheel img, #output-image img, #pose-editor svg")
_CAPTIONS = "#source-thumbs figcaption, #maps th, #flow-wheel figcaption"

# Leaf elements reading exactly "Error": Gradio's badges on an event's outputs and its pop-up's title.
_ERROR_BADGES_JS = r"""
return Array.from(document.querySelectorAll('body *')).filter(
    e => e.children.length === 0 && e.textContent.trim() === 'Error' && e.getClientRects().length > 0).length;
"""


def test_console_prints_the_address(served):
  _, _, url, console = served
  assert re.fullmatch(r"http://127\.0\.0\.1:\d+/?", url)
  assert "Traceback" not in console()


def test_drag_a_joint_and_generate(served):
  app, driver, url, _ = served
  circles = _open(driver, url)
  box = driver.find_element(By.CSS_SELECTOR, f"#{app_html.POSE_BOX_ID} textarea")
  names, _ = app.test_tuple(0, int(app.session.config.data.num_sources))
  chips = driver.find_element(By.CSS_SELECTOR, "#source-names").text
  assert all(n in chips for n in names)

  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  _wait(lambda: "Generated" in _status(driver), what="status")
  src, before = _output_image(driver)
  f = app.display_factor()
  pose_before = np.asarray(json.loads(box.get_attribute("value")), np.float32)
  assert_same_image(before[::f, ::f], _oracle(app, names, pose_before))

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
  scale = app_html.DISPLAY_HEIGHT / app.session.image_size[0]
  np.testing.assert_allclose(pose_after[j] - pose_before[j], [25 / scale, 40 / scale], atol=0.6)
  # The editor drew the circle where the pose box says.
  cx, cy = float(joint.get_attribute("cx")), float(joint.get_attribute("cy"))
  np.testing.assert_allclose([cy - 0.5, cx - 0.5], pose_after[j], atol=0.06)

  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  _, after = _output_image(driver, previous_src=src)
  assert not np.array_equal(after, before)
  assert_same_image(after[::f, ::f], _oracle(app, names, pose_after))
  assert len(driver.find_elements(By.CSS_SELECTOR, "#maps img")) == \
      len(names) * len(tuple(app.session.config.model.levels)) * 3
  assert "Traceback" not in driver.page_source


def test_pictures_are_whole_uncovered_and_captioned(served):
  """The source thumbnails, the inner maps, the colour wheel, the editor and the output, after Generate
  at 1400x1100: none squeezed, cropped or covered; no caption cut ("s1 1/8 occl...")."""
  app, driver, url, _ = served
  _open(driver, url)
  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  _wait(lambda: "Generated" in _status(driver), what="status")
  k = int(app.session.config.data.num_sources)
  _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#maps img")) == k * 9, what="the inner maps")
  _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#source-thumbs img")) == k, what="the thumbnails")
  _screenshot(driver, "generated")
  assert driver.execute_script(_LAYOUT_JS, _PICTURES, _CAPTIONS) == []
  thumbs = driver.find_elements(By.CSS_SELECTOR, "#source-thumbs figcaption")
  names, _ = app.test_tuple(0, k)
  assert [t.text for t in thumbs] == names


def test_k0_is_one_sentence_without_error_badges(served):
  _, driver, url, _ = served
  _open(driver, url)
  k_box = driver.find_element(By.CSS_SELECTOR, "#k-number input")
  k_box.send_keys(Keys.CONTROL, "a")
  k_box.send_keys("0", Keys.TAB)
  driver.find_element(By.CSS_SELECTOR, "#load-tuple").click()
  status = _wait(lambda: (lambda t: t if "Error" in t else None)(_status(driver)), what="the error message")
  _screenshot(driver, "k0")
  assert "K must be at least 1 (got 0)" in status and len(status.splitlines()) == 1
  assert driver.execute_script(_ERROR_BADGES_JS) == 0
  driver.find_element(By.XPATH, "//*[@id='source-mode']//label[contains(., 'Upload')]").click()
  _wait(lambda: _status(driver) == "", what="the status to clear on switching to Upload")
  _screenshot(driver, "k0_upload")
  assert driver.execute_script(_ERROR_BADGES_JS) == 0
  assert driver.find_elements(By.CSS_SELECTOR, "#source-thumbs img") == []


def test_bad_pose_text_is_a_sentence_in_the_page(served):
  _, driver, url, _ = served
  _open(driver, url)
  box = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{app_html.POSE_BOX_ID} textarea"),
              what="the pose box")[0]
  _wait(lambda: box.get_attribute("value"), what="the initial pose")
  box.clear()
  box.send_keys("[[1, 2]")
  driver.find_element(By.CSS_SELECTOR, "#generate").click()
  status = _wait(lambda: (lambda t: t if "Error" in t else None)(_status(driver)), what="the error message")
  assert "not valid JSON" in status and "Traceback" not in driver.page_source
  assert driver.execute_script(_ERROR_BADGES_JS) == 0
