"""The inner-map pictures (rfgen_jax.visualize) on inputs with known answers."""
import colorsys

import jax
import numpy as np
import pytest

from rfgen_jax import inference, visualize


def test_constant_flow_has_one_colour():
  flow = np.broadcast_to(np.array([3.0, -1.5], np.float32), (5, 7, 2))
  image = visualize.flow_to_rgb(flow)
  assert image.shape == (5, 7, 3) and image.dtype == np.uint8
  assert len(np.unique(image.reshape(-1, 3), axis=0)) == 1
  # Fully saturated (it is the largest magnitude), so not white.
  assert image[0, 0].min() < 10


def test_zero_flow_is_white():
  assert (visualize.flow_to_rgb(np.zeros((4, 4, 2))) == 255).all()


@pytest.mark.parametrize("angle_deg", [0, 45, 90, 135, 180, 225, 270, 315, 10, 200])
def test_flow_hue_is_direction_against_colorsys(angle_deg):
  # Independent oracle: the standard library's HSV conversion.
  a = np.deg2rad(angle_deg)
  flow = np.array([[[np.cos(a), np.sin(a)], [0.5 * np.cos(a), 0.5 * np.sin(a)]]], np.float32)
  image = visualize.flow_to_rgb(flow)
  for j, sat in enumerate([1.0, 0.5]):
    expected = np.round(np.array(colorsys.hsv_to_rgb((angle_deg / 360.0) % 1.0, sat, 1.0)) * 255)
    np.testing.assert_allclose(image[0, j], expected, atol=1)


def test_opposite_flows_differ_and_scale_is_shared():
  flow = np.zeros((2, 1, 1, 2), np.float32)
  flow[0, 0, 0] = (1.0, 0.0)
  flow[1, 0, 0] = (-4.0, 0.0)
  image = visualize.flow_to_rgb(flow)
  assert not np.array_equal(image[0], image[1])
  # The shared scale is 4: the first flow has saturation 1/4.
  np.testing.assert_allclose(image[0, 0, 0], np.round(np.array(colorsys.hsv_to_rgb(0, 0.25, 1)) * 255),
                             atol=1)


def test_flow_wheel_centre_white_and_right_red():
  wheel = visualize.flow_wheel(33)
  assert (wheel[16, 16] == 255).all()
  np.testing.assert_array_equal(wheel[16, 32], [255, 0, 0])


def test_scalar_to_rgb_grey_levels():
  values = np.array([[0.0, 0.5, 1.0, 2.0, -1.0]])[..., None]
  image = visualize.scalar_to_rgb(values)
  np.testing.assert_array_equal(image[0, :, 0], [0, 128, 255, 255, 0])
  assert (image[..., 0] == image[..., 2]).all()


def test_resize_nearest_blocks():
  image = np.arange(6).reshape(2, 3, 1)
  out = visualize.resize_nearest(image, (4, 6))
  np.testing.assert_array_equal(out[..., 0], np.repeat(np.repeat(image[..., 0], 2, 0), 2, 1))


def _fake_outputs(b=2, k=3, h=16, w=8, levels=(4, 2), seed=0):
  rng = np.random.default_rng(seed)
  out = {"image": rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32),
         "flows": [], "initial_flows": [], "occlusion": [], "attention": []}
  for level in levels:
    hh, ww = h // level, w // level
    out["flows"].append(rng.normal(size=(b, k, hh, ww, 2)).astype(np.float32))
    out["initial_flows"].append(rng.normal(size=(b, k, hh, ww, 2)).astype(np.float32))
    out["occlusion"].append(rng.uniform(size=(b, k, hh, ww, 1)).astype(np.float32))
    out["attention"].append(np.asarray(jax.nn.softmax(rng.normal(size=(b, k, hh, ww, 1)), axis=1)))
  return out


def test_inner_maps_shapes_and_attention_sums_to_one():
  out = _fake_outputs()
  maps = visualize.inner_maps(out, index=1, size=(16, 8))
  assert set(maps) == {"flow", "occlusion", "attention"}
  for kind in maps:
    assert len(maps[kind]) == 2 and all(len(level) == 3 for level in maps[kind])
    assert all(im.shape == (16, 8, 3) and im.dtype == np.uint8 for level in maps[kind] for im in level)
  # The attention pictures are the softmax weights in grey: summed over sources they make white.
  for level in maps["attention"]:
    total = sum(im[..., 0].astype(np.float64) for im in level) / 255.0
    np.testing.assert_allclose(total, 1.0, atol=3 / 255)
  # The occlusion picture of source 2 at the coarse level is that map, upsampled.
  occ = out["occlusion"][0][1, 2, ..., 0]
  np.testing.assert_array_equal(maps["occlusion"][0][2][..., 0],
                                np.round(np.repeat(np.repeat(occ, 4, 0), 4, 1) * 255).astype(np.uint8))


def test_inner_maps_grid_layout():
  out = _fake_outputs(k=2)
  grid = visualize.inner_maps_grid(out, index=0)
  # 2 source rows of 16 pixels + one 2-pixel separator; 2 levels x 3 kinds of 8 pixels + 5 separators.
  assert grid.shape == (2 * 16 + 2, 6 * 8 + 5 * 2, 3)


def test_sample_grid_with_maps_appends_columns():
  out = _fake_outputs(b=2, k=3)
  batch = {"source_images": np.zeros((2, 3, 16, 8, 3), np.float32),
           "target_pose": np.zeros((2, 16, 8, 18), np.float32),
           "target_image": np.zeros((2, 16, 8, 3), np.float32)}
  grid = visualize.sample_grid_with_maps(batch, out, max_rows=8)
  base = visualize.sample_grid(batch, out["image"])
  assert grid.shape == (2 * 16, (3 + 3 + 3 * 2 * 3) * 8, 3)
  np.testing.assert_array_equal(grid[:, :base.shape[1]], base)
  # The last cell of row 0 is the fine level's attention of source 2.
  expected = visualize.scalar_to_rgb(visualize.resize_nearest(out["attention"][1][0, 2], (16, 8)))
  np.testing.assert_array_equal(grid[:16, -8:], expected)


def test_bad_flow_shape():
  with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
    visualize.flow_to_rgb(np.zeros((4, 4, 3)))


def test_inner_maps_sample_grid_shows_the_generator_output(tiny_train_setup):
  """The hook behind `eval.inner_maps`: the generated column is the generator's own output."""
  from rfgen_jax import models  # pylint: disable=import-outside-toplevel
  config, gen, _, _, _, state = tiny_train_setup     # the session's tiny model and its initial params
  params = state.gen_params
  inputs = models.example_inputs(config, batch_size=2, num_sources=2)
  rng = np.random.default_rng(0)
  inputs = tuple(rng.uniform(-1, 1, x.shape).astype(np.float32) for x in inputs)
  batch = {"source_images": inputs[0], "source_poses": inputs[1], "target_pose": inputs[2],
           "target_image": rng.uniform(-1, 1, inputs[0][:, 0].shape).astype(np.float32)}
  grid = inference.inner_maps_sample_grid(gen, params, batch)
  outputs = jax.tree.map(np.asarray, jax.jit(gen.apply)({"params": params}, *inputs))
  expected = visualize.sample_grid_with_maps(batch, outputs)
  # Bit-exact on any host: one program run twice. `inference.generator_outputs` jits the same function
  # (the generator's whole output dict) at the same shapes, so the two lower to the same HLO up to the
  # parameters' names (checked on jax 0.10.2) and compile to the same machine code in this process.
  # Should they ever differ (other outputs or shapes), compare within one 8-bit level instead.
  np.testing.assert_array_equal(grid, expected)
  h, w = config.data.image_size
  assert grid.shape == (2 * h, (2 + 3 + 3 * len(config.model.levels) * 2) * w, 3)
