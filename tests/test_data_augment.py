"""The random affine moves keypoints with the image."""
import numpy as np
import pytest

from rfgen_jax.data import augment


def _centroid(channel):
  yy, xx = np.mgrid[:channel.shape[0], :channel.shape[1]]
  s = channel.sum()
  return (channel * yy).sum() / s, (channel * xx).sum() / s


@pytest.mark.parametrize("seed", range(6))
def test_dot_follows_its_keypoint(seed):
  rng = np.random.default_rng(seed)
  h, w = 128, 64
  y, x = int(rng.integers(30, 98)), int(rng.integers(20, 44))
  image = np.zeros((h, w, 3), np.uint8)
  image[y, x] = 255
  kp = np.full((18, 2), -1, np.float32)
  kp[3] = (y, x)
  m = augment.random_affine(rng, (h, w), rotation=20.0, shift=8.0, scale_range=(0.8, 1.2))
  out = augment.warp_image(image, m, fill=(0, 0, 0))
  moved = augment.transform_keypoints(kp, m, (h, w))
  cy, cx = _centroid(out[..., 0].astype(np.float64))
  assert abs(cy - moved[3, 0]) < 0.25 and abs(cx - moved[3, 1]) < 0.25
  assert (moved[np.arange(18) != 3] == -1).all()
  assert np.hypot(moved[3, 0] - y, moved[3, 1] - x) > 0.5    # it did move


def test_keypoints_leaving_the_image_become_missing():
  m = augment.affine_matrix((64, 32), 0.0, (10.0, 0.0), 1.0)
  kp = np.array([[5.0, 25.0], [5.0, 3.0]], np.float32)
  np.testing.assert_array_equal(augment.transform_keypoints(kp, m, (64, 32)), [[-1, -1], [5, 13]])


def test_fill_is_grey_and_identity_is_identity():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
  np.testing.assert_array_equal(augment.warp_image(image, augment.affine_matrix((32, 16), 0, (0, 0), 1.0)),
                                image)
  shifted = augment.warp_image(image, augment.affine_matrix((32, 16), 0, (4.0, 0.0), 1.0))
  assert (shifted[:, :4] == 128).all()
  np.testing.assert_array_equal(shifted[:, 4:], image[:, :-4])


def test_augment_shift_range_scales_with_height():
  rng = np.random.default_rng(1)
  shifts = [augment.random_affine(rng, (256, 176), 0.0, 5.0, (1.0, 1.0))[:, 2] for _ in range(200)]
  assert np.abs(shifts).max() <= 10.0 and np.abs(shifts).max() > 8.0
