"""Fine-tuning (`train.init_from`, rfgen_jax/train/init_from.py): a run starts from a training run's or a
released model's weights with fresh optimizer states at step 0, trains from there, resumes its own
checkpoint rather than starting again, and refuses a source of another model shape, naming the keys."""
import logging
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from rfgen_jax import config_utils, errors, job, models
from rfgen_jax.runtime import checkpointing, pretrained, state as state_lib
from rfgen_jax.train import init_from, trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(data_root, **overrides):
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root = data_root
  config.train.eval_at_end = False
  for key, value in overrides.items():
    section, name = key.split("__")
    config[section][name] = value
  return config


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("synthetic_data"))


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, data_root):
  """A tiny run of 4 steps (checkpoints at 2 and 4): the source the tests fine-tune from."""
  workdir = str(tmp_path_factory.mktemp("source") / "run")
  job.train_and_evaluate(tiny(data_root), workdir)
  return workdir


def saved_state(config, workdir, step):
  """The whole TrainState of checkpoint `step` of a run, on the host."""
  abstract = state_lib.abstract_state(config, models.build_generator(config), models.build_discriminator(config))
  checkpointer = checkpointing.Checkpointer(workdir, config)
  try:
    return jax.device_get(checkpointer.restore(step, abstract, config))
  finally:
    checkpointer.close()


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_fresh_optimizer_states(state):
  """Adam's moments are zeros and its counts 0 (what `optax.adam(...).init` gives for any parameters)."""
  for opt_state in (state.flow_opt_state, state.gen_opt_state, state.disc_opt_state):
    leaves = jax.tree.leaves(opt_state)
    assert leaves
    for leaf in leaves:
      assert not np.any(np.asarray(leaf)), "an optimizer state is not fresh"


def write_release(run, directory, name="tiny-release"):
  """A released model in the format of rfgen_jax/runtime/pretrained.py, made from `run`'s latest checkpoint
  (its EMA generator parameters and config.json; the card's facts a release tool would add are left out)."""
  config = tiny(None)
  state = saved_state(config, run, 4)
  os.makedirs(directory)
  pretrained.save_params(os.path.join(directory, pretrained.PARAMS_FILE), state.ema_params)
  shutil.copy(os.path.join(run, "config.json"), os.path.join(directory, pretrained.CONFIG_FILE))
  shutil.copy(os.path.join(run, "samples", "step_0000004.png"), os.path.join(directory, pretrained.SAMPLES_FILE))
  with open(os.path.join(directory, pretrained.CARD_FILE), "w") as f:
    f.write(f"# {name}\n\nA 4-step tiny run, for tests.\n")
  pretrained.write_manifest(directory, {"name": name, "description": "tests/test_init_from.py"})
  return state.ema_params


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory, data_root, source_run):
  """A run started from `source_run` (its workdir): (the trainer's state before training, the workdir),
  then trained 4 steps (both stages) and closed."""
  workdir = str(tmp_path_factory.mktemp("fine_tune") / "run")
  config = tiny(data_root, train__init_from=source_run, train__seed=1)
  tr = trainer.Trainer(config, workdir, config_utils.setup_run(config))
  try:
    before = jax.device_get(tr.state)
    tr.run()
  finally:
    tr.close()
  return before, workdir


def test_init_from_a_run_takes_its_generator_and_discriminator_with_fresh_optimizer_states(
    data_root, source_run, fine_tune):
  before, _ = fine_tune
  source = saved_state(tiny(data_root), source_run, 4)
  assert int(before.step) == 0
  assert_trees_equal(before.gen_params, source.ema_params)    # the run's EMA generator
  assert_trees_equal(before.ema_params, source.ema_params)    # the EMA starts equal to it
  assert_trees_equal(before.disc_params, source.disc_params)  # same shapes: the run's discriminator
  assert_trees_equal(before.disc_stats, source.disc_stats)
  assert_fresh_optimizer_states(before)


def test_the_fine_tune_trains_from_there_and_writes_init_from_in_its_config(data_root, source_run, fine_tune):
  before, workdir = fine_tune
  config = tiny(data_root, train__init_from=source_run, train__seed=1)
  after = saved_state(config, workdir, 4)
  assert int(after.step) == 4
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         before.gen_params, after.gen_params)
  assert all(jax.tree.leaves(changed["flow_estimator"]["flow_2"]))   # a flow head: both stages
  assert all(jax.tree.leaves(changed["decoder"]["out"]))              # the output conv: stage 2
  with open(os.path.join(workdir, "config.json")) as f:
    assert f'"init_from": "{source_run}"' in f.read()


def test_a_fine_tune_with_a_checkpoint_resumes_it_and_ignores_init_from(
    tmp_path, data_root, source_run, fine_tune, caplog):
  _, finished = fine_tune
  caplog.set_level(logging.INFO)
  workdir = shutil.copytree(finished, str(tmp_path / "run"))
  config = tiny(data_root, train__init_from=source_run, train__seed=1, train__total_steps=6)
  tr = trainer.Trainer(config, workdir, config_utils.setup_run(config))
  try:
    assert int(jax.device_get(tr.state.step)) == 4
    assert_trees_equal(jax.device_get(tr.state), saved_state(config, workdir, 4))   # all of it, opt states too
  finally:
    tr.close()
  assert any("is ignored: the workdir holds a checkpoint (step 4)" in r.getMessage() for r in caplog.records)


def test_init_from_a_checkpoint_step(data_root, source_run):
  config = tiny(data_root, train__init_from=os.path.join(source_run, "checkpoints", "2"))
  abstract = state_lib.abstract_state(config, models.build_generator(config), models.build_discriminator(config))
  initial = init_from.load(config, abstract, jax.sharding.make_single_device_sharding(jax.devices()[0]))
  assert_trees_equal(jax.device_get(initial.gen_params), saved_state(config, source_run, 2).ema_params)
  assert "checkpoints/2" in initial.description
  config.train.init_from = os.path.join(source_run, "checkpoints", "3")
  with pytest.raises(errors.MissingFileError, match=r"no checkpoint for step 3 .*available steps: \[2, 4\]"):
    init_from.load(config, abstract, jax.sharding.make_single_device_sharding(jax.devices()[0]))


def test_init_from_a_released_model_by_folder_and_by_name(tmp_path, data_root, source_run, monkeypatch):
  released = tmp_path / "pretrained"
  params = write_release(source_run, str(released / "tiny-release"))
  config = tiny(data_root)
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  abstract = state_lib.abstract_state(config, gen, disc)
  scratch = jax.device_get(state_lib.create_state(config, jax.random.PRNGKey(config.train.seed), gen, disc))
  device = jax.sharding.make_single_device_sharding(jax.devices()[0])
  monkeypatch.setattr(pretrained, "releases_dir", lambda: str(released))
  for spec in (str(released / "tiny-release"), "tiny-release"):
    config.train.init_from = spec
    initial = init_from.load(config, abstract, device)
    assert initial.disc_variables is None                    # a release holds no discriminator
    state = jax.device_get(state_lib.create_state(
        config, jax.random.PRNGKey(config.train.seed), gen, disc, gen_params=initial.gen_params))
    assert int(state.step) == 0
    assert_trees_equal(state.gen_params, params)
    assert_trees_equal(state.ema_params, params)
    assert_trees_equal(state.disc_params, scratch.disc_params)   # drawn as in a run from scratch
    assert_fresh_optimizer_states(state)
  config.train.init_from = "no-such-release"
  with pytest.raises(errors.MissingEntryError, match=r"names neither a training run .* \(available: tiny-release;"):
    init_from.load(config, abstract, device)
  wider = tiny(data_root, model__width=0.25, model__levels=(4, 2), train__init_from="tiny-release")
  wider_abstract = state_lib.abstract_state(wider, models.build_generator(wider), models.build_discriminator(wider))
  with pytest.raises(errors.BadInputError, match=r"model.width: source=0.125 now=0.25; model.levels: "):
    init_from.load(wider, wider_abstract, device)


def test_a_source_of_another_shape_is_refused_naming_the_keys_exit_2(tmp_path, data_root, source_run):
  """Through `python -m rfgen_jax.main`: one line naming the keys, exit status 2, no workdir left."""
  workdir = str(tmp_path / "wide")
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}   # the TFDS copy of data_root
  run = subprocess.run(
      [sys.executable, "-m", "rfgen_jax.main", "--config=configs/synthetic.py:tiny", f"--workdir={workdir}",
       f"--config.data.root={data_root}", "--config.model.width=0.25", "--config.model.disc_channels=16",
       f"--config.train.init_from={source_run}"], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=600)
  assert run.returncode == 2, run.stderr[-3000:]
  assert "Traceback" not in run.stderr
  message = [line for line in run.stderr.splitlines() if line.strip()][-1]
  assert message.startswith("rfgen_jax.main: --config.train.init_from="), message
  assert "model.width: source=0.125 now=0.25" in message
  assert "model.disc_channels" not in message     # the discriminator's keys do not refuse a source
  assert not os.path.exists(workdir)


def test_a_discriminator_of_other_shapes_is_drawn(data_root, source_run):
  config = tiny(data_root, model__disc_channels=16, train__init_from=source_run)
  gen, disc = models.build_generator(config), models.build_discriminator(config)
  abstract = state_lib.abstract_state(config, gen, disc)
  initial = init_from.load(config, abstract, jax.sharding.make_single_device_sharding(jax.devices()[0]))
  assert initial.disc_variables is None and "a new discriminator" in initial.description
  assert_trees_equal(jax.device_get(initial.gen_params), saved_state(tiny(data_root), source_run, 4).ema_params)


def test_fine_tuning_starts_from_the_released_demo_model_by_name():
  """The release in pretrained/ (issue 30): `train.init_from=people-64x32-demo` on the demo's config gives
  the released parameters, checksums verified."""
  name = "people-64x32-demo"
  if name not in pretrained.available():
    pytest.skip(f"{name} is not in {pretrained.releases_dir()}")
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py"))
  config.train.init_from = name
  abstract = state_lib.abstract_state(config, models.build_generator(config), models.build_discriminator(config))
  initial = init_from.load(config, abstract, jax.sharding.make_single_device_sharding(jax.devices()[0]))
  assert initial.disc_variables is None
  assert_trees_equal(jax.device_get(initial.gen_params), pretrained.load_release(name).params)
  # configs/vtest.py builds the demo's shapes (SHAPE_KEYS agree) but not its switches, one of which adds
  # norm layers: refused, naming the parameters and the switches.
  vtest = config_utils.load_config(os.path.join(ROOT, "configs/vtest.py"))
  vtest.train.init_from = name
  abstract = state_lib.abstract_state(vtest, models.build_generator(vtest), models.build_discriminator(vtest))
  with pytest.raises(errors.BadInputError, match=r"other shapes .*/norm/.*model switches differ: .*"
                                                 r"model\.jump_norm: source=True now=False"):
    init_from.load(vtest, abstract, jax.sharding.make_single_device_sharding(jax.devices()[0]))
