r"""An interactive app on a trained checkpoint (Gradio): pick sources, edit a pose, generate, see inner maps.

    python -m rfgen_jax.tools.app --workdir=RUN [--config=configs/x.py] [--step N] [--port 7860]
        [--host 127.0.0.1] [--keypoints_python PATH] [--share]

Needs `pip install -r requirements-app.txt` (gradio). In the page:

1. Sources: K test records (`Test set`: pick names, or load the i-th fixed evaluation tuple for a K), or
   `Upload`: photos with an annotation CSV / keypoint JSON (as `python -m rfgen_jax.tools.generate`), or
   with keypoints detected by the keypoints environment (requirements-keypoints.txt) when installed.
   Any K >= 1.
2. Target pose: a test record's pose, shown as a skeleton over that record's image; drag a joint with
   the mouse (or a pen / finger: pointer events) to move it. The pose is also a JSON text box: a list of
   [y, x] pairs in pixels of the model's image size ([-1, -1] = missing), or for camera models the
   raw pose (e.g. [azimuth index, elevation]), which can be typed. Camera-pose and landmark
   checkpoints take their target poses from the test set (landmarks can be dragged too).
3. Generate: the generated image (at the model's size; PNG), and per source and fusion level (coarse to
   fine) the flow (colour wheel: hue = direction, saturation = length; the legend is shown), the
   occlusion (white = not visible in that source) and the attention weight (white = 1; over the K
   sources they sum to 1) maps (`rfgen_jax.visualize.inner_maps`).

The console prints the page's address once it is served. Errors (a bad JSON pose, a file that is not an
image, missing keypoints for an upload, K = 0) appear in the page as one sentence; a port in use ends
the command with one sentence and exit status 2. The handlers are plain functions of `App` (tested
without a browser in tests/test_app.py); the page's pictures (source thumbnails, inner maps, the
colour wheel) are HTML styled by app_page.css, and the editor's dragging is app_page.js (the browser
test, tests/test_app_browser.py, runs the command and drags a joint in headless Chromium).
"""
from __future__ import annotations

import argparse
import base64
import errno
import html
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import session as session_lib

DISPLAY_HEIGHT = 256      # pixels of the editor and the output image in the page
EDITOR_ID = "pose-editor"
POSE_BOX_ID = "pose-json"


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


# ------------------------------------------------------------------------------------------ editor
def _png_data_url(image: np.ndarray) -> str:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def editor_html(image: np.ndarray | None, pose: np.ndarray | None, image_size: tuple[int, int],
                limbs: Sequence[tuple[int, int]] = ()) -> str:
  """The SVG pose editor: the image (dimmed) with a draggable circle per present joint and the limbs.

  Coordinates are the model's pixels (viewBox = W x H, pixel centres at integers, so a joint at
  (y, x) is drawn at (x + 0.5, y + 0.5)); the page script (app_page.js) moves circles and limbs while
  dragging and writes the pose box on release.
  """
  h, w = image_size
  if pose is None or np.ndim(pose) != 2:
    return (f"<div id='{EDITOR_ID}' data-editable='0'><p>No editable pose: this model's target pose is "
            "set in the text box below (from a test record).</p></div>")
  from rfgen_jax.data import keypoints as keypoints_lib  # pylint: disable=import-outside-toplevel
  pose = np.asarray(pose, np.float64)
  scale = DISPLAY_HEIGHT / h
  radius = max(0.6, h / 48)
  parts = [f"<div id='{EDITOR_ID}' data-editable='1' data-joints='{len(pose)}'>",
           f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w * scale:.0f}' "
           f"height='{h * scale:.0f}' style='touch-action:none;background:#000;user-select:none'>"]
  if image is not None:
    parts.append(f"<image href='{_png_data_url(image)}' x='0' y='0' width='{w}' height='{h}' "
                 "opacity='0.55' style='image-rendering:pixelated' preserveAspectRatio='none'/>")
  colours = keypoints_lib.COLORS
  for i, (a, b) in enumerate(limbs):
    ya, xa = pose[a]
    yb, xb = pose[b]
    hidden = "" if min(ya, xa, yb, xb) >= 0 else " visibility='hidden'"
    r, g, bl = colours[i % len(colours)]
    parts.append(f"<line data-a='{a}' data-b='{b}' x1='{xa + 0.5}' y1='{ya + 0.5}' x2='{xb + 0.5}' "
                 f"y2='{yb + 0.5}' stroke='rgb({r},{g},{bl})' stroke-width='{radius * 0.6:.2f}'{hidden}/>")
  for j, (y, x) in enumerate(pose):
    if y < 0 or x < 0:
      continue
    r, g, bl = colours[j % len(colours)]
    parts.append(f"<circle class='joint' data-joint='{j}' cx='{x + 0.5}' cy='{y + 0.5}' r='{radius:.2f}' "
                 f"fill='rgb({r},{g},{bl})' stroke='#fff' stroke-width='{radius * 0.25:.2f}' "
                 "style='cursor:grab'/>")
  parts.append("</svg></div>")
  return "".join(parts)


PAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PAGE_JS = os.path.join(PAGE_DIR, "app_page.js")      # the editor's dragging (ids EDITOR_ID, POSE_BOX_ID)
PAGE_CSS = os.path.join(PAGE_DIR, "app_page.css")    # the pictures drawn as HTML below, whole and captioned


def page_head() -> str:
  """The <script> of the page's <head>: app_page.js."""
  with open(PAGE_JS, encoding="utf-8") as f:
    return "<script>\n" + f.read() + "</script>\n"


def page_css() -> str:
  with open(PAGE_CSS, encoding="utf-8") as f:
    return f.read()


# ------------------------------------------------------------------------------------------ pictures
def _img(image: np.ndarray, height: int, title: str = "") -> str:
  """An <img> of `image` scaled (nearest, in the browser) by the integer factor that makes it at most
  `height` pixels high (at least 1x)."""
  h, w = np.shape(image)[:2]
  f = max(1, height // h)
  alt = html.escape(title, quote=True)
  return (f"<img src='{_png_data_url(image)}' width='{w * f}' height='{h * f}' alt='{alt}' "
          f"title='{alt}'/>")


def pictures_html(images: Sequence[np.ndarray], captions: Sequence[str], elem_id: str,
                  height: int = DISPLAY_HEIGHT // 2) -> str:
  """Pictures side by side (wrapping), each whole with its caption under it (app_page.css)."""
  figures = [f"<figure>{_img(im, height, c)}<figcaption>{html.escape(c)}</figcaption></figure>"
             for im, c in zip(images, captions)]
  return f"<div id='{elem_id}' class='rfgen-pictures'>{''.join(figures)}</div>"


def maps_html(items: Sequence[tuple[np.ndarray, str]], num_sources: int, levels: Sequence[int],
              height: int = DISPLAY_HEIGHT // 4) -> str:
  """The inner maps (`App.map_gallery`'s items, source by source, level by level, kind by kind) as a
  table: a row per source, a column group per level (coarse to fine) headed "1/<level>", a column per
  kind; every picture whole, its full caption in its alt and title text."""
  kinds = visualize.MAP_KINDS
  head1 = "<th></th>" + "".join(f"<th colspan='{len(kinds)}' class='level-start'>level 1/{lv}</th>"
                                for lv in levels)
  head2 = "<th></th>" + "".join(f"<th{' class=level-start' if i == 0 else ''}>{kind}</th>"
                                for _ in levels for i, kind in enumerate(kinds))
  rows = []
  per_source = len(levels) * len(kinds)
  for s in range(num_sources):
    cells = [f"<td{' class=level-start' if i % len(kinds) == 0 else ''}>{_img(im, height, caption)}</td>"
             for i, (im, caption) in enumerate(items[s * per_source:(s + 1) * per_source])]
    rows.append(f"<tr><th scope='row'>source {s + 1}</th>{''.join(cells)}</tr>")
  return (f"<div id='maps' class='rfgen-maps-scroll'><table class='rfgen-maps'><thead><tr>{head1}</tr>"
          f"<tr>{head2}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def legend_html() -> str:
  """The flow colour wheel with its caption under it."""
  wheel = visualize.resize_nearest(visualize.flow_wheel(33), (99, 99))
  caption = "Flow colours: hue = direction, saturation = length (white: no motion)"
  return (f"<div id='flow-wheel' class='rfgen-legend'><figure>{_img(wheel, 99, caption)}"
          f"<figcaption>{caption}</figcaption></figure></div>")


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
    from rfgen_jax.data import keypoints as keypoints_lib  # pylint: disable=import-outside-toplevel
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
    from rfgen_jax.tools import generate as generate_tool  # pylint: disable=import-outside-toplevel
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
    from rfgen_jax.tools import generate as generate_tool  # pylint: disable=import-outside-toplevel
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
    return image, self.map_gallery(out), (f"Generated from K = {len(source_images)} source(s) with the "
                                          f"checkpoint of step {self.session.step}.")

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


# ------------------------------------------------------------------------------------------ the page
def build_ui(app: App):
  """The Gradio Blocks of the page (style and script: `launch`)."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  names = app.test_names()
  kind = app.kind
  h, w = app.session.image_size
  levels = tuple(app.session.config.model.levels)
  with gr.Blocks(title="rfgen_jax") as demo:
    gr.Markdown(f"### Multi-source pose-guided generation: {app.session.config.data.name} model, "
                f"step {app.session.step}, {h}x{w}, pose kind {kind}")
    with gr.Row():
      with gr.Column():
        mode = gr.Radio(["Test set", "Upload"] if kind == "keypoints" else ["Test set"], value="Test set",
                        label="Sources from", elem_id="source-mode")
        with gr.Row():
          tuple_index = gr.Number(value=0, precision=0, label="Test tuple", elem_id="tuple-index")
          # No `minimum`: Gradio would reject K = 0 itself, with a pop-up and an "Error" badge on every
          # output of the event; App.test_tuple answers with one sentence instead.
          k_number = gr.Number(value=int(app.session.config.data.num_sources), precision=0,
                               label="K (sources)", elem_id="k-number")
          load_tuple = gr.Button("Load test tuple", elem_id="load-tuple")
        sources = gr.Dropdown(names, multiselect=True, label="Source images (test records; any K)",
                              elem_id="source-names")
        uploads = gr.File(file_count="multiple", file_types=["image"], label="Upload source photos",
                          visible=False, type="filepath")
        keypoint_file = gr.File(file_count="single", file_types=[".csv", ".json"], visible=False,
                                label="Their keypoints (annotation CSV or JSON)", type="filepath")
        detect = gr.Checkbox(False, label="Detect keypoints (keypoints environment)", visible=False,
                             interactive=app.keypoints_python is not None)
        source_pictures = gr.HTML(pictures_html([], [], "source-thumbs"), elem_id="sources-box")
      with gr.Column():
        target_name = gr.Dropdown(names, label="Target pose from test record", elem_id="target-name")
        editor = gr.HTML(f"<div id='{EDITOR_ID}'><p>Choose a target pose.</p></div>",
                         label="Target pose (drag the joints)", elem_id="editor-box")
        pose_box = gr.Textbox(label="Target pose (JSON: [y, x] per joint in model pixels; -1 missing)"
                              if kind != "camera" else "Target pose (JSON: the raw camera pose)",
                              lines=2, elem_id=POSE_BOX_ID)
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
      with gr.Column():
        gr.Markdown("**Generated**")
        output = gr.Image(show_label=False, type="numpy", format="png", height=DISPLAY_HEIGHT,
                          elem_id="output-image", interactive=False, buttons=["download"])
        status = gr.Markdown("", elem_id="status")
    gr.Markdown("**Inner maps** per source and fusion level (coarse to fine): flow, occlusion (white: not "
                "visible in that source), attention (white: 1; over the sources they sum to 1)")
    with gr.Row():
      with gr.Column(scale=1, min_width=150):
        gr.HTML(legend_html(), elem_id="legend-box")
      with gr.Column(scale=8):
        maps = gr.HTML("<div id='maps'></div>", elem_id="maps-box")

    def on_mode(m, names_):
      up = m == "Upload"     # the thumbnails show the mode's sources: the uploads once generated
      return (gr.update(visible=up), gr.update(visible=up), gr.update(visible=up),
              gr.update(visible=not up), "", on_sources([] if up else names_))

    def on_sources(names_):
      try:
        images, _ = app.sources_from_test(names_)
        return pictures_html(images, names_, "source-thumbs")
      except Exception:  # pylint: disable=broad-except  (the error is reported on Generate)
        return pictures_html([], [], "source-thumbs")

    mode.change(on_mode, [mode, sources], [uploads, keypoint_file, detect, sources, status, source_pictures])
    sources.change(on_sources, sources, source_pictures)

    def on_load_tuple(i, k):
      try:
        src, tgt = app.test_tuple(i, k)
        html_, text = app.target_from_test(tgt)
        return gr.update(value=src), gr.update(value=tgt), html_, text, ""
      except Exception as e:  # pylint: disable=broad-except  (shown in the page)
        return gr.update(), gr.update(), gr.update(), gr.update(), "**Error:** " + describe(e)

    load_tuple.click(on_load_tuple, [tuple_index, k_number],
                     [sources, target_name, editor, pose_box, status])

    def on_target(name):
      if not name:
        return gr.update(), gr.update(), ""
      try:
        html_, text = app.target_from_test(name)
        return html_, text, ""
      except Exception as e:  # pylint: disable=broad-except
        return gr.update(), gr.update(), "**Error:** " + describe(e)

    target_name.input(on_target, target_name, [editor, pose_box, status])

    def on_generate(m, names_, upload_files, kp_file, detect_, text):
      try:
        if m == "Upload":
          paths = [f if isinstance(f, str) else getattr(f, "name", None) for f in (upload_files or [])]
          kp = kp_file if isinstance(kp_file, str) or kp_file is None else getattr(kp_file, "name", None)
          images, poses = app.sources_from_upload(paths, kp, bool(detect_))
          shown = pictures_html(images, [os.path.basename(p) for p in paths if p], "source-thumbs")
        else:
          images, poses = app.sources_from_test(names_)
          shown = gr.update()
        image, gallery, message = app.generate(images, poses, text)
        return image, maps_html(gallery, len(images), levels), message, shown
      except Exception as e:  # pylint: disable=broad-except  (shown in the page, never a traceback)
        return gr.update(), gr.update(), "**Error:** " + describe(e), gr.update()

    generate.click(on_generate, [mode, sources, uploads, keypoint_file, detect, pose_box],
                   [output, maps, status, source_pictures])
    demo.load(on_load_tuple, [tuple_index, k_number], [sources, target_name, editor, pose_box, status])
  return demo


def port_problem(host: str, port: int) -> str | None:
  """Why the app cannot serve on host:port (one sentence), or None when it can."""
  if not 1 <= port <= 65535:
    return f"--port={port} is not a port number (1 to 65535)."
  with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)    # as the server binds (TIME_WAIT is free)
    try:
      s.bind((host, port))
    except socket.gaierror:
      return f"--host={host} is not an address of this machine (e.g. 127.0.0.1, or 0.0.0.0 for all)."
    except OSError as e:
      if e.errno == errno.EADDRINUSE:
        return (f"Port {port} on {host} is in use (another server is listening there): pass another "
                "--port, or leave --port out to take the next free one from 7860.")
      return f"Cannot serve on {host}:{port} ({e.strerror or e}): pass another --host or --port."
  return None


def launch(app: App, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           prevent_thread_lock: bool = False, announce=None):
  """Builds and launches the page; returns the Gradio Blocks (with `prevent_thread_lock`, at once).

  `announce(url)` is called with the page's local address (and again with the public one with
  `share`) once the server is up; `main` prints it."""
  demo = build_ui(app)
  demo.queue(default_concurrency_limit=1)
  demo.launch(server_name=host, server_port=port, share=share, head=page_head(), css=page_css(),
              prevent_thread_lock=True, show_error=False, quiet=True, ssr_mode=False)
  if announce is not None:
    announce(demo.local_url)
    if share and demo.share_url:
      announce(demo.share_url)
  if not prevent_thread_lock:
    demo.block_thread()
  return demo


@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.app",
                                   description="Interactive app on a trained checkpoint.")
  parser.add_argument("--workdir", required=True, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--config", default=None, help="config spec; default: <workdir>/config.json")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: all)")
  parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or next free)")
  parser.add_argument("--share", action="store_true", help="a public Gradio link")
  parser.add_argument("--keypoints_python", default=None,
                      help="python of the keypoints environment (default: $RFGEN_KEYPOINTS_PYTHON or "
                           "~/.venvs/rfgen-keypoints/bin/python when present)")
  args = parser.parse_args(argv)
  problem = port_problem(args.host, args.port) if args.port is not None else None
  if problem:       # before the model is loaded: a busy port is known at once
    raise errors.BadInputError(problem)
  try:
    import gradio  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    raise errors.MissingDependencyError("The app needs gradio: pip install -r requirements-app.txt (README, "
                                        "\"Interactive app, animations and inner maps\").") from None
  from rfgen_jax.tools import generate as generate_tool  # pylint: disable=import-outside-toplevel
  config = generate_tool.load_config(args.config, args.workdir)
  session = session_lib.ModelSession(args.workdir, config, args.step, batch_size=1)
  app = App(session, args.keypoints_python or session_lib.default_keypoints_python())
  app.test_names()    # opens the test split now, so a missing data set is reported before serving

  def announce(url):
    print(f"Serving {args.workdir} (step {session.step}) at {url}  (Ctrl+C stops it)", flush=True)

  try:
    launch(app, args.host, args.port, args.share, announce=announce)
  except OSError as e:   # the port was taken between the check above and the launch
    raise errors.BadInputError(f"Cannot serve on {args.host}:{args.port or 'a port from 7860'} "
                               f"({cli.one_line(e)}): pass another --port.") from None
  return 0


if __name__ == "__main__":
  sys.exit(main())
