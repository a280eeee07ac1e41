"""Every `python -m` entry point answers `--help` with its usage and exit status 0 (docs/design.md,
"## 1. Overview", entry points).

The modules are found by scanning the package and `benchmarks/` for `if __name__ == "__main__":`, so a
new tool is covered without editing this file. Each runs as `python -m <module> --help` would, in a
process of its own with a fresh copy of the project's modules: one interpreter imports the third-party
libraries the tools share (jax, TensorFlow, flax, ...; ~6 s) once and forks a child per module, which
runs it with `runpy` as `-m` does (26 separate interpreters took ~30 s of both cores).
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests import forked_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("rfgen_jax", "benchmarks")
_MAIN_GUARD = re.compile(r"^if __name__ == ['\"]__main__['\"]:", re.MULTILINE)


def entry_point_modules() -> list[str]:
  """Dotted names of every module under SCANNED with a `__main__` guard, sorted."""
  modules = []
  for top in SCANNED:
    for folder, _, files in os.walk(os.path.join(ROOT, top)):
      for name in files:
        path = os.path.join(folder, name)
        if name.endswith(".py") and _MAIN_GUARD.search(open(path, encoding="utf-8").read()):
          rel = os.path.relpath(path, ROOT)[:-len(".py")]
          modules.append(rel.replace(os.sep, ".").removesuffix(".__main__"))
  return sorted(modules)


MODULES = entry_point_modules()
# requirements-test.txt installs torch on Python 3.11 only (tests/conftest.py, TORCH_FILES).
NO_TORCH = sys.version_info >= (3, 12) and importlib.util.find_spec("torch") is None


def _help_all(modules) -> dict[str, subprocess.CompletedProcess]:
  """`python -m module --help` for every module, forked from one interpreter (tests/forked_runs.py)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  return forked_runs.run_cases([(m, m, ["--help"]) for m in modules], ROOT, env)


@pytest.fixture(scope="module")
def help_runs():
  return _help_all(MODULES)


def test_the_scan_finds_the_known_entry_points():
  for module in ("rfgen_jax.main", "rfgen_jax.models.summary", "rfgen_jax.tools.convert_vgg19",
                 "rfgen_jax.tools.generate", "benchmarks.warp"):
    assert module in MODULES, (module, MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_help_exits_0_with_usage(help_runs, module):
  run = help_runs[module]
  if run.returncode and NO_TORCH and "No module named 'torch'" in run.stderr:
    pytest.skip(f"{module} imports torch, which Python >= 3.12 does not install (tests/conftest.py)")
  assert run.returncode == 0, f"python -m {module} --help: exit {run.returncode}\n{run.stderr[-3000:]}"
  usage = run.stdout
  assert usage.strip(), f"python -m {module} --help printed nothing on stdout"
  # argparse prints "usage: ..."; absl the module docstring and its "flags:"; both list the options.
  assert "usage:" in usage or "flags:" in usage, usage[:2000]
  assert "--" in usage, usage[:2000]
  assert "Traceback" not in run.stderr, run.stderr[-3000:]


def test_only_help_flags_turn_absl_exits_into_0():
  from rfgen_jax import cli  # pylint: disable=g-import-not-at-top
  for argv in (["p", "--help"], ["p", "-?"], ["p", "--config=c.py", "--helpfull"], ["p", "-helpshort"]):
    assert cli.asks_for_help(argv), argv
  for argv in (["p"], ["p", "--config=c.py"], ["p", "--helper=1"], ["p", "--", "--help"], ["p", "help"]):
    assert not cli.asks_for_help(argv), argv


def test_program_modules_import_together():
  """Importing every program of the package into one interpreter defines no absl flag twice: a program
  defines its flags only when it runs (`define_flags()` under its `__main__` guard), so tests and users
  can import its functions (regression: `config` defined by both the ablation runner and contact_sheet)."""
  modules = [m for m in MODULES if m.startswith("rfgen_jax.")]
  code = "import importlib, sys\nfor m in sys.argv[1:]:\n  importlib.import_module(m)\nprint('ok')\n"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  run = subprocess.run([sys.executable, "-c", code, *modules], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600, check=False)
  assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
