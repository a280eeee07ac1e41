"""GFLA's data protocol (docs/protocol.md), with GFLA's definitions as oracles written from its code.

GFLA (`util/pose_utils.cords_to_map`, `data/base_dataset.py`): keypoints given in the frame `old_size`
are scaled to the image size, a Gaussian of sigma 6 px is drawn at every size, and the target image gets
a weaker random affine than the source (angle x 0.2, shift x 0.5, scale 1).
"""
import json
import os

import numpy as np
from PIL import Image
import pytest

from rfgen_jax import config_utils
from rfgen_jax import data
from rfgen_jax.data import poses

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIGH = (440, 300)      # a stand-in for GFLA's 1101 x 750 img_highres files (same aspect, smaller)


def _gfla_map(kp_frame, img_size, old_size, sigma=6.0):
  """GFLA's cords_to_map without affine: y / old_h * H, truncated to int, Gaussian of sigma px."""
  out = np.zeros(tuple(img_size) + (len(kp_frame),), np.float32)
  yy, xx = np.mgrid[:img_size[0], :img_size[1]]
  for i, (y, x) in enumerate(kp_frame):
    if y == -1 or x == -1:
      continue
    y0, x0 = int(y / old_size[0] * img_size[0]), int(x / old_size[1] * img_size[1])
    out[..., i] = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sigma ** 2))
  return out


def write_gfla_deepfashion(root, rng_seed=0):
  """GFLA's layout: high-resolution files, keypoints in the 256 x 176 frame, a white dot at each joint."""
  rng = np.random.default_rng(rng_seed)
  names = {"train": ["fasionMENDenimid0000008001_1front.jpg", "fasionMENDenimid0000008001_2side.jpg",
                     "fasionWOMENDressesid0000123401_1front.jpg", "fasionWOMENDressesid0000123401_2side.jpg"],
           "test": ["fasionMENJacketsid0000045601_1front.jpg", "fasionMENJacketsid0000045601_2side.jpg",
                    "fasionMENJacketsid0000045601_3back.jpg"]}
  keypoints = {}
  for split, files in names.items():
    os.makedirs(os.path.join(root, split))
    rows = ["name:keypoints_y:keypoints_x"]
    for n in files:
      ys, xs = rng.integers(20, 236, 18), rng.integers(15, 161, 18)
      img = np.full(HIGH + (3,), 40, np.uint8)
      for y, x in zip(ys, xs):     # the joint in the high-resolution file, pixel centres kept
        cy, cx = (y + 0.5) * HIGH[0] / 256 - 0.5, (x + 0.5) * HIGH[1] / 176 - 0.5
        img[int(round(cy)) - 3:int(round(cy)) + 4, int(round(cx)) - 3:int(round(cx)) + 4] = 255
      Image.fromarray(img).save(os.path.join(root, split, n), quality=95)
      rows.append(f"{n}:{json.dumps(ys.tolist())}:{json.dumps(xs.tolist())}")
      keypoints[n] = np.stack([ys, xs], -1).astype(np.float32)
    with open(os.path.join(root, f"fasion-annotation-{split}.csv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  return keypoints


def _deepfashion(root, tmp, arg=""):
  config = config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py" + arg))
  config.data.root = str(root)
  config.data.tfds_data_dir = str(tmp / "tfds")
  config.data.num_workers = 0
  config.eval.batch_size = 3
  return config


def test_defaults_are_gflas():
  market = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  assert market.data.heatmap_sigma == 6 and market.data.heatmap_sigma_scaling == "fixed"
  assert market.data.augment and market.data.augment_target == "weaker" and market.data.keypoint_frame == ()
  df = config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py"))
  assert df.data.image_size == (256, 256) and tuple(df.data.keypoint_frame) == (256, 176) and not df.data.augment
  assert config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py:size=256x176")).data.image_size == (256, 176)
  with pytest.raises(ValueError, match="Unknown size '1x1'"):
    config_utils.load_config(os.path.join(ROOT, "configs/deepfashion.py:size=1x1"))
  enc = poses.make_pose_encoder(df)
  assert enc.sigma(256) == enc.sigma(128) == 6.0                 # GFLA: 6 px at every size
  df.data.heatmap_sigma_scaling = "height"
  assert poses.make_pose_encoder(df).sigma(256) == 12.0


@pytest.mark.parametrize("arg,size", [("", (256, 256)), (":size=256x176", (256, 176))])
def test_gfla_deepfashion_layout_lands_on_the_person(tmp_path, arg, size):
  """High-resolution files with keypoints in the 256 x 176 frame: the maps peak on the drawn joints and
  equal GFLA's cords_to_map up to its integer truncation."""
  keypoints = write_gfla_deepfashion(tmp_path / "df")
  config = _deepfashion(tmp_path / "df", tmp_path, arg)
  batch = next(iter(data.create_eval_batches(config, 1, 0, 1)))
  assert batch["target_image"].shape[1:3] == size
  for i in range(len(batch["valid"])):
    img = batch["target_image"][i].mean(-1)
    for y, x in batch["target_keypoints"][i]:
      assert img[int(round(y)), int(round(x))] > 0.5              # on the white dot of the joint
  names = data.create_eval_batches(config, 1, 0, 1).names
  ours = batch["target_pose"][0]
  gfla = _gfla_map(keypoints[names[0][-1]], size, (256, 176))
  peaks_ours = np.stack(np.unravel_index(ours.reshape(-1, 18).argmax(0), size), -1)
  peaks_gfla = np.stack(np.unravel_index(gfla.reshape(-1, 18).argmax(0), size), -1)
  assert np.abs(peaks_ours - peaks_gfla).max() <= 1               # GFLA truncates, we keep sub-pixels
  assert np.abs(ours - gfla).max() < 0.2


def test_keypoints_outside_their_frame_stop_with_the_file_named(tmp_path):
  write_gfla_deepfashion(tmp_path / "df")
  path = tmp_path / "df" / "fasion-annotation-test.csv"
  lines = path.read_text().splitlines()
  name, ys, xs = lines[1].split(":")
  lines[1] = ":".join([name, json.dumps([v * 4 for v in json.loads(ys)]), xs])   # the high-res frame
  path.write_text("\n".join(lines) + "\n")
  config = _deepfashion(tmp_path / "df", tmp_path)
  with pytest.raises(ValueError, match=name + r".*outside their frame \(256, 176\).*keypoint_frame"):
    list(data.create_eval_batches(config, 1, 0, 1))


def test_target_gets_the_weaker_transform(tmp_path):
  """Training with GFLA's augmentation: target keypoints move by at most rotation 1 degree and shift 2.5 px
  (no scale) from their place; sources by up to 5 degrees, 5 px and 5 % scale."""
  from tests.data_fixtures import write_market_fixture  # pylint: disable=g-import-not-at-top
  write_market_fixture(str(tmp_path / "m"))
  config = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  config.data.root = str(tmp_path / "m")
  config.data.tfds_data_dir = str(tmp_path / "tfds")
  config.data.image_size = (32, 16)
  config.data.num_workers = 0
  config.train.batch_size = 4
  data.ensure_dataset(config)

  def moves(target_rule, batches=6):
    config.data.augment_target = target_rule
    it = data.create_train_iterator(config, 0, 1)
    config.data.augment = False
    plain = data.create_train_iterator(config, 0, 1)
    config.data.augment = True
    out = {"target": [], "source": []}
    for _ in range(batches):
      a, b = next(it), next(plain)
      for key, kind in (("target_keypoints", "target"), ("source_keypoints", "source")):
        ok = (a[key] >= 0).all(-1) & (b[key] >= 0).all(-1)
        out[kind].append(np.abs(a[key] - b[key]).max(-1)[ok])
    return {k: np.concatenate(v) for k, v in out.items()}

  weaker, same = moves("weaker"), moves("same")
  # At 32 high: shift 5 * 32 / 128 = 1.25 px (target 0.625 px); rotation about the centre moves a point
  # at most r * angle (r <= 17.9 px); scale 5 % moves it at most 0.05 * r.
  r = np.hypot(15.5, 7.5)
  assert weaker["target"].max() <= 0.625 + r * np.radians(1.0) + 1e-3
  assert same["target"].max() > 0.625 + r * np.radians(1.0)
  assert weaker["source"].max() > 0.625 + r * np.radians(1.0)


@pytest.mark.parametrize("key,value,message", [
    ("augment_target", "strong", "augment_target='strong'"),
    ("keypoint_frame", (1, 2, 3), r"keypoint_frame=\(1, 2, 3\)"),
    ("heatmap_sigma_scaling", "area", "heatmap_sigma_scaling='area'"),
    ("folder_identity", "nickname", "folder_identity='nickname'"),
])
def test_config_validation_names_the_data_key(key, value, message):
  config = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  config.data[key] = value
  with pytest.raises(ValueError, match=r"--config.data." + message):
    config_utils.validate_config(config)
