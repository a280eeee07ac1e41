"""Entry-point helper for the absl programs (the convention: docs/design.md, "## 1. Overview").

Programs that take an experiment config (`--config=configs/NAME.py[:arg]` and `--config.KEY=VALUE`) use
absl flags with ml_collections' `config_flags` and start with `cli.run(main)` instead of
`absl.app.run(main)`: the same, except that `--help` (`-?`, `--helpshort`, `--helpfull`) exits with
status 0 after printing the usage, as argparse tools do (absl exits 1), and that a user error
(`rfgen_jax.errors.UserError`, raised where an input is checked) ends in one line on stderr and exit
status 2, without a traceback. The argparse tools get the same with `@cli.exit_2_on_user_error` on their
`main(argv=None) -> int`. Any other exception is a bug and keeps its traceback.

A run that cannot start leaves nothing behind: the programs check their inputs (data, weight files,
checkpoints) before they write, and `removing_new_empty_folders(workdir)` removes the folders a failed
start created.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Callable, Iterator, Optional, Sequence

try:
  from absl import app as absl_app
except ImportError:   # the keypoint tools' mediapipe environment has no absl; only `run` needs it
  absl_app = None

from rfgen_jax import errors

HELP_FLAGS = frozenset({"help", "?", "helpshort", "helpfull"})


def asks_for_help(argv: Sequence[str]) -> bool:
  """Whether a command line (argv[0] is the program) contains an absl help flag before any `--`."""
  for arg in argv[1:]:
    if arg == "--":
      return False
    if arg.startswith("-") and arg.lstrip("-").partition("=")[0] in HELP_FLAGS:
      return True
  return False


def one_line(message: object) -> str:
  """The message with its line breaks and runs of spaces folded into single spaces."""
  return " ".join(str(message).split())


def _module_name(module: str) -> str:
  """`rfgen_jax.tools.generate` for a module, also when it runs as `__main__` (`python -m`)."""
  if module == "__main__":
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0] or "rfgen_jax")
  return module


def report(error: errors.UserError, prog: Optional[str] = None) -> int:
  """Writes `prog: message` (one line) to stderr; returns the exit status of a user error, 2."""
  prog = prog or _module_name("__main__")
  sys.stderr.write(f"{prog}: {one_line(error)}\n")
  sys.stderr.flush()
  return 2


def exit_2_on_user_error(main: Callable[..., int]) -> Callable[..., int]:
  """Decorates an argparse tool's `main(argv=None) -> int`: a UserError is reported and returns 2."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs) -> int:
    try:
      return main(*args, **kwargs)
    except errors.UserError as e:
      return report(e, _module_name(main.__module__))

  return wrapped


@contextlib.contextmanager
def removing_new_empty_folders(path: Optional[str]) -> Iterator[None]:
  """On a UserError inside, removes the empty folders under (and including) `path` made meanwhile.

  Only folders that did not exist on entry and are empty on the error are removed; a file is never
  removed (the programs open their inputs before writing any, so a failed start wrote none).
  """
  if not path:
    yield
    return
  path = os.path.abspath(path)
  existed = set()
  if os.path.isdir(path):
    existed = {root for root, _, _ in os.walk(path)}
  first_new = path
  while not os.path.exists(os.path.dirname(first_new)) and os.path.dirname(first_new) != first_new:
    first_new = os.path.dirname(first_new)   # `--workdir=a/b/c` may create a and b as well
  try:
    yield
  except errors.UserError:
    if os.path.isdir(first_new):
      for root, _, _ in sorted(os.walk(first_new), key=lambda w: -len(w[0])):
        if root not in existed and not os.listdir(root):
          os.rmdir(root)
    raise


def run(main: Callable[[list], Optional[int]],
        flags_parser: Optional[Callable[[list], list]] = None) -> None:
  """`absl.app.run(main, flags_parser)` whose help flags exit with status 0 and whose user errors
  (`errors.UserError`) end in one line on stderr and exit status 2."""
  if absl_app is None:
    raise errors.MissingDependencyError("absl-py is not installed; `pip install -r requirements.txt`.")
  parser = flags_parser or absl_app.parse_flags_with_usage

  def parse(argv):
    try:
      return parser(argv)
    except SystemExit as e:
      if e.code == 1 and asks_for_help(argv):
        raise SystemExit(0) from None
      raise

  def guarded(argv):
    try:
      return main(argv)
    except errors.UserError as e:
      sys.exit(report(e, _module_name(main.__module__)))

  absl_app.run(guarded, flags_parser=parse)
