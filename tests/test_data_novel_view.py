"""M2N readers (ShapeNet chairs, KITTI), camera pose encoders, source sampling, the turntable set, configs."""
import os

import h5py
import numpy as np
import pytest

from rfgen_jax import config_utils
from rfgen_jax.data import poses
from rfgen_jax.data.datasets import m2n
from rfgen_jax.data import m2n_format
from rfgen_jax.data.synthetic import turntable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _image(seed, size=8):
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def chair_root(tmp_path):
  """2 train models and 1 test model, even azimuths 0..34 at elevations 0 and 10 (+ a 20 for model a)."""
  root = str(tmp_path / "shapenet")
  splits = {"train": [], "test": []}
  for split, models in (("train", ("ma", "mb")), ("test", ("mc",))):
    for m in models:
      for az in range(0, 36, 2):
        for el in (0, 10):
          splits[split].append((f"{m}_{az}_{el}", _image(hash((m, az, el)) % 1000), [az, el]))
  splits["train"].append(("ma_4_20", _image(7), [4, 20]))
  m2n_format.write_m2n(root, "chair", splits)
  return root


@pytest.fixture
def kitti_root(tmp_path):
  """Drive 00 frames 0..29 and drive 05 frames 100..119; test = every 5th frame."""
  root = str(tmp_path / "kitti")
  splits = {"train": [], "test": []}
  for drive, frames in (("00", range(30)), ("05", range(100, 120))):
    for fr in frames:
      pose = np.array([fr, 0.5 * fr, 0, 0.01 * fr, 0, 0], np.float32)
      splits["test" if fr % 5 == 0 else "train"].append((f"{drive}_{fr:06d}", _image(fr), pose))
  m2n_format.write_m2n(root, "kitti", splits)
  return root


# ------------------------------------------------------------------------------------------ readers
def test_load_chair_records(chair_root):
  train = m2n_format.load_m2n(chair_root, "chair", "train")
  assert len(train) == 2 * 18 * 2 + 1
  r = next(r for r in train if r.name == "mb_12_10")
  assert (r.identity, r.view, r.stratum) == ("mb", 12, 10)
  np.testing.assert_array_equal(r.pose, [12, 10])
  assert r.pose.dtype == np.float32
  image = m2n_format.ImageReader().read(r)
  assert image.shape == (8, 8, 3) and image.dtype == np.uint8
  test = m2n_format.load_m2n(chair_root, "chair", "test")
  assert {r.identity for r in test} == {"mc"}
  assert len(m2n_format.load_m2n(chair_root, "chair", "all")) == len(train) + len(test)


def test_load_kitti_records(kitti_root):
  train = m2n_format.load_m2n(kitti_root, "kitti", "train")
  r = next(r for r in train if r.name == "05_000103")
  assert (r.identity, r.view, r.stratum) == ("05", 103, 0) and r.pose.shape == (6,)
  mean, std = m2n.pose_statistics(train)
  assert mean.shape == (6,) and std[0] > 0 and std[2] == 0


def test_missing_group_names_file_and_line(chair_root):
  with open(os.path.join(chair_root, "id_chair_test.txt"), "a") as f:
    f.write("mz_0_0\n")
  with pytest.raises(KeyError, match=r"data_chair.hdf5 has no group 'mz_0_0'.*id_chair_test.txt, line 37"):
    m2n_format.load_m2n(chair_root, "chair", "test")


def test_missing_dataset_and_wrong_pose_length(chair_root, kitti_root):
  with h5py.File(os.path.join(chair_root, "data_chair.hdf5"), "a") as f:
    del f["mc_2_0"]["image"]
  with pytest.raises(KeyError, match=r"group 'mc_2_0' has no 'image' dataset"):
    m2n_format.load_m2n(chair_root, "chair", "test")
  with h5py.File(os.path.join(kitti_root, "data_kitti.hdf5"), "a") as f:
    del f["00_000005"]["pose"]
    f["00_000005"].create_dataset("pose", data=np.zeros(5))
  with pytest.raises(ValueError, match=r"data_kitti.hdf5: group '00_000005': 'pose' has 5 values, expected 6"):
    m2n_format.load_m2n(kitti_root, "kitti", "test")
  with pytest.raises(FileNotFoundError, match="data_car.hdf5"):
    m2n_format.load_m2n(chair_root, "car", "train")


def test_bad_id_names_the_line(tmp_path):
  root = str(tmp_path)
  m2n_format.write_m2n(root, "chair", {"train": [("noazimuth", _image(0), [0, 0])]})
  with pytest.raises(ValueError, match=r"'noazimuth' does not follow .*id_chair_train.txt, line 1"):
    m2n_format.load_m2n(root, "chair", "train")


# ------------------------------------------------------------------------------------------ sources
def _group_by_identity(records):
  groups = {}
  for r in records:
    groups.setdefault(r.identity, []).append(r)
  return groups


def _oracle_candidates(groups, target, window=None):
  """The record-based rule of M2N's loaders (the oracle of ViewSampler): same identity and stratum,
  another view (within +-window for KITTI), never the target; in view order."""
  out = [r for r in groups.get(target.identity, ())
         if r.name != target.name and r.stratum == target.stratum
         and (window is None or 0 < abs(r.view - target.view) <= window)]
  return sorted(out, key=lambda r: (r.view, r.name))


def _oracle_sample_sources(groups, target, k, rng, window=None):
  candidates = _oracle_candidates(groups, target, window)
  if not candidates:
    raise ValueError(f"No source candidates for {target.name!r}.")
  idx = rng.choice(len(candidates), size=k, replace=len(candidates) < k)
  return [candidates[i] for i in idx]


def test_view_sampler_matches_the_record_oracle(chair_root, kitti_root):
  for pool, window in ((m2n_format.load_m2n(chair_root, "chair", "train"), None),
                       (m2n_format.load_m2n(kitti_root, "kitti", "all"), 10),
                       (m2n_format.load_m2n(kitti_root, "kitti", "all"), 2)):
    sampler = m2n.ViewSampler(pool, window=window)
    groups = _group_by_identity(pool)
    for i, target in enumerate(pool):
      assert [pool[j].name for j in sampler.others(i)] == \
          [r.name for r in _oracle_candidates(groups, target, window)]
def test_object_sources_same_model_and_elevation(chair_root):
  train = m2n_format.load_m2n(chair_root, "chair", "train")
  groups = _group_by_identity(train)
  rng = np.random.default_rng(0)
  for target in train[::7]:
    sources = _oracle_sample_sources(groups, target, 4, rng)
    assert len({s.name for s in sources}) == 4
    for s in sources:
      assert s.identity == target.identity and s.stratum == target.stratum and s.name != target.name
  # ma at elevation 20 has a single view: no candidates.
  lonely = next(r for r in train if r.name == "ma_4_20")
  with pytest.raises(ValueError, match="No source candidates for 'ma_4_20'"):
    _oracle_sample_sources(groups, lonely, 2, rng)
  sampler = m2n.ViewSampler(train)
  t = sampler.index_of("mb_0_10")
  idx = sampler.sample_sources(t, 17, rng)
  assert len(set(idx.tolist())) == 17 and t not in idx          # all 17 other azimuths, no repeat
  assert all(train[i].identity == "mb" and train[i].stratum == 10 for i in idx)
  assert len(sampler.sample_sources(t, 20, rng)) == 20           # more than the candidates: repeats


def test_kitti_sources_within_window(kitti_root):
  pool = m2n_format.load_m2n(kitti_root, "kitti", "all")
  sampler = m2n.ViewSampler(pool, window=m2n_format.KITTI_WINDOW)
  rng = np.random.default_rng(1)
  for name in ("00_000000", "00_000015", "05_000119"):
    t = sampler.index_of(name)
    target = pool[t]
    others = sampler.others(t)
    assert all(0 < abs(pool[i].view - target.view) <= 10 and pool[i].identity == target.identity
               for i in others)
    expected = {r.name for r in pool if r.identity == target.identity and 0 < abs(r.view - target.view) <= 10}
    assert {pool[i].name for i in others} == expected
    src = sampler.sample_sources(t, 4, rng)
    assert len(set(src.tolist())) == 4 and t not in src
  groups = _group_by_identity(pool)
  s = _oracle_sample_sources(groups, pool[sampler.index_of("05_000110")], 3, rng, window=2)
  assert {r.view for r in s} <= {108, 109, 111, 112}


def test_test_tuples_deterministic_and_nested(kitti_root):
  pool = m2n_format.load_m2n(kitti_root, "kitti", "all")
  sampler = m2n.ViewSampler(pool, window=10)
  targets = [sampler.index_of(r.name) for r in m2n_format.load_m2n(kitti_root, "kitti", "test")]
  t2 = m2n.make_test_tuples(sampler, targets, 2, seed=3)
  t4 = m2n.make_test_tuples(sampler, targets, 4, seed=3)
  np.testing.assert_array_equal(t2, m2n.make_test_tuples(sampler, targets, 2, seed=3))
  np.testing.assert_array_equal(t4[:, :2], t2[:, :2])
  np.testing.assert_array_equal(t4[:, -1], targets)
  assert not np.array_equal(t2, m2n.make_test_tuples(sampler, targets, 2, seed=4))
  for row in t4:
    assert row[-1] not in row[:-1]
    assert all(0 < abs(pool[i].view - pool[row[-1]].view) <= 10 for i in row[:-1])
  assert m2n.make_test_tuples(sampler, targets, 2, seed=3, num_tuples=25).shape == (25, 3)


# ------------------------------------------------------------------------------------------ encoders
def test_one_hot_view_encoder():
  enc = poses.OneHotViewEncoder(36, 3)
  assert enc.channels == 39
  m = enc.encode(np.array([14, 20], np.float32), (6, 4))
  assert m.shape == (6, 4, 39) and m.dtype == np.float32
  expected = np.zeros(39, np.float32)
  expected[14] = expected[36 + 2] = 1
  np.testing.assert_array_equal(m, np.broadcast_to(expected, (6, 4, 39)))
  assert enc.vector([37, 0])[1] == 1                                  # azimuth index taken modulo 36
  with pytest.raises(ValueError, match=r"2 values.*got 3.*data_chair.hdf5/x_0_0"):
    enc.encode([1, 2, 3], (4, 4), where="data_chair.hdf5/x_0_0")
  with pytest.raises(ValueError, match="Elevation 30.0"):
    enc.vector([0, 30])
  with pytest.raises(ValueError, match="not an integer"):
    enc.vector([1.5, 0])


def test_vector_pose_encoder():
  raw = poses.VectorPoseEncoder(6)
  p = np.arange(6, dtype=np.float32)
  np.testing.assert_array_equal(raw.encode(p, (3, 5)), np.broadcast_to(p, (3, 5, 6)))
  std = poses.VectorPoseEncoder(6, "standardize", mean=np.ones(6), std=[2, 2, 2, 2, 2, 0])
  np.testing.assert_allclose(std.vector(p), [-0.5, 0, 0.5, 1, 1.5, 4])   # std 0 -> divided by 1
  sc = poses.VectorPoseEncoder(6, "scale", scale=[10] * 6)
  np.testing.assert_allclose(sc.vector(p), p / 10)
  with pytest.raises(ValueError, match=r"6 values, got 5 \(data_kitti.hdf5/00_000001\)"):
    raw.encode(np.zeros(5), (2, 2), where="data_kitti.hdf5/00_000001")
  with pytest.raises(ValueError, match="needs the mean and std"):
    poses.VectorPoseEncoder(6, "standardize")
  with pytest.raises(ValueError, match="Unknown pose normalisation"):
    poses.VectorPoseEncoder(6, "minmax")


@pytest.mark.parametrize("spec,cls,channels", [
    ("configs/shapenet_chair.py", poses.OneHotViewEncoder, 39),
    ("configs/shapenet_chair.py:runlocal", poses.OneHotViewEncoder, 39),
    ("configs/kitti.py", poses.VectorPoseEncoder, 6),
    ("configs/kitti.py:runlocal", poses.VectorPoseEncoder, 6),
    ("configs/voxceleb2.py", poses.LandmarkHeatmapEncoder, 68),
    ("configs/voxceleb2.py:runlocal", poses.LandmarkHeatmapEncoder, 68),
    ("configs/turntable.py", poses.OneHotViewEncoder, 39),
    ("configs/turntable.py:tiny", poses.OneHotViewEncoder, 39),
    ("configs/market.py", None, 18),
])
def test_configs_validate_and_pick_encoder(spec, cls, channels):
  config = config_utils.load_config(os.path.join(ROOT, spec))
  config_utils.validate_config(config, num_devices=1)
  encoder = poses.make_pose_encoder(config, pose_stats=(np.zeros(6), np.ones(6)))
  assert encoder.channels == channels == config.data.pose_channels
  if cls is not None:
    assert isinstance(encoder, cls)
  if "kitti" in spec or "shapenet" in spec or "voxceleb" in spec:
    assert config.train.batch_size in (2, 5) and config.data.num_sources == 2
    assert tuple(config.eval.num_sources) == (2, 4)


def test_pose_encoder_for_errors():
  config = config_utils.load_config(os.path.join(ROOT, "configs/shapenet_chair.py"))
  config.data.pose_channels = 40
  with pytest.raises(ValueError, match="pose_channels=39"):
    poses.make_pose_encoder(config)
  config.data.pose_channels = 39
  config.data.camera_encoding = "quaternion"
  with pytest.raises(ValueError, match="camera_encoding='quaternion'"):
    poses.make_pose_encoder(config)
  kitti = config_utils.load_config(os.path.join(ROOT, "configs/kitti.py"))
  with pytest.raises(ValueError, match="needs the mean and std"):
    poses.make_pose_encoder(kitti)                       # standardize without statistics


# ------------------------------------------------------------------------------------------ turntable
@pytest.fixture(scope="module")
def turntable_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("turntable"))
  turntable.generate(root, size=24, train_objects=3, test_objects=2, seed=5, elevations=(0, 20),
                     supersample=1)
  return root


def test_turntable_format_and_encoder(turntable_root):
  assert turntable.is_complete(turntable_root)
  train = m2n_format.load_m2n(turntable_root, "turntable", "train")
  test = m2n_format.load_m2n(turntable_root, "turntable", "test")
  assert len(train) == 3 * 36 * 2 and len(test) == 2 * 36 * 2
  assert not {r.identity for r in train} & {r.identity for r in test}
  enc = poses.OneHotViewEncoder(36, 3)
  for r in test[:5]:
    assert enc.vector(r.pose)[r.view] == 1 and r.view == int(r.pose[0]) and r.stratum == int(r.pose[1])
  sampler = m2n.ViewSampler(train)
  assert len(sampler.others(0)) == 35


def test_turntable_is_a_multi_view_task(turntable_root):
  """The far side differs from the near side: the view from behind is not the mirrored front view."""
  records = {r.name: r for r in m2n_format.load_m2n(turntable_root, "turntable", "all")}
  reader = m2n_format.ImageReader()
  for obj in range(5):
    name = turntable.object_name(obj)
    front = reader.read(records[f"{name}_0_0"]).astype(np.float32)
    back = reader.read(records[f"{name}_18_0"]).astype(np.float32)
    side = reader.read(records[f"{name}_9_0"]).astype(np.float32)
    assert (front < 250).any(axis=-1).mean() > 0.1                     # the object fills part of the view
    mirrored = back[:, ::-1]
    on_object = (front < 250).any(-1) | (mirrored < 250).any(-1)
    assert np.abs(front - mirrored)[on_object].mean() > 30            # colours differ, not just shading
    on_object = (front < 250).any(-1) | (side < 250).any(-1)
    assert np.abs(front - side)[on_object].mean() > 30


def test_turntable_deterministic(tmp_path):
  a, b, c = (str(tmp_path / n) for n in "abc")
  for root, seed in ((a, 1), (b, 1), (c, 2)):
    turntable.generate(root, size=16, train_objects=1, test_objects=1, seed=seed, num_azimuths=4,
                       elevations=(10,), supersample=1)
  with h5py.File(os.path.join(a, "data_turntable.hdf5")) as fa, \
       h5py.File(os.path.join(b, "data_turntable.hdf5")) as fb, \
       h5py.File(os.path.join(c, "data_turntable.hdf5")) as fc:
    assert sorted(fa) == sorted(fb) == ["obj0000_0_10", "obj0000_1_10", "obj0000_2_10", "obj0000_3_10",
                                        "obj0001_0_10", "obj0001_1_10", "obj0001_2_10", "obj0001_3_10"]
    for k in fa:
      np.testing.assert_array_equal(fa[k]["image"][()], fb[k]["image"][()])
    assert any(not np.array_equal(fa[k]["image"][()], fc[k]["image"][()]) for k in fa)


def test_turntable_cli(tmp_path, capsys):
  turntable.main(["--out", str(tmp_path), "--size", "16", "--train-objects", "1", "--test-objects", "1",
                  "--azimuths", "6", "--elevations", "0", "--supersample", "1"])
  assert "Wrote 12 views" in capsys.readouterr().out
  assert len(m2n_format.load_m2n(str(tmp_path), "turntable", "test")) == 6
