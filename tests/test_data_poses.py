"""Gaussian keypoint heatmaps and the pose-encoder abstraction."""
import numpy as np
import pytest

from configs import common
from rfgen_jax.data import poses


def test_heatmaps_peak_at_keypoints_and_zero_when_missing():
  kp = np.full((18, 2), -1, np.float32)
  kp[0] = (10, 3)
  kp[5] = (0, 31)
  kp[7] = (-1, 4)        # only one coordinate missing: still missing
  maps = poses.gaussian_heatmaps(kp, (40, 32), sigma=3.0)
  assert maps.shape == (40, 32, 18) and maps.dtype == np.float32
  for j, (y, x) in [(0, (10, 3)), (5, (0, 31))]:
    assert maps[y, x, j] == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(maps[..., j]), (40, 32)) == (y, x)
  assert maps[10, 6, 0] == pytest.approx(np.exp(-9 / 18))
  missing = [j for j in range(18) if j not in (0, 5)]
  assert not maps[..., missing].any()


def test_heatmaps_match_dense_formula():
  rng = np.random.default_rng(0)
  kp = np.stack([rng.uniform(0, 63, 18), rng.uniform(0, 31, 18)], -1).astype(np.float32)
  maps = poses.gaussian_heatmaps(kp, (64, 32), sigma=2.5)
  yy, xx = np.mgrid[:64, :32]
  dense = np.exp(-((yy[..., None] - kp[:, 0]) ** 2 + (xx[..., None] - kp[:, 1]) ** 2) / (2 * 2.5 ** 2))
  np.testing.assert_allclose(maps, dense, atol=1e-6)


def test_encoder_from_config_and_sigma_rule():
  config = common.get_base_config()
  enc = poses.make_pose_encoder(config)
  assert isinstance(enc, poses.PoseEncoder) and enc.channels == 18
  assert enc.sigma(128) == enc.sigma(256) == enc.sigma(64) == 6.0      # GFLA: 6 px at every size
  config.data.heatmap_sigma_scaling = "height"
  enc = poses.make_pose_encoder(config)
  assert enc.sigma(128) == 6.0 and enc.sigma(256) == 12.0 and enc.sigma(64) == 3.0
  config.data.heatmap_sigma_scaling = "area"
  with pytest.raises(ValueError, match="heatmap_sigma_scaling='area'"):
    poses.make_pose_encoder(config)
  config.data.heatmap_sigma_scaling = "height"
  config.data.pose_channels = 3
  with pytest.raises(ValueError, match="pose_channels"):
    poses.make_pose_encoder(config)
  config.data.name = "shapenet_chair"              # a camera data set, one_hot_view by default: 36 + 3
  with pytest.raises(ValueError, match=r"data.pose_channels=3 .*OneHotViewEncoder.*pose_channels=39"):
    poses.make_pose_encoder(config)
  config.data.pose_channels = 39
  assert poses.make_pose_encoder(config).channels == 39
  config.data.name = "voxceleb2"
  config.data.pose_channels = 68
  assert poses.make_pose_encoder(config).channels == 68
  config.data.name = "depth"
  with pytest.raises(ValueError, match=r"data.name='depth'; registered data sets: .*market"):
    poses.make_pose_encoder(config)
