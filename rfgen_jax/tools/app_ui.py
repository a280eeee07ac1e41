"""The app's page in Gradio (`rfgen_jax/tools/app.py`): its components and the events that call the
handlers of `app_handlers.App`; an error is shown in the page as one sentence (`describe`), never as
Gradio's pop-up. Sizes are screen pixels (`app_html.DISPLAY_HEIGHT`).
"""
from __future__ import annotations

import os

from rfgen_jax.tools.app_handlers import App
from rfgen_jax.tools.app_handlers import describe
from rfgen_jax.tools.app_html import DISPLAY_HEIGHT
from rfgen_jax.tools.app_html import EDITOR_ID
from rfgen_jax.tools.app_html import POSE_BOX_ID
from rfgen_jax.tools.app_html import legend_html
from rfgen_jax.tools.app_html import maps_html
from rfgen_jax.tools.app_html import pictures_html


def build_ui(app: App):
  """The Gradio Blocks of the page (style and script: `launch`)."""
  import gradio as gr  # pylint: disable=import-outside-toplevel  (optional: requirements-app.txt)
  names = app.test_names()
  kind = app.kind
  h, w = app.session.image_size
  levels = tuple(app.session.config.model.levels)
  with gr.Blocks(title="rfgen_jax") as demo:
    release = f"released model {app.session.release.name}, " if app.session.release is not None else ""
    gr.Markdown(f"### Multi-source pose-guided generation: {app.session.config.data.name} model, "
                f"{release}step {app.session.step}, {h}x{w}, pose kind {kind}")
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
