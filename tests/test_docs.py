"""The docs match the tree: every repository path that README.md and docs/*.md cite exists, and the package
map of docs/design.md names every module of the package and nothing that is gone.

Only the file system is read (no import of the package), so this runs in well under a second.

What counts as a cited repository path (`_citations`), in README.md and every docs/*.md:
1. Markdown links and images, `[text](target)`: every target that is not a URL (`scheme:`), not a pure
   `#anchor` and not absolute (`/...`, `~...`) is a path relative to the file that holds the link
   (README links `docs/x.md`, docs link each other as `x.md` and pictures as `images/x.png`); it must
   exist, and a `#anchor` on a .md target must be one of its headings' GitHub anchors.
2. Text tokens that start with a top-level folder of the repository (`_REPO_PREFIXES`: rfgen_jax/,
   configs/, tests/, benchmarks/, docs/, launch/, .ci/) or are a top-level requirements file, in code
   spans, fenced blocks and prose alike. Tokens are split at white space, `=`, `,`, quotes, brackets
   and backticks; a `:arg` after `.py` (`configs/market.py:runlocal`), a pytest `::node` and trailing
   punctuation are dropped. A token with a wildcard (`*`) must match at least one file. Skipped: tokens
   holding `<`, `{`, `$` or `...`, or a name in capitals (templates such as `configs/<data set>.py`,
   `train/{a,b}`, `configs/NAME.py`), files the reader is told to create (a name starting `my_`, as
   `configs/my_set.py`), and everything
   else (workdirs, `data/...`, `~/...`, `/tmp/...`, `eval/metrics.json`, `samples/`: outputs of a run or
   the user's files, which never start with one of these folders).
3. Dotted module names, in code spans and fenced blocks: a token `rfgen_jax.a.b` or `benchmarks.a`
   resolves, left to right, through packages (folders with `__init__.py`; benchmarks/ is a namespace
   package) and at most one module file;
   after a module or a package, the first remaining name (a function, class or constant) must occur as a
   word in that file (`__init__.py` for a package). `python -m NAME` must name a module file or a
   package with `__main__.py`. The project's shorthand `tools.NAME` means `rfgen_jax.tools.NAME` and must
   be a module. `rfgen_jax.tools.convert_*` must match a module.

The package map (docs/design.md, "### Package map"): every `rfgen_jax/...` path in its table exists, and
every .py file under rfgen_jax/ appears in it, except `__init__.py` and `__main__.py` (a package's
`__init__` may be cited, and then must exist, but need not be).

A failure lists every offence as (file, line, path, why).
"""
from __future__ import annotations

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPO_PREFIXES = ("rfgen_jax/", "configs/", "tests/", "benchmarks/", "docs/", "launch/", ".ci/")
_REQUIREMENTS = re.compile(r"^requirements(-[\w]+)?\.txt$")
_SPLIT = re.compile(r"[\s=,\"'`()\[\]|]+")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*```")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_DOTTED = re.compile(r"^(rfgen_jax|benchmarks|tools)(\.[A-Za-z_*][\w*]*)+")


def _doc_files() -> list[str]:
  return ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def _read(rel: str) -> list[str]:
  with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
    return f.read().splitlines()


def _anchor(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
  text = re.sub(r"`", "", heading.strip().lower())
  text = re.sub(r"[^\w\- ]", "", text)
  return text.replace(" ", "-")


def _anchors(rel: str) -> set[str]:
  anchors, counts, fenced = set(), {}, False
  for line in _read(rel):
    if _FENCE.match(line):
      fenced = not fenced
    elif not fenced and line.startswith("#"):
      base = _anchor(line.lstrip("#"))
      n = counts.get(base, 0)
      counts[base] = n + 1
      anchors.add(base if n == 0 else f"{base}-{n}")
  return anchors


def _check_link(doc: str, target: str):
  """None if the link resolves, else why not."""
  path, _, anchor = target.partition("#")
  if not path:           # an anchor in the same file
    path = os.path.basename(doc)
  full = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), path))
  if not full.startswith(ROOT + os.sep):
    return "points outside the repository"
  if not os.path.exists(full):
    return "no such file"
  if anchor and full.endswith(".md") and anchor not in _anchors(os.path.relpath(full, ROOT)):
    return f"no heading with anchor #{anchor}"
  return None


def _clean_path(token: str) -> str | None:
  """The repository path a text token cites, or None if it cites none (rule 2 of the module doc)."""
  token = token.strip().rstrip(".;:!?")
  token = token.split("::")[0]
  token = re.sub(r"(\.py):[\w=,.:-]*$", r"\1", token)
  if not (token.startswith(_REPO_PREFIXES) or _REQUIREMENTS.match(token)):
    return None
  if any(mark in token for mark in ("<", "{", "...", "$")):
    return None
  names = token.rstrip("/").split("/")
  if any(re.fullmatch(r"[A-Z][A-Z_]*", n.split(".")[0]) for n in names) or names[-1].startswith("my_"):
    return None          # a placeholder (`configs/NAME.py`) or the reader's own file (`configs/my_set.py`)
  return token


def _check_path(token: str):
  full = os.path.join(ROOT, token)
  if "*" in token:
    return None if glob.glob(full) else "matches no file"
  return None if os.path.exists(full) else "no such file or folder"


def _word_in(path: str, name: str) -> bool:
  with open(path, encoding="utf-8") as f:
    return re.search(r"\b" + re.escape(name) + r"\b", f.read()) is not None


def _check_dotted(name: str, run_as_main: bool):
  """None if the dotted module name resolves (rule 3 of the module doc), else why not."""
  parts = name.split(".")
  if parts[0] == "tools":
    parts = ["rfgen_jax"] + parts
    if len(parts) != 3:
      return "`tools.NAME` must name one module of rfgen_jax/tools"
  where = ROOT
  for i, part in enumerate(parts):
    if "*" in part:
      return None if glob.glob(os.path.join(where, part + ".py")) else "matches no module"
    package = os.path.join(where, part)
    if os.path.isfile(os.path.join(package, "__init__.py")) or (i == 0 and os.path.isdir(package)):
      where = package
      continue
    if os.path.isfile(package + ".py"):
      if run_as_main and i != len(parts) - 1:
        return "`python -m` names something inside a module"
      rest = parts[i + 1:]
      if rest and not _word_in(package + ".py", rest[0]):
        return f"{part}.py has no `{rest[0]}`"
      if name.split(".")[0] == "tools" and rest:
        return "`tools.NAME` must name a module"
      return None
    if i == 0:
      return "no such package"
    if run_as_main:
      return "no such module"
    if name.split(".")[0] == "tools":
      return "no such module in rfgen_jax/tools"
    init = os.path.join(where, "__init__.py")
    if not os.path.isfile(init):
      return "no such module"
    return None if _word_in(init, part) else f"no module {part} and no `{part}` in {os.path.relpath(init, ROOT)}"
  if run_as_main and not os.path.isfile(os.path.join(where, "__main__.py")):
    return "`python -m` names a package without __main__.py"
  return None


def _code_tokens(lines):
  """(line number, token, text before it on the line) of code spans and fenced blocks."""
  fenced = False
  for number, line in enumerate(lines, start=1):
    if _FENCE.match(line):
      fenced = not fenced
      continue
    spans = [line] if fenced else _CODE_SPAN.findall(line)
    for span in spans:
      tokens = [t for t in _SPLIT.split(span) if t]
      for i, token in enumerate(tokens):
        yield number, token, tokens[i - 2:i]


def _citations():
  """Every offending citation in README.md and docs/*.md: (file, line, path, why)."""
  bad = []
  for doc in _doc_files():
    lines = _read(doc)
    for number, line in enumerate(lines, start=1):
      links = _LINK.findall(line)
      for target in links:
        if re.match(r"^[a-zA-Z][\w+.-]*:", target) or target.startswith(("/", "~")):
          continue
        why = _check_link(doc, target)
        if why:
          bad.append((doc, number, target, why))
      text = _LINK.sub(" ", line)
      for token in _SPLIT.split(text):
        path = _clean_path(token)
        if path:
          why = _check_path(path)
          if why:
            bad.append((doc, number, path, why))
    for number, token, before in _code_tokens(lines):
      token = token.rstrip(".;:!?")
      m = _DOTTED.match(token)
      if not m or m.group(0) != token.split("(")[0]:
        continue
      run_as_main = before[-1:] == ["-m"]
      why = _check_dotted(m.group(0), run_as_main)
      if why:
        bad.append((doc, number, m.group(0), why))
  return sorted(set(bad))


def _format(bad) -> str:
  return "\n".join(f"  {doc}:{line}: {path} ({why})" for doc, line, path, why in bad)


def test_every_cited_repository_path_exists():
  bad = _citations()
  assert not bad, "README.md and docs/ cite paths that do not resolve:\n" + _format(bad)


def _package_map():
  """(line number, path) of every `rfgen_jax/...` path in the table under docs/design.md's "### Package map"."""
  lines = _read("docs/design.md")
  start = next(i for i, line in enumerate(lines) if line.strip() == "### Package map")
  cited, in_table = [], False
  for number, line in enumerate(lines[start + 1:], start=start + 2):
    if line.startswith("#"):
      break
    if line.startswith("|"):
      in_table = True
      for span in _CODE_SPAN.findall(line):
        for token in _SPLIT.split(span):
          if token.startswith("rfgen_jax/"):
            cited.append((number, token.rstrip(".;:")))
    elif in_table and line.strip():
      break
  return cited


def test_package_map_cites_only_existing_files():
  cited = _package_map()
  assert len(cited) > 50, "the package map was not found under docs/design.md's '### Package map'"
  bad = [("docs/design.md", n, p, "no such file") for n, p in cited if not glob.glob(os.path.join(ROOT, p))]
  assert not bad, "docs/design.md's package map cites paths that do not exist:\n" + _format(bad)


def test_package_map_names_every_module():
  cited = {p for _, p in _package_map() if "*" not in p}
  modules = sorted(
      os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "rfgen_jax", "**", "*.py"), recursive=True)
      if os.path.basename(p) not in ("__init__.py", "__main__.py"))
  missing = [m for m in modules if m not in cited]
  assert not missing, ("modules missing from docs/design.md's package map (add a row or a path to a row):\n  "
                       + "\n  ".join(missing))


def test_the_checks_catch_what_they_should():
  """The rules on hand-made cases, so a loosened regular expression cannot pass everything silently."""
  assert _clean_path("`configs/market.py:runlocal`".strip("`")) == "configs/market.py"
  assert _clean_path("tests/test_overfit.py::test_stage1") == "tests/test_overfit.py"
  assert _clean_path("configs/<data") is None
  assert _clean_path("workdirs/demo/eval/metrics.json") is None
  assert _clean_path("~/tensorflow_datasets/") is None
  assert _check_path("rfgen_jax/data/sources.py") == "no such file or folder"
  assert _check_path("rfgen_jax/tools/*.py") is None
  assert _check_dotted("rfgen_jax.tools.generate", True) is None
  assert _check_dotted("rfgen_jax.data.synthetic", True) is None          # a package with __main__.py
  assert _check_dotted("rfgen_jax.data.tfds_builders", True) == "no such module"
  assert _check_dotted("rfgen_jax.tools", True) is not None
  assert _check_dotted("tools.video_to_dataset", False) is None
  assert _check_dotted("tools.no_such_tool", False) is not None
  assert _check_dotted("rfgen_jax.tools.convert_*", False) is None
  assert _check_dotted("rfgen_jax.train.steps.StepSpec", False) is None
  assert _check_dotted("rfgen_jax.train.steps.NoSuchThing", False) is not None
  assert _anchor(" Real footage: a training set from a video") == "real-footage-a-training-set-from-a-video"
  assert _anchor(" 4. Data") == "4-data"
  assert _clean_path("configs/NAME.py") is None
  assert _clean_path("rfgen_jax/data/datasets/my_set.py") is None
