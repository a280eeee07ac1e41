"""Entry-point helper for the absl programs (the convention: docs/design.md, "## 1. Overview").

Programs that take an experiment config (`--config=configs/NAME.py[:arg]` and `--config.KEY=VALUE`) use
absl flags with ml_collections' `config_flags` and start with `cli.run(main)` instead of
`absl.app.run(main)`: the same, except that `--help` (`-?`, `--helpshort`, `--helpfull`) exits with
status 0 after printing the usage, as argparse tools do (absl exits 1). Every other exit is unchanged.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from absl import app

HELP_FLAGS = frozenset({"help", "?", "helpshort", "helpfull"})


def asks_for_help(argv: Sequence[str]) -> bool:
  """Whether a command line (argv[0] is the program) contains an absl help flag before any `--`."""
  for arg in argv[1:]:
    if arg == "--":
      return False
    if arg.startswith("-") and arg.lstrip("-").partition("=")[0] in HELP_FLAGS:
      return True
  return False


def run(main: Callable[[list], Optional[int]],
        flags_parser: Optional[Callable[[list], list]] = None) -> None:
  """`absl.app.run(main, flags_parser)` whose help flags exit with status 0."""
  parser = flags_parser or app.parse_flags_with_usage

  def parse(argv):
    try:
      return parser(argv)
    except SystemExit as e:
      if e.code == 1 and asks_for_help(argv):
        raise SystemExit(0) from None
      raise

  app.run(main, flags_parser=parse)
