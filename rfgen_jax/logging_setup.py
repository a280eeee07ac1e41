"""What `rfgen_jax.main` prints: a short time stamp per line, and no library message that is expected.

`configure()` (called once by `rfgen_jax.main`) sets this up on absl's log handler, through which every
library that logs (absl's `logging` and Python's `logging`) reaches stderr:

* INFO records of Orbax, TFDS and grain are dropped (a few lines per checkpoint and per opened split);
  their warnings are kept, except the expected ones below.
* `EXPECTED` lists the library messages every run of this project produces and that say nothing is wrong;
  each is dropped by its exact start, with the reason next to it. Any other warning still shows.
* TFDS' tqdm bars (data preparation) are drawn only when stderr is a terminal: in a log file their
  cursor-movement codes show up as `[A` garbage.
* The line prefix is `HH:MM:SS` (and the level for warnings and errors) instead of absl's
  `I1207 19:10:14.841852 140191385877376 file.py:63]` (`configure(short_format=False)` keeps absl's).
"""
from __future__ import annotations

import logging as std_logging
import sys
import time

from absl import logging

# (logger path fragment, message start, why it is expected)
EXPECTED = (
    ("/tensorflow_datasets/", "Using custom data configuration",
     "every data set is a TFDS builder config named after its source files' fingerprint "
     "(rfgen_jax/data/datasets/people_tfds.py); TFDS warns each time one is opened"),
    ("/orbax/", "Given directory is read only",
     "evaluation and inference open the checkpoints read-only on purpose (checkpointing.read_only_manager)"),
    ("/jax/", "Unable to initialize backend 'tpu'",
     "jax tries TPU first; on a host without libtpu it then uses the GPU or the CPU"),
)

NOISY_INFO = ("/orbax/", "/tensorflow_datasets/", "/grain/")


class QuietLibraries(std_logging.Filter):
  """Drops INFO records of `NOISY_INFO` libraries and the `EXPECTED` messages."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    path = record.pathname.replace("\\", "/")
    if record.levelno < std_logging.WARNING and any(p in path for p in NOISY_INFO):
      return False
    if any(p in path for p, _, _ in EXPECTED):
      message = record.getMessage()
      if any(p in path and message.startswith(start) for p, start, _ in EXPECTED):
        return False
    return True


class ShortFormatter(std_logging.Formatter):
  """`19:10:14 message`, or `19:10:14 WARNING message` from warnings on."""

  def format(self, record: std_logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    level = "" if record.levelno < std_logging.WARNING else f" {record.levelname}"
    text = f"{stamp}{level} {record.getMessage()}"
    if record.exc_info:
      text += "\n" + self.formatException(record.exc_info)
    return text


def configure(short_format: bool = True) -> None:
  """Installs the filter (once) and, with `short_format`, the short prefix on absl's handler; turns
  TFDS' progress bars off when stderr is not a terminal."""
  handler = logging.get_absl_handler()
  if not any(isinstance(f, QuietLibraries) for f in handler.filters):
    handler.addFilter(QuietLibraries())
  if short_format:
    handler.python_handler.setFormatter(ShortFormatter())
  if not _is_terminal(sys.stderr):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (loads TensorFlow: only when used)
    tfds.disable_progress_bar()


def _is_terminal(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False
