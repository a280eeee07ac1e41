"""The grain pipeline end to end on a Market-layout fixture and the synthetic set; the stored split index."""
import os
import shutil

import numpy as np
import pytest

from configs import market
from rfgen_jax import data
from rfgen_jax.data import pipeline
from rfgen_jax.data import split_index
from rfgen_jax.data.datasets import people_tfds
from tests.data_fixtures import colour_of
from tests.data_fixtures import write_market_fixture

KEYS = {"source_images", "source_poses", "target_image", "target_pose", "source_keypoints",
        "target_keypoints", "valid"}


def _config(root, tfds_dir, **overrides):
  c = market.get_config()
  c.data.root = str(root)
  c.data.tfds_data_dir = str(tfds_dir)
  c.data.image_size = (32, 16)
  c.data.num_workers = 0
  c.train.batch_size = 4
  c.eval.batch_size = 4
  for k, v in overrides.items():
    section, key = k.split(".")
    c[section][key] = v
  return c


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
  base = tmp_path_factory.mktemp("pipe")
  expected = write_market_fixture(str(base / "market"))
  return base, expected


def test_builder_prepares_and_reads_back(fixture):
  base, expected = fixture
  config = _config(base / "market", base / "tfds")
  builder = people_tfds.prepare_copy(config)
  assert str(base / "tfds") in str(builder.data_dir)
  assert not any("tfds" in p or p.endswith(".array_record") for p in os.listdir(base / "market"))
  for split in ("train", "test"):
    src = builder.as_data_source(split)
    records = [src[i] for i in range(len(src))]
    assert {r["name"].decode(): r["identity"].decode() for r in records} == expected[split]
    for r in records:
      assert r["image"].shape == (32, 16, 3) and r["image"].dtype == np.uint8
      assert r["keypoints"].shape == (18, 2) and r["keypoints"].dtype == np.float32
      median = np.median(r["image"].reshape(-1, 3), axis=0)
      np.testing.assert_allclose(median, colour_of(r["identity"].decode()), atol=3)


def _check_batch(batch, b, k, h, w):
  assert set(batch) == KEYS
  assert batch["source_images"].shape == (b, k, h, w, 3)
  assert batch["source_poses"].shape == (b, k, h, w, 18)
  assert batch["target_image"].shape == (b, h, w, 3)
  assert batch["target_pose"].shape == (b, h, w, 18)
  assert batch["source_keypoints"].shape == (b, k, 18, 2)
  assert batch["target_keypoints"].shape == (b, 18, 2)
  assert batch["valid"].shape == (b,) and batch["valid"].dtype == np.bool_
  for key in KEYS - {"valid"}:
    assert batch[key].dtype == np.float32, key
  for key in ("source_images", "target_image"):
    assert batch[key].min() >= -1.0 and batch[key].max() <= 1.0
  for key in ("source_poses", "target_pose"):
    assert batch[key].min() >= 0.0 and batch[key].max() <= 1.0 + 1e-6


def _identity_of_image(image):
  """The fixture paints each identity a flat colour (plus keypoint dots): recover it by the median."""
  return np.round((np.median(image.reshape(-1, 3), axis=0) + 1) * 127.5)


def test_train_batches_contract_and_identity(fixture):
  base, _ = fixture
  config = _config(base / "market", base / "tfds", **{"data.augment": False, "data.num_sources": 3})
  it = data.create_train_iterator(config, 0, 1)
  ids = {colour_of(i) for i in ("0002", "0007", "0011")}
  for _ in range(4):
    batch = next(it)
    _check_batch(batch, 4, 3, 32, 16)
    assert batch["valid"].all()
    for i in range(4):
      tgt = _identity_of_image(batch["target_image"][i])
      assert min(np.abs(tgt - np.array(c)).max() for c in ids) <= 3
      for s in batch["source_images"][i]:
        assert np.abs(_identity_of_image(s) - tgt).max() <= 3                       # same identity
        assert not np.array_equal(s, batch["target_image"][i])                       # never the target
      # Without augmentation, heatmaps peak at the keypoints carried in the batch.
      kp = batch["target_keypoints"][i]
      j = int(np.argmax((kp >= 0).all(-1)))
      y, x = np.round(kp[j]).astype(int)
      assert batch["target_pose"][i, y, x, j] > 0.9


def test_state_restore_continues_the_same_stream(fixture):
  base, _ = fixture
  config = _config(base / "market", base / "tfds")
  it = data.create_train_iterator(config, 0, 1)
  for _ in range(3):        # go past an epoch (9 train images, batches of 4)
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  fresh = data.create_train_iterator(config, 0, 1)
  fresh.set_state(state)
  for a, b in zip(expected, [next(fresh) for _ in range(3)]):
    for key in KEYS:
      np.testing.assert_array_equal(a[key], b[key])


def test_hosts_split_the_global_batch(fixture):
  base, _ = fixture
  config = _config(base / "market", base / "tfds")
  one = next(data.create_train_iterator(config, 0, 1))
  halves = [next(data.create_train_iterator(config, p, 2)) for p in range(2)]
  assert halves[0]["target_image"].shape[0] == 2
  # host p holds rows [p * B / P, (p + 1) * B / P) of the global batch (sharding.to_global_batch's layout)
  stacked = np.concatenate([halves[0]["target_image"], halves[1]["target_image"]], 0)
  np.testing.assert_array_equal(stacked, one["target_image"])
  with pytest.raises(ValueError, match="not divisible"):
    data.create_train_iterator(config, 0, 3)


def test_eval_batches_fixed_and_padded(fixture, tmp_path):
  base, expected = fixture
  config = _config(base / "market", base / "tfds")
  ev = data.create_eval_batches(config, 2, 0, 1)
  assert len(ev.names) == len(expected["test"]) == 10 and len(ev) == 3
  assert [n[-1] for n in ev.names] == sorted(expected["test"])
  batches = list(ev)
  assert len(batches) == 3
  for b in batches:
    _check_batch(b, 4, 2, 32, 16)
  assert batches[-1]["valid"].tolist() == [True, True, False, False]
  again = data.create_eval_batches(config, 2, 0, 1)
  assert again.names == ev.names
  np.testing.assert_array_equal(next(iter(again))["source_images"], batches[0]["source_images"])
  path = tmp_path / "tuples.csv"
  data.write_test_tuples_csv(str(path), ev.names)
  assert data.read_test_tuples_csv(str(path)) == ev.names
  one_source = data.create_eval_batches(config, 1, 0, 1)
  assert [n[:1] + n[-1:] for n in ev.names] == one_source.names       # nested sources across K
  # Two hosts: every host yields the same number of batches; their rows together are the global batch.
  hosts = [list(data.create_eval_batches(config, 2, p, 2)) for p in range(2)]
  assert len(hosts[0]) == len(hosts[1]) == 3
  joined = np.concatenate([hosts[0][2]["target_image"], hosts[1][2]["target_image"]])
  np.testing.assert_array_equal(joined[:2], batches[2]["target_image"][:2])
  config.eval.max_tuples = 5
  assert len(data.create_eval_batches(config, 2, 0, 1).names) == 5


def test_resize_rescales_keypoints(fixture):
  base, _ = fixture
  config = _config(base / "market", base / "tfds", **{"data.image_size": (64, 32)})
  b = next(iter(data.create_eval_batches(config, 1, 0, 1)))
  _check_batch(b, 4, 1, 64, 32)
  # The fixture draws a white dot at every keypoint of a flat image: the dot follows the rescaled keypoint.
  for i in range(4):
    img = b["target_image"][i].mean(-1)
    for y, x in b["target_keypoints"][i]:
      if y >= 0:
        yi, xi = int(round(y)), int(round(x))
        assert img[yi, xi] > np.median(img) + 0.2


def test_missing_root_explains_layout(tmp_path):
  config = _config(tmp_path / "nowhere", tmp_path / "tfds")
  with pytest.raises(FileNotFoundError) as e:
    data.ensure_dataset(config)
  msg = str(e.value)
  for text in ("Market-1501", "market-annotation-train.csv", "configs/synthetic.py", "nowhere"):
    assert text in msg
  config.data.name = "deepfashion"
  with pytest.raises(FileNotFoundError, match="fasion-annotation-train.csv"):
    data.ensure_dataset(config)


def test_corrupt_image_named_or_skipped(fixture, tmp_path):
  base, expected = fixture
  root = tmp_path / "m"
  shutil.copytree(base / "market", root)
  victim = sorted(expected["train"])[0]
  (root / "train" / victim).write_bytes(b"not a jpeg at all")
  config = _config(root, tmp_path / "tfds")
  with pytest.raises(ValueError, match=victim):     # preparing the TFDS copy decodes every image once
    data.ensure_dataset(config)
  with pytest.raises(ValueError, match=victim):
    next(data.create_train_iterator(config, 0, 1))
  config.data.skip_corrupt_images = True
  index = pipeline.open_split(config, "train")
  assert victim not in index.names and len(index.names) == len(expected["train"]) - 1
  _check_batch(next(data.create_train_iterator(config, 0, 1)), 4, 2, 32, 16)


def test_synthetic_end_to_end(tmp_path):
  from configs import synthetic as synthetic_config
  config = synthetic_config.get_config("tiny")
  config.data.root = str(tmp_path / "synthetic")
  config.data.tfds_data_dir = str(tmp_path / "tfds")
  data.ensure_dataset(config)
  h, w = config.data.image_size
  batch = next(data.create_train_iterator(config, 0, 1))
  _check_batch(batch, config.train.batch_size, config.data.num_sources, h, w)
  ev = data.create_eval_batches(config, 3, 0, 1)
  _check_batch(next(iter(ev)), config.eval.batch_size, 3, h, w)


def test_workers_fall_back_without_parsed_flags(fixture, caplog):
  from absl import flags
  if flags.FLAGS.is_parsed():
    pytest.skip("absl flags already parsed in this process")
  base, _ = fixture
  config = _config(base / "market", base / "tfds", **{"data.num_workers": 2})
  with caplog.at_level("WARNING"):
    _check_batch(next(data.create_train_iterator(config, 0, 1)), 4, 2, 32, 16)
  assert "main process" in caplog.text


def test_split_index_stored_and_no_record_read_when_opening(fixture, monkeypatch):
  """Opening a prepared split reads the stored index (names, identities), never a record; once per process."""
  base, expected = fixture
  config = _config(base / "market", base / "tfds")
  data.ensure_dataset(config)
  builder = people_tfds.make_builder(config)
  for split in ("train", "test"):
    assert os.path.isfile(os.path.join(os.fspath(builder.data_dir), people_tfds.INDEX_FILE.format(split=split)))
  split_index.clear_cache()
  reads = []
  original = people_tfds._Source.__getitem__   # pylint: disable=protected-access
  monkeypatch.setattr(people_tfds._Source, "__getitem__",  # pylint: disable=protected-access
                      lambda self, i: reads.append((self, i)) or original(self, i))
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  opened = []
  real_as_data_source = tfds.core.GeneratorBasedBuilder.as_data_source

  def as_data_source(self, *args, **kwargs):
    source = real_as_data_source(self, *args, **kwargs)
    opened.append(source)
    monkeypatch.setattr(type(source), "__getitem__", lambda *a: pytest.fail("a record was read"))
    return source

  monkeypatch.setattr(tfds.core.GeneratorBasedBuilder, "as_data_source", as_data_source)
  index = pipeline.open_split(config, "test")
  # Only this split's source counts: an earlier test's training iterator may still be prefetching.
  assert dict(zip(index.names, index.identities)) == expected["test"]
  assert not [i for source, i in reads if source is index.source]
  for k in (1, 2, 3):                       # evaluating K = 1, 2, 3 opens the split once
    assert len(data.create_eval_batches(config, k, 0, 1).names) == len(expected["test"])
  assert len(opened) == 1


def test_prepare_runs_once_on_process_zero_then_barrier(monkeypatch):
  from rfgen_jax.data import prepare
  events = []
  monkeypatch.setattr(prepare, "barrier", lambda name: events.append(("barrier", name)))
  assert prepare.run_once(lambda: events.append("fn") or 7, "x", 0, 1) == 7 and events == ["fn"]
  events.clear()
  prepare.run_once(lambda: events.append("fn"), "x", 0, 2)
  assert events == ["fn", ("barrier", "rfgen_jax data: x")]
  events.clear()
  prepare.run_once(lambda: events.append("fn"), "x", 1, 2)
  assert events == [("barrier", "rfgen_jax data: x"), "fn"]     # others only after process 0 is done


def test_read_threads_reach_grain_and_are_checked(fixture, monkeypatch):
  """`data.read_threads` is the number of grain read threads of the train and eval iterators; a value
  below 1 is refused, naming the flag. The same batch comes out with 1 and with 3 threads."""
  base, _ = fixture
  seen = []
  read_options = pipeline.grain.ReadOptions
  monkeypatch.setattr(pipeline.grain, "ReadOptions",
                      lambda **kw: (seen.append(kw["num_threads"]), read_options(**kw))[1])
  batches = {}
  for threads in (1, 3):
    config = _config(base / "market", base / "tfds", **{"data.read_threads": threads})
    batches[threads] = next(data.create_train_iterator(config, 0, 1))
    next(iter(data.create_eval_batches(config, 2, 0, 1)))
  assert seen == [1, 1, 3, 3]
  for name, value in batches[1].items():
    np.testing.assert_array_equal(value, batches[3][name], err_msg=name)
  config = _config(base / "market", base / "tfds", **{"data.read_threads": 0})
  with pytest.raises(ValueError, match=r"--config\.data\.read_threads must be an integer >= 1, got 0"):
    data.create_train_iterator(config, 0, 1)
