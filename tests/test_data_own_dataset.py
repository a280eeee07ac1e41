"""docs/own_dataset.md, run as written: the toy photos, the contact sheet, the pipeline, a tiny training."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from rfgen_jax import config_utils
from rfgen_jax import data
from rfgen_jax.data import annotations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "own_dataset.md")


def _blocks(kind):
  return re.findall(r"```" + kind + r"\n(.*?)```", open(DOC).read(), flags=re.S)


def _command(prefix):
  """The doc's `sh` command starting with `prefix`, as an argv for this interpreter."""
  (line,) = [b.strip() for b in _blocks("sh") if b.strip().startswith(prefix)]
  argv = shlex.split(line)
  assert argv[0] == "python"
  return [sys.executable] + argv[1:]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """The doc's Python block run in a fresh folder (it writes my_images/); configs/ linked as in a checkout."""
  folder = str(tmp_path_factory.mktemp("own"))
  os.symlink(os.path.join(ROOT, "configs"), os.path.join(folder, "configs"))
  (code,) = _blocks("python")
  cwd = os.getcwd()
  os.chdir(folder)
  try:
    exec(compile(code, DOC, "exec"), {"__name__": "__doc_example__"})  # pylint: disable=exec-used
  finally:
    os.chdir(cwd)
  return folder


def _config(workdir, **overrides):
  config = config_utils.load_config(os.path.join(ROOT, "configs/folder.py:tiny"))
  config.data.root = os.path.join(workdir, "my_images")
  for key, value in overrides.items():
    section, name = key.split("__")
    config[section][name] = value
  return config


def test_example_builds_batches_through_the_pipeline(workdir):
  config = _config(workdir)
  config_utils.validate_config(config, num_devices=1)
  data.ensure_dataset(config)
  batch = next(data.create_train_iterator(config, 0, 1))
  assert batch["source_images"].shape == (2, 2, 32, 32, 3) and batch["source_poses"].shape == (2, 2, 32, 32, 18)
  assert batch["target_keypoints"].shape == (2, 18, 2)
  evals = data.create_eval_batches(config, 2, 0, 1)
  people = {row[-1].split("_")[0] for row in evals.names}
  assert people <= {"dave", "frank"} and len(evals.names) == config.eval.max_tuples
  for row in evals.names:                                    # sources share the target's identity
    assert len({n.split("_")[0] for n in row}) == 1 and len(set(row)) == 3
  # Keypoints are those of the CSV, rescaled from 128x64 to 32x32 with pixel centres kept.
  table = annotations.read_annotations(os.path.join(config.data.root, "annotations-test.csv"))
  first = next(iter(evals))
  kp = table[evals.names[0][-1]]
  expected = np.where(kp >= 0, (kp + 0.5) * np.array([32 / 128, 32 / 64]) - 0.5, -1)
  expected[(kp < 0).any(-1)] = -1
  np.testing.assert_allclose(first["target_keypoints"][0], expected, atol=1e-5)


def test_identity_rules(workdir, tmp_path):
  """The folder and column rules give the same identities as the default prefix rule."""
  import shutil
  src = os.path.join(workdir, "my_images")
  by_prefix = data.create_eval_batches(_config(workdir), 1, 0, 1).names
  for rule in ("folder", "column"):
    root = str(tmp_path / rule)
    for split in ("train", "test"):
      lines = open(os.path.join(src, f"annotations-{split}.csv")).read().splitlines()
      out = ["name:keypoints_y:keypoints_x" + (":identity" if rule == "column" else "")]
      for line in lines[1:]:
        name, rest = line.split(":", 1)
        person, number = name.split("_")
        new = f"{person}/{number}" if rule == "folder" else f"img{person}{number}"
        os.makedirs(os.path.dirname(os.path.join(root, split, new)), exist_ok=True)
        shutil.copy(os.path.join(src, split, name), os.path.join(root, split, new))
        out.append(f"{new}:{rest}" + (f":{person}" if rule == "column" else ""))
      open(os.path.join(root, f"annotations-{split}.csv"), "w").write("\n".join(out) + "\n")
    config = _config(workdir, data__folder_identity=rule)
    config.data.root = root
    names = data.create_eval_batches(config, 1, 0, 1).names
    strip = (lambda n: n.replace("/", "_")) if rule == "folder" else (lambda n: n[3:])
    assert len(names) == len(by_prefix)
    assert {tuple(strip(n) for n in row) for row in names} == \
        {tuple(n.replace("_", "") if rule == "column" else n for n in row) for row in by_prefix}


def test_bad_input_is_named(workdir, tmp_path):
  config = _config(workdir)
  config.data.root = str(tmp_path / "absent")
  with pytest.raises(FileNotFoundError, match=r"annotations-train.csv.*docs/own_dataset.md|docs/own_dataset.md"):
    data.ensure_dataset(config)
  config = _config(workdir, data__folder_identity="nickname")
  with pytest.raises(ValueError, match="folder_identity='nickname'"):
    data.create_train_iterator(config, 0, 1)


def test_contact_sheet_command(workdir):
  proc = subprocess.run(_command("python -m rfgen_jax.data.contact_sheet"), cwd=workdir, capture_output=True,
                        text=True, timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
  assert proc.returncode == 0, proc.stderr[-3000:]
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(os.path.join(workdir, "sheet.png")) as im:
    assert im.size[0] > 4 * 32 and im.size[1] > 4 * 32


@pytest.mark.slow
def test_training_command(workdir):
  proc = subprocess.run(_command("python -m rfgen_jax.main"), cwd=workdir, capture_output=True, text=True,
                        timeout=1200, env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
  assert proc.returncode == 0, proc.stderr[-5000:]
  table = open(os.path.join(workdir, "my_run", "eval", "table.md")).read()
  assert "| 1 |" in table and "| 3 |" in table
