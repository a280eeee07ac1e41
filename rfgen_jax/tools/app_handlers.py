"""What the app does (`rfgen_jax/tools/app.py`), as plain functions of strings, numbers and arrays (no
Gradio types): the pose text box parsed and written, sources from the test set or from uploads (with
their keypoints from a file or detected in the keypoints environment), generation and its inner maps.

Images are (H, W, 3) uint8 at the model's image size (H, W) unless said otherwise; poses are (J, 2)
`(y, x)` pixels of that size (-1 = missing), or for camera models the raw pose (a flat vector).
Every input mistake raises `UserError`, whose message is the sentence shown in the page.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Sequence

import numpy as np

from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.data import keypoints as keypoints_lib
from rfgen_jax.tools import generate as generate_tool
from rfgen_jax.tools import session as session_lib
from rfgen_jax.tools.app_html import DISPLAY_HEIGHT
from rfgen_jax.tools.app_html import editor_html

class UserError(errors.BadInputError):
  """An error shown in the page as a sentence (on the command line: one line, exit status 2;
  `rfgen_jax/errors.py`)."""


# ------------------------------------------------------------------------------------------ pose text
def pose_to_text(pose: np.ndarray) -> str:
  """A raw pose as the JSON text of the pose box: [[y, x], ...] (1 decimal) or a flat list."""
  p = np.asarray(pose, np.float64)
  if p.ndim == 2:
    return json.dumps([[round(float(y), 1), round(float(x), 1)] for y, x in p])
  return json.dumps([round(float(v), 4) for v in p.reshape(-1)])


def text_to_pose(text: str, pose_kind: str, num_points: int) -> np.ndarray:
  """Parses the pose box. Raises UserError with a sentence naming what is wrong."""
  if not text or not text.strip():
    raise UserError("The target pose is empty: choose a test record as target pose.")
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(f"The target pose is not valid JSON ({e.msg} at character {e.pos}).") from None
  try:
    pose = np.asarray(value, np.float32)
  except (TypeError, ValueError):
    raise UserError("The target pose must be a list of numbers or of [y, x] pairs.") from None
  if pose_kind == "camera":
    if pose.ndim != 1:
      raise UserError("This camera-pose model takes the target pose as a flat list of numbers, e.g. "
                      "[azimuth index, elevation].")
    return pose
  if pose.shape != (num_points, 2):
    raise UserError(f"The target pose must be {num_points} [y, x] pairs; got shape {list(pose.shape)}.")
  if not np.isfinite(pose).all():
    raise UserError("The target pose holds NaN or infinity; use [-1, -1] for a missing joint.")
  pose = pose.copy()
  pose[(pose < 0).any(axis=-1)] = -1.0
  return pose


# ------------------------------------------------------------------------------------------ the app logic
class App:
  """The handlers behind the page; plain functions of strings, numbers and arrays (no Gradio types).

  Args:
    session: a `session.ModelSession`.
    keypoints_python: the keypoints environment's python for detection on uploads (None: not offered).
  """

  def __init__(self, session, keypoints_python: str | None = None):
    self.session = session
    self.keypoints_python = keypoints_python
    self.kind = session.pose_kind
    config = session.config
    self.num_points = int(config.data.num_landmarks if self.kind == "landmarks"
                          else config.data.num_keypoints)
    self.limbs = keypoints_lib.LIMBS if self.kind == "keypoints" and self.num_points == 18 else ()

  # ------------------------------------------------------------ choices
  def test_names(self) -> list[str]:
    return self.session.test_names()

  def test_tuple(self, index, k) -> tuple[list[str], str]:
    """(source names, target name) of test tuple `index` with K sources; UserError on bad numbers."""
    try:
      index, k = int(index), int(k)
    except (TypeError, ValueError):
      raise UserError("The test tuple and K must be whole numbers.") from None
    if k < 1:
      raise UserError(f"K must be at least 1 (got {k}).")
    try:
      return self.session.test_tuple(index, k)
    except ValueError as e:
      raise UserError(str(e)) from None

  def target_from_test(self, name: str) -> tuple[str, str]:
    """(editor HTML, pose text) for the test record `name` as target."""
    if not name:
      raise UserError("Choose a test record as target pose.")
    try:
      image, pose = self.session.test_example(name)
    except KeyError as e:
      raise UserError(e.args[0]) from None
    return self.editor(image, pose), pose_to_text(pose)

  def editor(self, image, pose) -> str:
    return editor_html(image, pose if self.kind != "camera" else None, self.session.image_size, self.limbs)

  # ------------------------------------------------------------ sources
  def sources_from_test(self, names: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    names = [n for n in (names or []) if n]
    if not names:
      raise UserError("No source images chosen (K = 0): pick at least one test record as a source.")
    try:
      examples = [self.session.test_example(n) for n in names]
    except KeyError as e:
      raise UserError(e.args[0]) from None
    return [e[0] for e in examples], [e[1] for e in examples]

  def sources_from_upload(self, image_paths: Sequence[str], keypoints_path: str | None,
                          detect: bool = False, fit: str = "pad") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Uploaded photos brought to the model's frame with their keypoints (file, or detected)."""
    if self.kind != "keypoints":
      raise UserError(f"Uploads need a body-keypoint model; this one has pose kind {self.kind!r}. "
                      "Use the test set.")
    paths = [p for p in (image_paths or []) if p]
    if not paths:
      raise UserError("No source images uploaded (K = 0).")
    images = [self._read_upload(p) for p in paths]     # a file that is not an image is named first
    if detect:
      keypoints_path = self.detect_keypoints(paths)
    if not keypoints_path:
      raise UserError("Uploaded photos need keypoints: upload an annotation CSV or keypoint JSON naming "
                      "each photo" + (", or tick 'detect keypoints'." if self.keypoints_python else
                                      " (keypoint detection needs the keypoints environment, "
                                      "requirements-keypoints.txt)."))
    try:
      table = generate_tool.read_keypoints_file(keypoints_path, self.num_points)
      kps = [generate_tool._lookup(table, p, os.path.basename(keypoints_path), "source image").keypoints  # pylint: disable=protected-access
             for p in paths]
      inputs = inference.prepare_inputs(self.session.config, images, kps, kps[0],
                                        target_size=images[0].shape[:2],
                                        names=[os.path.basename(p) for p in paths], fit=fit)
    except (FileNotFoundError, KeyError, ValueError) as e:
      raise UserError(e.args[0] if isinstance(e, KeyError) and e.args else str(e)) from None
    return ([session_lib.to_uint8(im) for im in inputs["source_images"][0]],
            list(inputs["source_keypoints"][0]))

  @staticmethod
  def _read_upload(path: str) -> np.ndarray:
    """(H, W, 3) uint8 of an uploaded photo; UserError naming the file if it is not a readable image."""
    try:
      return generate_tool.read_image(path)
    except (FileNotFoundError, ValueError):
      raise UserError(f"The uploaded file {os.path.basename(path)!r} is not an image that can be read: "
                      "upload photos (PNG, JPEG, ...).") from None

  def detect_keypoints(self, paths: Sequence[str]) -> str:
    """Runs rfgen_jax.tools.pose_keypoints in the keypoints environment; returns the CSV path."""
    if not self.keypoints_python:
      raise UserError("Keypoint detection needs the keypoints environment (requirements-keypoints.txt); "
                      "start the app with --keypoints_python=PATH/bin/python, or upload a keypoint file.")
    folder = tempfile.mkdtemp(prefix="rfgen_app_detect_")
    for p in paths:
      os.symlink(os.path.abspath(p), os.path.join(folder, os.path.basename(p)))
    out = os.path.join(folder, "annotations.csv")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([self.keypoints_python, "-m", "rfgen_jax.tools.pose_keypoints", "--images",
                             folder, "--out", out], cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not os.path.isfile(out):
      last = (result.stderr.strip().splitlines() or ["no message"])[-1]
      raise UserError(f"Keypoint detection failed: {last}")
    return out

  # ------------------------------------------------------------ generation
  def generate(self, source_images, source_poses, pose_text: str) -> tuple[np.ndarray, list, str]:
    """(generated uint8 (H*f, W*f, 3) scaled up by `display_factor` f, [(picture, caption)] of the inner
    maps, status sentence)."""
    if not source_images:
      raise UserError("No source images (K = 0).")
    target = text_to_pose(pose_text, self.kind, self.num_points)
    try:
      out = self.session.run(source_images, source_poses, [target])
    except ValueError as e:
      raise UserError(str(e)) from None
    image = self.display(session_lib.to_uint8(out["image"][0]))
    return image, self.map_gallery(out), (f"Generated from K = {len(source_images)} source(s) with "
                                          f"{self.session.description}.")

  def display_factor(self) -> int:
    """The integer upscaling (nearest) of the generated image in the page."""
    return max(1, DISPLAY_HEIGHT // self.session.image_size[0])

  def display(self, image: np.ndarray) -> np.ndarray:
    """The generated image scaled up `display_factor` times (nearest: `[::f, ::f]` gives it back)."""
    f = self.display_factor()
    return np.repeat(np.repeat(image, f, axis=0), f, axis=1)

  def map_gallery(self, out: dict) -> list[tuple[np.ndarray, str]]:
    """[(uint8 picture, caption "s<k> 1/<level> <kind>")]: per source, per level (coarse to fine): flow,
    occlusion, attention, each resized (nearest) to an integer multiple of the image size (a quarter of
    DISPLAY_HEIGHT high, or the image size when that is higher: a table of 9 x K fits the page)."""
    h, w = self.session.image_size
    scale = max(1, DISPLAY_HEIGHT // (4 * h))
    maps = visualize.inner_maps(out, 0, (h * scale, w * scale))
    levels = tuple(self.session.config.model.levels)
    items = []
    for s in range(len(maps["flow"][0])):
      for li, level in enumerate(levels):
        for kind in visualize.MAP_KINDS:
          items.append((maps[kind][li][s], f"s{s + 1} 1/{level} {kind}"))
    return items


def describe(exc: BaseException) -> str:
  """One sentence for the page from any exception (no traceback)."""
  if isinstance(exc, errors.UserError):     # the app's own, or a library's check of an input
    return str(exc)
  message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
  return f"Could not generate ({type(exc).__name__}): {message}".strip()
