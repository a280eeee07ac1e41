"""`jax.export` of the generator: the deserialised function matches the in-process generator."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from rfgen_jax import inference
from rfgen_jax.tools import export
from tests.test_generate import TINY, ROOT, tiny_config, write_checkpoint


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
  """(config, workdir, path of the export with symbolic b and k, metadata)."""
  workdir = str(tmp_path_factory.mktemp("run"))
  config = tiny_config()
  write_checkpoint(workdir, config, step=6, seed=3)
  path = os.path.join(workdir, "model.jaxexport")
  metadata = export.export_run(config, workdir, path)
  return config, workdir, path, metadata


def _inputs(config, b, k, seed=0):
  h, w = config.data.image_size
  p = config.data.pose_channels
  rng = np.random.default_rng(seed)
  return (rng.uniform(-1, 1, (b, k, h, w, 3)).astype(np.float32),
          rng.uniform(0, 1, (b, k, h, w, p)).astype(np.float32),
          rng.uniform(0, 1, (b, h, w, p)).astype(np.float32))


def test_export_round_trip_matches_generator(exported_run):
  config, workdir, path, metadata = exported_run
  assert metadata["inputs"]["source_images"] == ["b", "k", 32, 32, 3]
  assert metadata["step"] == 6
  loaded = export.load_exported(path)
  assert loaded.metadata["platforms"] == [jax.default_backend()]
  generator, params = inference.load_generator(config, workdir)
  args = _inputs(config, 1, 2)
  out = np.asarray(loaded(*args))
  assert out.shape == (1, 32, 32, 3)
  reference = inference.generate(generator, params, dict(zip(
      ("source_images", "source_poses", "target_pose"), args)))
  # Two programs: the exported module (lowered with symbolic batch and K, then compiled for these
  # shapes) and `inference.generate`'s jit; their rounding may differ by host. Measured equal to the bit
  # on this AVX2 host, also with `XLA_FLAGS=--xla_cpu_max_isa=AVX` or `SSE4_2`. 1e-5 on [-1, 1] images
  # is 80 float32 ulps at 1 and 1/780 of an 8-bit level (2/255).
  np.testing.assert_allclose(out, reference, atol=1e-5, rtol=1e-5)
  assert np.abs(out).max() > 1e-3              # not a constant/empty output
  # Symbolic batch and K: the one export accepts other shapes (checked without compiling).
  for b, k in ((1, 1), (3, 4), (2, 3)):
    assert jax.eval_shape(loaded, *_inputs(config, b, k)).shape == (b, 32, 32, 3)
  with pytest.raises(Exception, match="(?i)shape"):
    jax.eval_shape(loaded, *_inputs(config, 1, 2)[:2], np.zeros((2, 32, 32, 18), np.float32))


def test_loader_imports_only_jax_and_numpy():
  """Static check of export_loader.py: module-level imports and `load_exported`'s code need no flax/rfgen_jax."""
  tree = ast.parse(open(os.path.join(ROOT, "rfgen_jax", "tools", "export_loader.py")).read())
  top = set()
  for node in tree.body:
    if isinstance(node, ast.Import):
      top.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      top.add((node.module or "").split(".")[0])
  assert top <= {"__future__", "json", "typing", "jax", "numpy"}, top
  loader = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
            and n.name in ("load_exported", "ExportedGenerator", "_unflatten")]
  assert len(loader) == 3
  names = {n.id for part in loader for n in ast.walk(part) if isinstance(n, ast.Name)}
  assert not names & {"flax", "rfgen_jax", "inference", "models"}


@pytest.mark.slow
def test_loader_needs_no_flax_or_model_code(exported_run):
  config, _, path, _ = exported_run
  args = _inputs(config, 1, 2)
  np.savez(os.path.join(os.path.dirname(path), "args.npz"), *args)
  # Runs `load_exported` from the file's source in a fresh interpreter with flax and rfgen_jax blocked.
  code = f"""
import sys, types
class Block:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('flax', 'rfgen_jax', 'orbax', 'tensorflow'):
      raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
source = open({os.path.join(ROOT, 'rfgen_jax', 'tools', 'export_loader.py')!r}).read()
module = types.ModuleType('standalone_export')
exec(compile(source, 'export_loader.py', 'exec'), module.__dict__)
f = module.load_exported({path!r})
a = np.load({os.path.join(os.path.dirname(path), 'args.npz')!r})
print('SHAPE', tuple(f(a['arr_0'], a['arr_1'], a['arr_2']).shape))
"""
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "SHAPE (1, 32, 32, 3)" in result.stdout


def test_fixed_sizes_are_enforced(exported_run):
  config, workdir, _, _ = exported_run
  generator, params = inference.load_generator(config, workdir)
  exported = export.export_generator(generator, params, config.data.image_size,
                                     config.data.pose_channels, batch=1, num_sources=2)
  assert [tuple(a.shape) for a in exported.in_avals[-3:]] == [
      (1, 2, 32, 32, 3), (1, 2, 32, 32, 18), (1, 32, 32, 18)]
  with pytest.raises(ValueError, match="--num_sources must be >= 1"):
    export.export_run(config, workdir, os.path.join(workdir, "x"), num_sources=0)


def test_export_command_errors(tmp_path, capsys):
  assert export.main([f"--workdir={tmp_path}", f"--config={TINY}", "--out", str(tmp_path / "m")]) == 2
  assert "train first" in capsys.readouterr().err
  assert export.main([f"--workdir={tmp_path}", "--out", str(tmp_path / "m")]) == 2
  assert "no --config" in capsys.readouterr().err.lower()


def test_metadata_is_json(exported_run):
  _, _, path, _ = exported_run
  with np.load(path) as archive:
    meta = json.loads(bytes(archive["metadata"]).decode())
    assert meta["config"]["data"]["image_size"] == [32, 32]
    assert any(k.startswith("params/flow_estimator/") for k in archive.files)


def test_export_uses_ema_params_unless_raw(exported_run, tmp_path):
  """The archive holds the EMA parameters by default and the raw ones with raw_params (--raw_params)."""
  config, workdir, path, metadata = exported_run
  assert metadata["params"] == "ema"
  raw_path = str(tmp_path / "raw.jaxexport")
  assert export.main([f"--workdir={workdir}", f"--config={TINY}", "--out", raw_path, "--raw_params"]) == 0
  for archive_path, use_ema in ((path, True), (raw_path, False)):
    _, expected = inference.load_generator(config, workdir, use_ema=use_ema)
    with np.load(archive_path) as archive:
      for key, value in export._flatten(expected).items():   # pylint: disable=protected-access
        np.testing.assert_array_equal(archive[f"params/{key}"], value, err_msg=key)
