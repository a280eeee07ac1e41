"""Reads pyproject.toml's dynamic dependencies from the requirements files (one source of truth).

Each requirement line (environment markers included) is kept; comments, blank lines and pip options
such as `-r requirements.txt` are dropped (the test extra sits on top of the runtime dependencies anyway).
"""
import pathlib

import setuptools

ROOT = pathlib.Path(__file__).resolve().parent


def requirements(name):
  lines = []
  for line in (ROOT / name).read_text().splitlines():
    line = line.split(" #", 1)[0].strip()
    if line and not line.startswith(("#", "-")):
      lines.append(line)
  return lines


setuptools.setup(
    install_requires=requirements("requirements.txt"),
    extras_require={"test": requirements("requirements-test.txt"),
                    "app": requirements("requirements-app.txt")},
)
