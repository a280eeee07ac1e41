r"""An interactive app on a trained checkpoint (Gradio): pick sources, edit a pose, generate, see inner maps.

    python -m rfgen_jax.tools.app (--workdir=RUN | --pretrained=NAME) [--config=configs/x.py] [--step N]
        [--port 7860] [--host 127.0.0.1] [--keypoints_python PATH] [--share]

`--pretrained`: a released model (docs/pretrained.md) instead of a training run; its test set is the
one its config names (the synthetic demo data are generated on first use).

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

The files (`rfgen_jax/tools/`): this module is the command line (the port check, the launch);
`app_handlers.py` what the page does (`App`, the pose text, `describe`); `app_ui.py` the Gradio page and
its events; `app_html.py` the HTML of the editor and the pictures; `app_page.js`, `app_page.css` the
page's script and style.
"""
from __future__ import annotations

import argparse
import errno
import socket
import sys
from typing import Sequence

from rfgen_jax import cli
from rfgen_jax import errors
from rfgen_jax.tools import generate as generate_tool
from rfgen_jax.tools import session as session_lib
from rfgen_jax.tools.app_handlers import App
from rfgen_jax.tools.app_html import page_css
from rfgen_jax.tools.app_html import page_head
from rfgen_jax.tools.app_ui import build_ui


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
  parser.add_argument("--workdir", default=None, help="the training run's folder (with checkpoints/)")
  parser.add_argument("--pretrained", default=None, help=generate_tool.PRETRAINED_HELP)
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
    import gradio  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import  (optional: checked here)
  except ImportError:
    raise errors.MissingDependencyError("The app needs gradio: pip install -r requirements-app.txt (README, "
                                        "\"Interactive app, animations and inner maps\").") from None
  config, release = generate_tool.load_model_config(args)
  session = session_lib.ModelSession(args.workdir, config, args.step, batch_size=1, release=release)
  app = App(session, args.keypoints_python or session_lib.default_keypoints_python())
  app.test_names()    # opens the test split now, so a missing data set is reported before serving
  served = args.workdir if release is None else f"the released model {release.name}"

  def announce(url):
    print(f"Serving {served} (step {session.step}) at {url}  (Ctrl+C stops it)", flush=True)

  try:
    launch(app, args.host, args.port, args.share, announce=announce)
  except OSError as e:   # the port was taken between the check above and the launch
    raise errors.BadInputError(f"Cannot serve on {args.host}:{args.port or 'a port from 7860'} "
                               f"({cli.one_line(e)}): pass another --port.") from None
  return 0


if __name__ == "__main__":
  sys.exit(main())
