"""Configs: every data set config loads with the common key set, and bad settings fail early and clearly."""
import json
import os
import subprocess
import sys

import pytest

from configs import common
from rfgen_jax import config_utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ["configs/synthetic.py", "configs/market.py", "configs/deepfashion.py",
           "configs/market.py:runlocal", "configs/deepfashion.py:runlocal", "configs/synthetic.py:tiny",
           "configs/shapenet_chair.py", "configs/shapenet_chair.py:runlocal", "configs/kitti.py",
           "configs/kitti.py:runlocal", "configs/voxceleb2.py", "configs/voxceleb2.py:runlocal",
           "configs/turntable.py", "configs/turntable.py:tiny", "configs/people_128x64.py",
           "configs/people_128x64.py:tiny"]
REQUIRED_KEYS = ["data.root", "data.image_size", "data.num_sources", "model.width", "model.levels",
                 "model.residual_flow", "model.occlusion", "model.attention", "train.batch_size",
                 "train.flow_warmup_steps", "train.total_steps", "train.seed", "checkpoint.every_steps",
                 "eval.num_sources", "losses.vgg19_weights", "losses.allow_random_vgg"]


@pytest.mark.parametrize("spec", CONFIGS)
def test_config_loads_validates_and_has_required_keys(spec):
  config = config_utils.load_config(os.path.join(ROOT, spec))
  for key in REQUIRED_KEYS:
    config_utils.lookup(config, key)
  config_utils.validate_config(config, num_devices=1)
  json.loads(config.to_json_best_effort())


def _keys(node, prefix=""):
  out = set()
  for key, value in node.items():
    out |= _keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
  return out


def test_every_config_has_the_same_key_set():
  """Data set configs set values; they never add keys (configs/common.py holds them all)."""
  base = _keys(common.get_base_config())
  for spec in CONFIGS:
    keys = _keys(config_utils.load_config(os.path.join(ROOT, spec)))
    assert keys == base, (spec, sorted(keys ^ base))


def test_pose_channels_must_match_the_encoder():
  config = config_utils.load_config(os.path.join(ROOT, "configs/shapenet_chair.py"))
  config.data.num_elevations = 4
  with pytest.raises(ValueError, match=r"--config.data.pose_channels=39 .*set --config.data.pose_channels=40"):
    config_utils.validate_config(config)
  config = config_utils.load_config(os.path.join(ROOT, "configs/voxceleb2.py"))
  config.data.name = "depth"
  with pytest.raises(ValueError, match="data.name='depth'"):
    config_utils.validate_config(config)


def test_paper_defaults():
  c = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  assert c.model.levels == (8, 4, 2) and c.data.num_sources == 2 and c.train.batch_size == 8
  assert (c.losses.l1, c.losses.perceptual, c.losses.style, c.losses.adversarial) == (5.0, 0.5, 500.0, 2.0)
  assert (c.losses.warmup_correctness, c.losses.warmup_regularization) == (20.0, 0.01)
  assert c.train.learning_rate == 1e-4 and c.train.disc_learning_rate == 1e-5
  assert c.losses.allow_random_vgg is False and c.eval.num_sources == (1, 2, 3)
  df = config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py"))
  assert df.data.image_size == (256, 256) and df.train.batch_size == 5 and df.model.disc_downsampling == 4
  assert config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py:size=256x176")).data.image_size == (256, 176)


DEMO_SWITCHES = (("model", "init"), ("model", "attention_activation"), ("model", "jump_norm"),
                 ("model", "output_norm"), ("losses", "vgg_input"), ("losses", "correctness_level_weights"))


def test_only_the_demo_leaves_gflas_model_defaults():
  """configs/synthetic.py sets the earlier rfgen_jax switches (README, "The demo: what it shows"); its
  `:tiny` test variant, the ablation study and the people data sets keep GFLA's protocol defaults."""
  from configs import ablation, market, synthetic  # pylint: disable=import-outside-toplevel
  base = common.get_base_config()
  demo = synthetic.get_config()
  assert (demo.model.init, demo.model.attention_activation, demo.model.jump_norm, demo.model.output_norm,
          demo.losses.vgg_input, tuple(demo.losses.correctness_level_weights)) == (
              "lecun", "none", True, True, "imagenet", (1.0, 1.0, 1.0))
  assert base.model.init == "orthogonal" and base.losses.vgg_input == "gfla"
  for other in (synthetic.get_config("tiny"), ablation.get_config(), ablation.get_config("tiny"),
                market.get_config()):
    for section, key in DEMO_SWITCHES:
      assert other[section][key] == base[section][key], (section, key)


def test_parse_arg():
  arg = common.parse_arg("runlocal,width=0.5", runlocal=False, width=1.0)
  assert arg.runlocal is True and arg.width == 0.5
  with pytest.raises(ValueError, match="Unknown config argument 'bogus'"):
    common.parse_arg("bogus", runlocal=False)


@pytest.mark.parametrize("key,value,match", [
    ("data.num_sources", 0, "data.num_sources"),
    ("eval.num_sources", (1, 0), "eval.num_sources"),
    ("data.image_size", (100, 64), "data.image_size"),
    ("model.levels", (2, 4, 8), "model.levels"),
    ("losses.affine_kernel_sizes", (3,), "losses.affine_kernel_sizes"),
    ("losses.gan", "wgan", "losses.gan"),
    ("losses.keypoint_flow_form", "tps", r"losses.keypoint_flow_form='tps'; accepted: \('points', 'dense'\)"),
    ("model.dtype", "float16", "model.dtype"),
    ("train.flow_warmup_steps", 10**9, "flow_warmup_steps"),
])
def test_validation_names_the_key(key, value, match):
  config = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    config_utils.validate_config(config)


def test_batch_must_divide_devices():
  config = config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py"))
  with pytest.raises(ValueError, match=r"train.batch_size=5 is not divisible by the 2 devices"):
    config_utils.validate_config(config, num_devices=2)


def test_differing_shape_keys_names_keys():
  config = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  saved = json.loads(config.to_json_best_effort())
  assert config_utils.differing_shape_keys(saved, config) == []
  config.model.width = 0.5
  config.train.total_steps = 7     # not a shape key
  diff = config_utils.differing_shape_keys(saved, config)
  assert len(diff) == 1 and diff[0].startswith("model.width")


def test_main_rejects_mistyped_key(tmp_path):
  """A mistyped --config. override stops main before anything runs (the config is locked)."""
  result = subprocess.run(
      [sys.executable, "-m", "rfgen_jax.main", "--config=configs/synthetic.py:tiny",
       f"--workdir={tmp_path}", "--config.train.totl_steps=3"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert "totl_steps" in result.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


def test_keys_that_do_not_change_reading_a_run_are_not_reported_missing():
  """A config.json written before a reading-irrelevant key existed (config_utils.READING_IRRELEVANT_KEYS,
  e.g. train.init_from: how a run starts) is still read; a missing model key is still reported."""
  saved = json.loads(config_utils.load_config("configs/synthetic.py:tiny").to_json_best_effort())
  for key in config_utils.READING_IRRELEVANT_KEYS:
    section, name = key.split(".")
    saved[section].pop(name, None)
  assert config_utils.keys_missing_from(saved) == []
  completed = config_utils.with_reading_irrelevant_defaults(saved)
  base = common.get_base_config()
  for key in config_utils.READING_IRRELEVANT_KEYS:
    section, name = key.split(".")
    if name not in base[section]:
      continue
    assert completed[section][name] == base[section][name] and name not in saved[section]
  del saved["model"]["init"]
  assert config_utils.keys_missing_from(saved) == ["model.init"]
