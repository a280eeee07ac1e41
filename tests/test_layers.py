"""The package's layers import downwards only, and no module imports itself back (docs/design.md, "Layers").

Every import of an rfgen_jax module is read from the source (at the top of a module and inside functions
alike) with `ast`. The layers, bottom to top, are LAYERS below; a module may import its own layer and the
layers under it, never one above. `train` and `evaluation` are siblings: neither imports the other
(`rfgen_jax/job.py` joins them). Imports inside functions are allowed only for the optional heavy
dependencies of OPTIONAL (not rfgen_jax modules), each with a comment saying why.

Importing `a.b.c` runs the package `a.b` first; an import of a module outside the importer's own packages
therefore also counts as an import of those packages' `__init__` (how the cycle data.datasets ->
datasets/m2n.py -> data/synthetic/turntable.py -> data.datasets hid before).
"""
from __future__ import annotations

import ast
import pathlib
import re


ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rfgen_jax"

# Bottom to top. A name covers the module and everything under it.
LAYERS = (
    ("foundation", ("rfgen_jax", "rfgen_jax.errors", "rfgen_jax.cli", "rfgen_jax.logging_setup",
                    "rfgen_jax.multihost", "rfgen_jax.xla_cpu_defaults", "rfgen_jax.visualize")),
    ("ops", ("rfgen_jax.ops",)),
    ("networks", ("rfgen_jax.nets", "rfgen_jax.models")),
    ("data", ("rfgen_jax.data",)),
    ("losses", ("rfgen_jax.losses",)),
    ("base: config schema, mesh, state, checkpoints", ("rfgen_jax.config_utils", "rfgen_jax.runtime")),
    ("inference", ("rfgen_jax.inference",)),
    ("train and evaluation (siblings)", ("rfgen_jax.train", "rfgen_jax.evaluation")),
    ("job", ("rfgen_jax.job",)),
    ("tools, experiments", ("rfgen_jax.tools", "rfgen_jax.experiments")),
    ("entry point", ("rfgen_jax.main",)),
)
SIBLINGS = (("rfgen_jax.train", "rfgen_jax.evaluation"), ("rfgen_jax.tools", "rfgen_jax.experiments"))
# Third-party packages that may be imported inside a function: optional, or heavy and needed by one path.
OPTIONAL = ("gradio", "torch", "torchvision", "mediapipe", "cv2", "tensorflow", "tensorflow_datasets",
            "lpips", "pytorch_fid", "h5py", "supervision", "imageio", "imageio_ffmpeg")


def _modules() -> dict[str, pathlib.Path]:
  found = {}
  for path in PACKAGE.rglob("*.py"):
    parts = path.relative_to(ROOT).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    found[name] = path
  return found


MODULES = _modules()


def _is_package(name: str) -> bool:
  return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node) -> list[str]:
  """The rfgen_jax modules an Import/ImportFrom node loads (`from pkg import mod` gives pkg.mod)."""
  if isinstance(node, ast.Import):
    names = [a.name for a in node.names]
  else:
    if node.level:
      base = importer.split(".")
      base = base if _is_package(importer) else base[:-1]
      base = base[:len(base) - (node.level - 1)]
      module = ".".join(base + ([node.module] if node.module else []))
    else:
      module = node.module or ""
    names = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
  out = []
  for name in names:
    if not (name == "rfgen_jax" or name.startswith("rfgen_jax.")):
      continue
    while name not in MODULES:
      name = name.rsplit(".", 1)[0]
    out.append(name)
  return out


def _with_outside_packages(importer: str, target: str) -> list[str]:
  """`target` and the packages above it that are not packages of `importer` (those run first)."""
  chain = [target]
  parts = target.split(".")
  for i in range(1, len(parts)):
    package = ".".join(parts[:i])
    if not (importer == package or importer.startswith(package + ".")):
      chain.append(package)
  return chain


def _imports():
  """[(importer, imported module, line, inside a function?)] over the package."""
  found = []
  for name, path in MODULES.items():
    tree = ast.parse(path.read_text(), str(path))
    in_function = set()
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        in_function.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        for target in _resolve(name, node):
          if target != name:
            found.append((name, target, node.lineno, id(node) in in_function))
  return found


IMPORTS = _imports()


def layer_of(module: str) -> int:
  best, index = "", None
  for i, (_, prefixes) in enumerate(LAYERS):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
        best, index = prefix, i
  return index


def _group(module: str) -> str:
  for pair in SIBLINGS:
    for prefix in pair:
      if module == prefix or module.startswith(prefix + "."):
        return prefix
  return ""


def test_every_module_has_a_layer():
  assert [m for m in MODULES if layer_of(m) is None] == []


def test_imports_go_downwards():
  upward = []
  for importer, target, line, _ in IMPORTS:
    for imported in _with_outside_packages(importer, target):
      a, b = layer_of(importer), layer_of(imported)
      if b > a:
        upward.append(f"{MODULES[importer].relative_to(ROOT)}:{line} imports {imported} "
                      f"({LAYERS[b][0]} is above {LAYERS[a][0]})")
      elif a == b and _group(importer) and _group(imported) and _group(importer) != _group(imported):
        upward.append(f"{MODULES[importer].relative_to(ROOT)}:{line} imports its sibling {imported}")
  assert upward == [], "\n".join(upward)


def test_no_import_cycles():
  graph = {m: set() for m in MODULES}
  for importer, target, _, _ in IMPORTS:
    for imported in _with_outside_packages(importer, target):
      graph[importer].add(imported)
  cycles, state = [], {}

  def visit(node, path):
    state[node] = "open"
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
      elif nxt not in state:
        visit(nxt, path + [nxt])
    state[node] = "done"

  for module in sorted(graph):
    if module not in state:
      visit(module, [module])
  assert cycles == [], "\n".join(cycles)


def test_package_modules_are_imported_at_the_top():
  inside = [f"{MODULES[i].relative_to(ROOT)}:{line} imports {t} inside a function"
            for i, t, line, in_function in IMPORTS if in_function]
  assert inside == [], "\n".join(inside)


def _reason(line: str) -> str:
  """The words of a line's comment, pylint pragmas left out."""
  comment = line.partition("#")[2]
  return re.sub(r"pylint:\s*disable=[\w,-]+", "", comment).strip(" ()")


def test_imports_inside_functions_are_optional_dependencies_with_a_reason():
  bad = []
  for name, path in MODULES.items():
    source = path.read_text().splitlines()
    tree = ast.parse("\n".join(source), str(path))
    for function in ast.walk(tree):
      if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        continue
      for node in ast.walk(function):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "level", 0):
          continue
        roots = ([a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import)
                 else [(node.module or "").split(".")[0]])
        for root in roots:
          if root == "rfgen_jax":
            continue    # test_package_modules_are_imported_at_the_top
          if root not in OPTIONAL:
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {root} inside a function")
          elif not _reason(source[node.lineno - 1]):
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {root} inside a function "
                       "without a comment saying why")
  assert bad == [], "\n".join(bad)


def test_layers_are_written_down():
  design = (ROOT / "docs" / "design.md").read_text()
  for name, prefixes in LAYERS:
    assert name in design, f"docs/design.md does not name the layer {name!r}"
