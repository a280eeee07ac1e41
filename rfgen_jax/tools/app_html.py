"""The app's page as HTML (`rfgen_jax/tools/app.py`): the SVG pose editor, the source thumbnails, the
inner-map table, the flow-wheel legend, and the page's script and style (app_page.js, app_page.css).

Pictures are (H, W, 3) uint8 arrays embedded as PNG data URLs and scaled up in the browser by an integer
factor (nearest); sizes are in screen pixels (`DISPLAY_HEIGHT` high for the editor and the generated
image). Poses are (J, 2) `(y, x)` pixels of the model's image size, -1 where missing.
"""
from __future__ import annotations

import base64
import html
import io
import os
from typing import Sequence

import numpy as np
from PIL import Image

from rfgen_jax import visualize
from rfgen_jax.data import keypoints as keypoints_lib

DISPLAY_HEIGHT = 256      # pixels of the editor and the output image in the page
EDITOR_ID = "pose-editor"
POSE_BOX_ID = "pose-json"


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
