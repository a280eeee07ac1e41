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

Errors (a bad JSON pose, missing keypoints for an upload, K = 0) appear in the page as one sentence.
The handlers are plain functions of `App` (tested without a browser in tests/test_app.py; the browser
test, tests/test_app_browser.py, drags a joint in headless Chromium).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image

from rfgen_jax import inference
from rfgen_jax import visualize
from rfgen_jax.tools import session as session_lib

DISPLAY_HEIGHT = 256      # pixels of the editor and the output image in the page
EDITOR_ID = "pose-editor"
POSE_BOX_ID = "pose-json"


class UserError(ValueError):
  """An error shown in the page as a sentence."""


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
  (y, x) is drawn at (x + 0.5, y + 0.5)); the page script (EDITOR_JS) moves circles and limbs while
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


EDITOR_JS = """
<script>
(function () {
  // Dragging joints of the pose editor (rfgen_jax/tools/app.py, editor_html). Event delegation on the
  // document, so it keeps working when Gradio re-renders the editor's HTML.
  let drag = null;
  function svgPoint(svg, event) {
    const pt = svg.createSVGPoint(); pt.x = event.clientX; pt.y = event.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function poseBox() { return document.querySelector('#POSE_BOX_ID textarea, #POSE_BOX_ID input'); }
  function move(circle, p) {
    const svg = circle.ownerSVGElement, vb = svg.viewBox.baseVal;
    const x = Math.min(Math.max(p.x, 0), vb.width - 1e-3), y = Math.min(Math.max(p.y, 0), vb.height - 1e-3);
    circle.setAttribute('cx', x); circle.setAttribute('cy', y);
    const j = circle.dataset.joint;
    svg.querySelectorAll("line[data-a='" + j + "']").forEach(l => { l.setAttribute('x1', x); l.setAttribute('y1', y); });
    svg.querySelectorAll("line[data-b='" + j + "']").forEach(l => { l.setAttribute('x2', x); l.setAttribute('y2', y); });
  }
  function commit(circle) {
    const box = poseBox(); if (!box) return;
    let pose; try { pose = JSON.parse(box.value); } catch (e) { return; }
    const j = Number(circle.dataset.joint);
    // The SVG draws pixel (y, x) at (x + 0.5, y + 0.5).
    pose[j] = [Math.round((Number(circle.getAttribute('cy')) - 0.5) * 10) / 10,
               Math.round((Number(circle.getAttribute('cx')) - 0.5) * 10) / 10];
    box.value = JSON.stringify(pose);
    box.dispatchEvent(new Event('input', { bubbles: true }));
    box.dispatchEvent(new Event('change', { bubbles: true }));
  }
  document.addEventListener('pointerdown', function (e) {
    const c = e.target.closest && e.target.closest('#EDITOR_ID circle.joint');
    if (!c) return;
    e.preventDefault(); drag = c; c.style.cursor = 'grabbing';
  });
  document.addEventListener('pointermove', function (e) {
    if (!drag) return; e.preventDefault(); move(drag, svgPoint(drag.ownerSVGElement, e));
  });
  document.addEventListener('pointerup', function (e) {
    if (!drag) return; const c = drag; drag = null; c.style.cursor = 'grab';
    move(c, svgPoint(c.ownerSVGElement, e)); commit(c);
  });
})();
</script>
""".replace("POSE_BOX_ID", POSE_BOX_ID).replace("EDITOR_ID", EDITOR_ID)


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
    if detect:
      keypoints_path = self.detect_keypoints(paths)
    if not keypoints_path:
      raise UserError("Uploaded photos need keypoints: upload an annotation CSV or keypoint JSON naming "
                      "each photo" + (", or tick 'detect keypoints'." if self.keypoints_python else
                                      " (keypoint detection needs the keypoints environment, "
                                      "requirements-keypoints.txt)."))
    try:
      table = generate_tool.read_keypoints_file(keypoints_path, self.num_points)
      images = [generate_tool.read_image(p) for p in paths]
      kps = [generate_tool._lookup(table, p, os.path.basename(keypoints_path), "source image").keypoints  # pylint: disable=protected-access
             for p in paths]
      inputs = inference.prepare_inputs(self.session.config, images, kps, kps[0],
                                        target_size=images[0].shape[:2],
                                        names=[os.path.basename(p) for p in paths], fit=fit)
    except (FileNotFoundError, KeyError, ValueError) as e:
      raise UserError(e.args[0] if isinstance(e, KeyError) and e.args else str(e)) from None
    return ([session_lib.to_uint8(im) for im in inputs["source_images"][0]],
            list(inputs["source_keypoints"][0]))

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
    occlusion, attention, each resized (nearest) to an integer multiple of the image size."""
    h, w = self.session.image_size
    scale = max(1, DISPLAY_HEIGHT // (2 * h))
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
  if isinstance(exc, UserError):
    return str(exc)
  message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
  return f"Could not generate ({type(exc).__name__}): {message}".strip()


# ------------------------------------------------------------------------------------------ the page
def build_ui(app: App):
  """The Gradio Blocks of the page."""
  import gradio as gr  # pylint: disable=import-outside-toplevel
  names = app.test_names()
  kind = app.kind
  h, w = app.session.image_size
  with gr.Blocks(title="rfgen_jax") as demo:
    gr.Markdown(f"### Multi-source pose-guided generation: {app.session.config.data.name} model, "
                f"step {app.session.step}, {h}x{w}, pose kind {kind}")
    with gr.Row():
      with gr.Column():
        mode = gr.Radio(["Test set", "Upload"] if kind == "keypoints" else ["Test set"], value="Test set",
                        label="Sources from", elem_id="source-mode")
        with gr.Row():
          tuple_index = gr.Number(value=0, precision=0, label="Test tuple", elem_id="tuple-index")
          k_number = gr.Number(value=int(app.session.config.data.num_sources), precision=0, minimum=1,
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
        source_gallery = gr.Gallery(label="Sources", columns=4, height=DISPLAY_HEIGHT // 2 + 40)
      with gr.Column():
        target_name = gr.Dropdown(names, label="Target pose from test record", elem_id="target-name")
        editor = gr.HTML(f"<div id='{EDITOR_ID}'><p>Choose a target pose.</p></div>",
                         label="Target pose (drag the joints)", elem_id="editor-box")
        pose_box = gr.Textbox(label="Target pose (JSON: [y, x] per joint in model pixels; -1 missing)"
                              if kind != "camera" else "Target pose (JSON: the raw camera pose)",
                              lines=2, elem_id=POSE_BOX_ID)
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
      with gr.Column():
        output = gr.Image(label="Generated", type="numpy", format="png", height=DISPLAY_HEIGHT,
                          elem_id="output-image", interactive=False)
        status = gr.Markdown("", elem_id="status")
    legend = visualize.resize_nearest(visualize.flow_wheel(33), (99, 99))
    with gr.Row():
      with gr.Column(scale=1, min_width=140):
        gr.Image(legend, label="Flow colour wheel (direction: hue, length: saturation)", height=130,
                 interactive=False)
      with gr.Column(scale=6):
        maps = gr.Gallery(label="Inner maps: a row per source; per level (coarse to fine) flow | "
                          "occlusion | attention", columns=3 * len(tuple(app.session.config.model.levels)),
                          elem_id="maps", object_fit="contain")

    def on_mode(m):
      up = m == "Upload"
      return (gr.update(visible=up), gr.update(visible=up), gr.update(visible=up),
              gr.update(visible=not up))

    mode.change(on_mode, mode, [uploads, keypoint_file, detect, sources])

    def on_load_tuple(i, k):
      try:
        src, tgt = app.test_tuple(i, k)
        html, text = app.target_from_test(tgt)
        return gr.update(value=src), gr.update(value=tgt), html, text, ""
      except Exception as e:  # pylint: disable=broad-except  (shown in the page)
        return gr.update(), gr.update(), gr.update(), gr.update(), "**Error:** " + describe(e)

    load_tuple.click(on_load_tuple, [tuple_index, k_number],
                     [sources, target_name, editor, pose_box, status])

    def on_target(name):
      if not name:
        return gr.update(), gr.update(), ""
      try:
        html, text = app.target_from_test(name)
        return html, text, ""
      except Exception as e:  # pylint: disable=broad-except
        return gr.update(), gr.update(), "**Error:** " + describe(e)

    target_name.input(on_target, target_name, [editor, pose_box, status])

    def on_sources(names_):
      try:
        images, _ = app.sources_from_test(names_)
        return [(im, n) for im, n in zip(images, names_)]
      except Exception:  # pylint: disable=broad-except  (the error is reported on Generate)
        return []

    sources.change(on_sources, sources, source_gallery)

    def on_generate(m, names_, upload_files, kp_file, detect_, text):
      try:
        if m == "Upload":
          paths = [f if isinstance(f, str) else getattr(f, "name", None) for f in (upload_files or [])]
          kp = kp_file if isinstance(kp_file, str) or kp_file is None else getattr(kp_file, "name", None)
          images, poses = app.sources_from_upload(paths, kp, bool(detect_))
        else:
          images, poses = app.sources_from_test(names_)
        image, gallery, message = app.generate(images, poses, text)
        return image, gallery, message
      except Exception as e:  # pylint: disable=broad-except  (shown in the page, never a traceback)
        return gr.update(), gr.update(), "**Error:** " + describe(e)

    generate.click(on_generate, [mode, sources, uploads, keypoint_file, detect, pose_box],
                   [output, maps, status])
    demo.load(on_load_tuple, [tuple_index, k_number], [sources, target_name, editor, pose_box, status])
  return demo


def launch(app: App, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           prevent_thread_lock: bool = False):
  """Builds and launches the page; returns the Gradio Blocks (with `prevent_thread_lock`, at once)."""
  demo = build_ui(app)
  demo.queue(default_concurrency_limit=1)
  demo.launch(server_name=host, server_port=port, share=share, head=EDITOR_JS,
              prevent_thread_lock=prevent_thread_lock, show_error=False, quiet=True, ssr_mode=False)
  return demo


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
  try:
    import gradio  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    print("error: the app needs gradio: pip install -r requirements-app.txt", file=sys.stderr)
    return 2
  from rfgen_jax.tools import generate as generate_tool  # pylint: disable=import-outside-toplevel
  try:
    config = generate_tool.load_config(args.config, args.workdir)
    session = session_lib.ModelSession(args.workdir, config, args.step, batch_size=1)
    app = App(session, args.keypoints_python or session_lib.default_keypoints_python())
    app.test_names()    # opens the test split now, so a missing data set is reported before serving
  except (FileNotFoundError, KeyError, ValueError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"error: {message}", file=sys.stderr)
    return 2
  print(f"Serving the app for {args.workdir} (step {session.step}); press Ctrl+C to stop.", flush=True)
  launch(app, args.host, args.port, args.share)
  return 0


if __name__ == "__main__":
  sys.exit(main())
