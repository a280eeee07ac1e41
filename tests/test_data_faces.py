"""VoxCeleb2 layout reader, face source sampling (other videos first), landmark heatmaps."""
import os

import numpy as np
from PIL import Image
import pytest

from rfgen_jax.data import poses
from rfgen_jax.data.datasets import voxceleb


def _landmarks(seed, size=32):
  lm = np.random.default_rng(seed).uniform(2, size - 3, (68, 2)).astype(np.float32)
  return lm


@pytest.fixture
def vox_root(tmp_path):
  """train: id00001 with videos va (3 frames) and vb (2 frames); id00002 with one video (2 frames);
  id00003 with 1 frame (dropped). test: id00009 with 2 videos of 1 frame."""
  root = tmp_path / "vox"
  layout = {"train": {"id00001": {"va": 3, "vb": 2}, "id00002": {"vc": 2}, "id00003": {"vd": 1}},
            "test": {"id00009": {"ve": 1, "vf": 1}}}
  seed = 0
  for split, ids in layout.items():
    for identity, videos in ids.items():
      for video, n in videos.items():
        d = root / split / identity / video
        d.mkdir(parents=True)
        names, lms = [], []
        for i in range(n):
          name = f"{i:05d}.png"
          Image.fromarray(np.full((32, 32, 3), seed * 10 % 256, np.uint8)).save(d / name)
          names.append(name)
          lms.append(_landmarks(seed))
          seed += 1
        voxceleb.write_landmarks_csv(str(d / voxceleb.LANDMARKS_FILE), names, np.stack(lms))
  return str(root)


def test_load_split(vox_root):
  records = voxceleb.load_split(vox_root, "train")
  assert [r.name for r in records] == ["id00001/va/00000.png", "id00001/va/00001.png", "id00001/va/00002.png",
                                       "id00001/vb/00000.png", "id00001/vb/00001.png",
                                       "id00002/vc/00000.png", "id00002/vc/00001.png"]
  r = records[3]
  assert (r.identity, r.video) == ("id00001", "vb") and os.path.isfile(r.path)
  assert r.landmarks.shape == (68, 2) and r.landmarks.dtype == np.float32
  np.testing.assert_allclose(r.landmarks, _landmarks(3), atol=0.01)
  assert len(voxceleb.load_split(vox_root, "test")) == 2


def test_write_landmarks_xy_order(tmp_path):
  xy = np.zeros((1, 68, 2))
  xy[0, :, 0], xy[0, :, 1] = 5.0, 9.0                       # x = 5, y = 9
  path = str(tmp_path / "landmarks.csv")
  voxceleb.write_landmarks_csv(path, ["f.png"], xy, xy=True)
  lm = voxceleb.read_landmarks_csv(path)["f.png"]
  assert (lm[:, 0] == 9).all() and (lm[:, 1] == 5).all()


def test_wrong_landmark_count_names_file_and_line(vox_root):
  path = os.path.join(vox_root, "train", "id00002", "vc", voxceleb.LANDMARKS_FILE)
  with open(path, "a") as f:
    f.write("00009.png:[1, 2, 3]:[1, 2, 3]\n")
  with pytest.raises(ValueError, match=r"vc/landmarks.csv, line 4: expected 68 landmarks in column landmarks_y, got 3"):
    voxceleb.load_split(vox_root, "train")


def test_missing_frame_and_split(vox_root):
  os.remove(os.path.join(vox_root, "train", "id00001", "vb", "00001.png"))
  with pytest.raises(FileNotFoundError, match=r"vb/landmarks.csv is missing: .*vb/00001.png"):
    voxceleb.load_split(vox_root, "train")
  with pytest.raises(FileNotFoundError, match="split folder not found"):
    voxceleb.load_split(vox_root, "dev")


def test_sources_prefer_other_videos(vox_root):
  records = voxceleb.load_split(vox_root, "train")
  sampler = voxceleb.FaceSourceSampler([r.identity for r in records], [r.video for r in records])
  rng = np.random.default_rng(0)
  # Target id00001/va/00000 (index 0): other videos hold indices 3, 4.
  for _ in range(20):
    assert sorted(sampler.sample_sources(0, 2, rng).tolist()) == [3, 4]
    s3 = sampler.sample_sources(0, 3, rng).tolist()
    assert sorted(s3[:2]) == [3, 4] and s3[2] in (1, 2)
    s4 = sampler.sample_sources(0, 4, rng).tolist()
    assert sorted(s4) == [1, 2, 3, 4]
  # id00002 has one video: the other frame of the same video, repeated for K = 3.
  assert sampler.sample_sources(5, 3, rng).tolist() == [6, 6, 6]
  assert sampler.others(3).tolist() == [0, 1, 2, 4]
  with pytest.raises(ValueError, match="fewer than 2 frames"):
    voxceleb.FaceSourceSampler(["a", "b", "b"], ["x", "y", "z"])


def test_face_test_tuples(vox_root):
  records = voxceleb.load_split(vox_root, "train")
  sampler = voxceleb.FaceSourceSampler([r.identity for r in records], [r.video for r in records])
  t2 = voxceleb.make_test_tuples(sampler, 2, seed=1)
  t4 = voxceleb.make_test_tuples(sampler, 4, seed=1)
  np.testing.assert_array_equal(t2, voxceleb.make_test_tuples(sampler, 2, seed=1))
  np.testing.assert_array_equal(t4[:, :2], t2[:, :2])
  np.testing.assert_array_equal(t4[:, -1], np.arange(len(records)))
  assert sorted(t2[0, :2].tolist()) == [3, 4]                      # other videos first
  for row in t4:
    assert row[-1] not in row[:-1]
    assert all(records[i].identity == records[row[-1]].identity for i in row[:-1])


def test_landmark_heatmaps():
  enc = poses.LandmarkHeatmapEncoder(68, sigma_at_128=1.5)
  assert enc.channels == 68 and enc.sigma(256) == 3.0
  lm = np.full((68, 2), -1, np.float32)
  lm[0] = (10, 20)
  lm[67] = (50, 3)
  maps = enc.encode(lm, (64, 32))
  assert maps.shape == (64, 32, 68) and maps.dtype == np.float32
  assert np.unravel_index(maps[..., 0].argmax(), (64, 32)) == (10, 20) and maps[10, 20, 0] == 1.0
  assert np.unravel_index(maps[..., 67].argmax(), (64, 32)) == (50, 3)
  assert maps[..., 1:67].max() == 0                                   # missing landmarks: empty maps
  np.testing.assert_allclose(maps[10, 21, 0], np.exp(-1 / (2 * 0.75 ** 2)), rtol=1e-5)   # sigma 0.75 at 64
  with pytest.raises(ValueError, match=r"\(68, 2\), got \(67, 2\) \(id00001/va/landmarks.csv, line 2\)"):
    enc.encode(np.zeros((67, 2)), (64, 64), where="id00001/va/landmarks.csv, line 2")
