"""Released (pretrained) models: the format, verification on load, and writing one (docs/pretrained.md).

A released model is a folder, `pretrained/<name>/` at the repository root (or any folder of the same
layout, named by its path):

- `params.safetensors`: the generator's EMA parameters (`train.ema_decay`), float32, one tensor per leaf
  of the params tree of `models.build_generator(config).init`, keys joined with '/'
  (`flow_estimator/.../kernel`); safetensors: no pickle, readable by numpy, torch and others.
- `config.json`: the training run's full config (what the run wrote to `<workdir>/config.json`).
- `MODEL_CARD.md`: data, resolution, K, steps, wall time, machine, the eval table, the commands, the
  sample grid `samples.png`.
- `samples.png`: the run's evaluation sample grid (sources | target pose | generated | ground truth).
- `examples/`: optional inputs to try the model with (a test tuple's images and their keypoints).
- `card.json`, the manifest: `format_version`, `name`, `description`, `files` ({relative path:
  {"sha256", "bytes"}} of every other file of the folder), and the card's facts (`model`, `training`,
  `eval`, `check`, `released`). It is the root of trust, like a SHA256SUMS file: every file it lists is
  checked on load; its own bytes are not.

`load_release(name_or_dir)` verifies every listed file (present, of its size, of its sha256) before
reading anything and raises `errors.BadInputError` naming the file otherwise (the command-line programs
turn it into one line and exit status 2). This module is the "base" layer (docs/design.md, "Layers"):
`rfgen_jax.tools.pretrained` assembles a release from a training run and lists them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
from typing import Any, Mapping

import ml_collections
import numpy as np
from absl import logging
from safetensors import numpy as safetensors_numpy

from rfgen_jax import config_utils
from rfgen_jax import errors
from rfgen_jax import models
from rfgen_jax.runtime import state as state_lib

FORMAT_VERSION = 1
MANIFEST = "card.json"
PARAMS_FILE = "params.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
SAMPLES_FILE = "samples.png"
REQUIRED_FILES = (PARAMS_FILE, CONFIG_FILE, CARD_FILE, SAMPLES_FILE)
SEP = "/"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_CHUNK = 1 << 20


class UnknownReleaseError(errors.MissingEntryError):
  """No released model of that name (the message lists the available ones); a user error."""


def repository_root() -> str:
  """The folder holding `rfgen_jax/`, `configs/` and `pretrained/` (released models ship in the clone)."""
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def releases_dir() -> str:
  """`<repository>/pretrained`: where `available()` looks and names resolve."""
  return os.path.join(repository_root(), "pretrained")


@dataclasses.dataclass(frozen=True, eq=False)
class Release:
  """A verified released model.

  Attributes:
    name: the release's name (`card.json`'s `name`, the folder's name in `pretrained/`).
    directory: the release folder (absolute).
    config: the run's config (`ml_collections.ConfigDict`), keys added since completed with today's
      defaults (`complete_config`).
    params: the generator's params tree (nested dicts of float32 numpy arrays), as
      `models.build_generator(config).init(...)["params"]` is shaped: pass `{"params": params}` to `apply`.
    card: `card.json` as a dict (the manifest and the card's facts).
  """
  name: str
  directory: str
  config: ml_collections.ConfigDict
  params: dict
  card: dict

  @property
  def step(self) -> int:
    """The training step the parameters are from (the run's last checkpoint)."""
    return int(self.card.get("training", {}).get("steps", 0))


# ------------------------------------------------------------------------------------------ names
def available() -> list[str]:
  """Names of the released models in `pretrained/` (folders holding a `card.json`), sorted."""
  root = releases_dir()
  if not os.path.isdir(root):
    return []
  return sorted(d for d in os.listdir(root)
                if NAME_PATTERN.match(d) and os.path.isfile(os.path.join(root, d, MANIFEST)))


def _display(path: str) -> str:
  """`path` relative to the repository when inside it (what a user sees in a clone), else absolute."""
  path = os.path.abspath(path)
  root = repository_root()
  return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


def resolve(name_or_dir: str) -> str:
  """The absolute folder of a release given by name (in `pretrained/`) or by its folder's path.

  Raises:
    UnknownReleaseError: neither a release name nor a folder; the message lists the available names.
  """
  value = str(name_or_dir or "").strip()
  if value and (os.sep in value or value.startswith(".")) and os.path.isdir(value):
    return os.path.abspath(value)
  if value and NAME_PATTERN.match(value) and os.path.isdir(os.path.join(releases_dir(), value)):
    return os.path.join(releases_dir(), value)
  names = available()
  listed = ", ".join(names) if names else "none in " + _display(releases_dir())
  if value and os.sep in value:
    raise UnknownReleaseError(f"--pretrained={value}: no such release folder; give a folder holding "
                              f"{MANIFEST} or a released model's name (available: {listed}).")
  raise UnknownReleaseError(f"--pretrained={value!r} is not a released model; available: {listed} "
                            "(python -m rfgen_jax.tools.pretrained --list).")


# ------------------------------------------------------------------------------------------ checksums
def sha256_of(path: str) -> str:
  """Hex sha256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _restore_hint(directory: str) -> str:
  shown = _display(directory)
  if not os.path.isabs(shown):   # inside the clone: git has the original bytes
    return f"restore it with `git checkout -- {shown}` (or copy the release folder again)"
  return f"copy the release folder {shown} again from where it came"


def read_manifest(directory: str) -> dict:
  """`card.json` of a release folder, checked for its format; BadInputError naming the file otherwise."""
  path = os.path.join(directory, MANIFEST)
  if not os.path.isfile(path):
    raise errors.BadInputError(f"{_display(path)} is missing, so the release cannot be verified; "
                               f"{_restore_hint(directory)}.")
  try:
    with open(path, encoding="utf-8") as f:
      card = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.BadInputError(f"{_display(path)} is not a readable release manifest ({cli_line(e)}); "
                               f"{_restore_hint(directory)}.") from None
  files = card.get("files") if isinstance(card, dict) else None
  if not isinstance(files, dict) or any(f not in files for f in REQUIRED_FILES):
    raise errors.BadInputError(f"{_display(path)} does not list the release's files {list(REQUIRED_FILES)}; "
                               f"{_restore_hint(directory)}.")
  if card.get("format_version") != FORMAT_VERSION:
    raise errors.BadInputError(f"{_display(path)} has format_version {card.get('format_version')!r}; this "
                               f"rfgen_jax reads {FORMAT_VERSION}: use the rfgen_jax that released it.")
  return card


def cli_line(error: BaseException) -> str:
  """An exception's message on one line."""
  return " ".join(str(error).split())


def verify(directory: str) -> dict:
  """Checks every file `card.json` lists: present, of its size, of its sha256; returns the card.

  Raises:
    errors.BadInputError: one sentence naming the missing, truncated or altered file and what to do.
  """
  directory = os.path.abspath(directory)
  card = read_manifest(directory)
  for relative, entry in sorted(card["files"].items()):
    path = os.path.join(directory, *relative.split("/"))
    shown, hint = _display(path), _restore_hint(directory)
    if not os.path.isfile(path):
      raise errors.BadInputError(f"{shown} is missing from the release {card.get('name')!r}; {hint}.")
    size, want = os.path.getsize(path), int(entry["bytes"])
    if size < want:
      raise errors.BadInputError(f"{shown} is truncated ({size} of its {want} bytes); {hint}.")
    got = sha256_of(path)
    if size != want or got != entry["sha256"]:
      raise errors.BadInputError(
          f"{shown} does not match its checksum in {MANIFEST} (sha256 {got[:12]}... of {size} bytes, "
          f"expected {entry['sha256'][:12]}... of {want}): the file was altered or damaged; {hint}.")
  return card


# ------------------------------------------------------------------------------------------ config
def _base_config_dict() -> dict:
  """configs/common.py's base config as nested dicts (every key the code reads, with its default)."""
  path = os.path.join(repository_root(), "configs", "common.py")
  spec = importlib.util.spec_from_file_location("_rfgen_config_common_pretrained", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return json.loads(module.get_base_config().to_json_best_effort())


def _get(tree: dict, dotted: str):
  for part in dotted.split("."):
    tree = tree[part]
  return tree


def _set(tree: dict, dotted: str, value) -> None:
  *parents, last = dotted.split(".")
  for part in parents:
    tree = tree.setdefault(part, {})
  tree[last] = value


def complete_config(saved: dict, source: str = "config.json") -> ml_collections.ConfigDict:
  """A run's saved config as a ConfigDict, keys added to configs/common.py since filled with their defaults.

  `tools.generate.load_config` refuses a workdir's config.json that lacks keys (their defaults may not be
  what the run trained with); a release fills them instead, with a warning naming them, because its
  card's eval numbers are checked against today's code by tests/test_pretrained.py: a new key whose
  default changes what the model computes fails that test. JSON's lists become tuples, as the config
  files write them.
  """
  missing = config_utils.keys_missing_from(saved)
  saved = config_utils.with_reading_irrelevant_defaults(saved)
  if missing:
    base = _base_config_dict()
    for key in missing:
      _set(saved, key, _get(base, key))
    logging.warning("%s lacks %d config key(s) added since it was written (%s): using their defaults.",
                    source, len(missing), ", ".join(missing))
  return ml_collections.ConfigDict(_tuples(saved))


def _tuples(value):
  """JSON's lists back to the tuples the config files use (configs/ hold no lists), so that
  `--config.KEY=VALUE` overrides of `configs/pretrained.py` work as on any config file."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def read_config(directory: str) -> ml_collections.ConfigDict:
  """The completed config of a release folder (no checksum check; `load_release` checks first)."""
  path = os.path.join(directory, CONFIG_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.BadInputError(f"{_display(path)} cannot be read as a run's config ({cli_line(e)}); "
                               f"{_restore_hint(directory)}.") from None
  return complete_config(saved, _display(path))


def release_config(name_or_dir: str) -> ml_collections.ConfigDict:
  """The verified release's completed config, without reading the parameters (`configs/pretrained.py`)."""
  directory = resolve(name_or_dir)
  verify(directory)
  return read_config(directory)


# ------------------------------------------------------------------------------------------ params
def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
  """{'a/b/kernel': array} of a nested params dict (keys must not contain '/')."""
  flat = {}
  for key, value in tree.items():
    key = str(key)
    if SEP in key:
      raise ValueError(f"Parameter name {key!r} contains {SEP!r}.")
    name = f"{prefix}{SEP}{key}" if prefix else key
    if hasattr(value, "items"):
      flat.update(flatten(value, name))
    else:
      flat[name] = np.asarray(value)
  return flat


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
  """The nested dict of `flatten`'s output."""
  tree: dict = {}
  for name, value in flat.items():
    *parents, last = name.split(SEP)
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[last] = value
  return tree


def save_params(path: str, params: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> None:
  """Writes a params tree as float32 safetensors (`flatten`'s keys); `metadata`: str -> str."""
  flat = {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in flatten(params).items()}
  safetensors_numpy.save_file(flat, path, metadata=dict(metadata or {}, format="rfgen_jax.params"))


def load_params(path: str) -> dict:
  """The params tree of a safetensors file written by `save_params` (float32 numpy arrays)."""
  try:
    flat = safetensors_numpy.load_file(path)
  except Exception as e:  # safetensors raises its own error types for damaged headers
    raise errors.BadInputError(f"{_display(path)} cannot be read as safetensors ({cli_line(e)}).") from None
  return unflatten({k: np.asarray(v, np.float32) for k, v in flat.items()})


def check_params(params: dict, config, source: str) -> None:
  """Raises BadInputError unless `params` has exactly the generator's leaves and shapes for `config`."""
  generator = models.build_generator(config)
  abstract = state_lib.abstract_state(config, generator, models.build_discriminator(config)).gen_params
  want = {k: tuple(v.shape) for k, v in flatten_abstract(abstract).items()}
  have = {k: tuple(np.shape(v)) for k, v in flatten(params).items()}
  if want != have:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shapes = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
             for label, keys in (("missing", missing), ("unexpected", extra), ("other shapes", shapes)) if keys]
    raise errors.BadInputError(f"{source} does not hold the generator its config.json builds ({'; '.join(parts)}); "
                               "the release is inconsistent: release it again from its run.")


def flatten_abstract(tree, prefix: str = "") -> dict:
  """`flatten` for a tree of `jax.ShapeDtypeStruct`s (no conversion to arrays)."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{SEP}{key}" if prefix else str(key)
    if hasattr(value, "items"):
      flat.update(flatten_abstract(value, name))
    else:
      flat[name] = value
  return flat


def load_release(name_or_dir: str) -> Release:
  """Verifies and loads a released model, by name (`available()`) or folder.

  Raises:
    UnknownReleaseError: no such name or folder (the message lists the available names).
    errors.BadInputError: a missing, truncated or altered file (one sentence naming it), or parameters
      that do not fit the config.
  """
  directory = resolve(name_or_dir)
  card = verify(directory)
  config = read_config(directory)
  params = load_params(os.path.join(directory, PARAMS_FILE))
  check_params(params, config, _display(os.path.join(directory, PARAMS_FILE)))
  name = str(card.get("name") or os.path.basename(directory))
  logging.info("Loaded the released model %s from %s (checksums verified).", name, _display(directory))
  return Release(name=name, directory=directory, config=config, params=params, card=card)


# ------------------------------------------------------------------------------------------ writing
def write_manifest(directory: str, card: dict) -> dict:
  """Fills `card["files"]` with every file under `directory` (but `card.json`) and writes `card.json`.

  Returns the card written. Paths are relative, '/'-separated, sorted.
  """
  files = {}
  for root, dirs, names in os.walk(directory):
    dirs.sort()
    for name in sorted(names):
      path = os.path.join(root, name)
      relative = os.path.relpath(path, directory).replace(os.sep, "/")
      if relative == MANIFEST:
        continue
      files[relative] = {"sha256": sha256_of(path), "bytes": os.path.getsize(path)}
  missing = [f for f in REQUIRED_FILES if f not in files]
  if missing:
    raise errors.BadInputError(f"A release needs {list(REQUIRED_FILES)}; {directory} lacks {missing}.")
  for root, dirs, names in os.walk(directory):   # readable by all, as git checks it out (mkdtemp: 0700)
    os.chmod(root, 0o755)
    for name in names:
      os.chmod(os.path.join(root, name), 0o644)
  card = dict(card, format_version=FORMAT_VERSION, files=files)
  with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
    json.dump(card, f, indent=1, sort_keys=False)
    f.write("\n")
  return card


def folder_bytes(directory: str) -> int:
  """Bytes of every file under a folder."""
  return sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(directory) for n in ns)
