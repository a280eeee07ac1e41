"""User errors: mistakes a user can fix (a missing file or folder, a bad flag, file or config value, no
checkpoint yet, an output that already exists).

They are raised on purpose where an input is checked, with a one-sentence message that names the file,
flag or config key and says what to do. The entry points turn them into that sentence on stderr and exit
status 2, without a traceback (`rfgen_jax/cli.py`: `cli.run` for the absl programs, `cli.exit_2_on_user_error`
for the argparse tools). Every other exception is a bug and keeps its traceback.

Each subclass also derives from the built-in type that callers catch (FileNotFoundError, ValueError,
KeyError), so library code that catches those keeps working. This module imports nothing from the
package: any layer may raise these.
"""
from __future__ import annotations

import os


class UserError(Exception):
  """A mistake of the user's; `str(e)` is the message (never quoted, unlike a plain KeyError's)."""

  def __str__(self) -> str:
    return str(self.args[0]) if self.args else ""


class MissingFileError(UserError, FileNotFoundError):
  """A file or folder the user named (or a config key points at) does not exist or cannot be read."""


class BadInputError(UserError, ValueError):
  """A flag, config value or input file that exists but holds something unusable."""


class MissingEntryError(UserError, KeyError):
  """A name the user gave is not in the file or set it should be in."""


class MissingDependencyError(UserError, ImportError):
  """An optional package the requested work needs is not installed (the message says how to get it)."""


class OutputExistsError(UserError, FileExistsError):
  """`--out` (or a workdir) already holds files that the run would overwrite."""


def check_output_free(path: str, flag: str = "--out", overwrite_flag: str | None = "--overwrite") -> None:
  """Raises OutputExistsError if `path` is a non-empty file or a folder holding anything.

  Args:
    path: the output file or folder a program is about to write.
    flag: the flag that named it (for the message).
    overwrite_flag: the program's flag that allows replacing it, if it has one.
  """
  if os.path.isdir(path):
    held = sorted(os.listdir(path))
    if not held:
      return
    what = f"is a folder holding {len(held)} entries ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''})"
  elif os.path.isfile(path) and os.path.getsize(path) > 0:
    what = "already exists"
  else:
    return
  fix = f"pass {overwrite_flag} to replace it, or" if overwrite_flag else "remove it or"
  raise OutputExistsError(f"{path} ({flag}) {what}; {fix} choose another {flag}.")
