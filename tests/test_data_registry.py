"""The data package's shape: every data set registered by name, no import cycles, small modules."""
import ast
import os
import subprocess
import sys

import pytest

from configs import common
from rfgen_jax import config_utils
from rfgen_jax.data import datasets
from rfgen_jax.data import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "rfgen_jax", "data")
MAX_LINES = 400


def _modules():
  """{module name: file} of every module under rfgen_jax/data."""
  out = {}
  for folder, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(folder, f)
        rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
  return out


def _imports(path, modules):
  """The rfgen_jax.data modules a file imports (at any depth, including function-local imports)."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      # `from pkg import mod` imports mod; `from mod import name` imports mod.
      names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
               for a in node.names]
    else:
      continue
    for name in names:
      while name and name not in modules:
        name = name.rpartition(".")[0]
      if name:
        found.add(name)
  return found


def test_no_import_cycles():
  modules = _modules()
  graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for n in sorted(graph[m]):
      if state.get(n) == "open":
        cycle = stack[stack.index(n):] + [n]
        pytest.fail("import cycle: " + " -> ".join(cycle))
      if n not in state:
        visit(n)
    stack.pop()
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m)


def test_modules_are_small():
  too_long = {m: n for m, p in _modules().items() if (n := len(open(p).read().splitlines())) > MAX_LINES}
  assert not too_long, too_long


def test_every_module_imports_in_a_fresh_interpreter():
  """All modules import in a fresh interpreter, leaves of the import graph first (the cycle walk above
  covers the order-dependent case; one interpreter keeps the test cheap)."""
  names = [m for m in sorted(_modules(), key=lambda m: (-m.count("."), m)) if not m.endswith("__main__")]
  code = "import importlib\nfor m in %r:\n  importlib.import_module(m)\n" % names
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_registry_lists_every_config_and_one_key_picks_it():
  expected = {"synthetic": "keypoints", "market": "keypoints", "deepfashion": "keypoints", "folder": "keypoints",
              "shapenet_chair": "camera", "shapenet_car": "camera", "kitti": "camera", "turntable": "camera",
              "voxceleb2": "landmarks"}
  assert {n: datasets.get(n).pose_kind for n in datasets.names()} == expected
  assert datasets.get("kitti").m2n_kind == "kitti" and datasets.get("shapenet_chair").m2n_kind == "chair"
  assert not datasets.get("turntable").augment and datasets.get("voxceleb2").augment
  base = common.get_base_config()
  assert "pose_kind" not in base.data and "m2n_kind" not in base.data    # properties of the data set
  for name in ("synthetic", "market", "deepfashion", "folder", "shapenet_chair", "kitti", "turntable",
               "voxceleb2"):
    config = config_utils.load_config(os.path.join(ROOT, f"configs/{name}.py"))
    assert config.data.name == name
    config_utils.validate_config(config)
  with pytest.raises(ValueError, match=r"--config.data.name='nope'; registered data sets: deepfashion, folder"):
    datasets.get("nope")


def test_register_rejects_duplicates_and_unknown_pose_kinds():
  with pytest.raises(ValueError, match="already registered"):
    registry.register(registry.DataSet("market", "keypoints", "", lambda c: None, lambda c, s: None))
  with pytest.raises(ValueError, match="unknown pose kind 'depth'"):
    registry.DataSet("x", "depth", "", lambda c: None, lambda c, s: None)


def test_pipeline_names_no_data_set():
  text = open(os.path.join(PACKAGE, "pipeline.py")).read()
  for name in datasets.names():
    assert f'"{name}"' not in text and f"'{name}'" not in text, name
