"""The contact sheet renders K sources + target + pose map per row."""
import numpy as np
import pytest

from configs import market
from tests.data_fixtures import HEIGHT
from tests.data_fixtures import WIDTH
from tests.data_fixtures import write_market_fixture


def test_sheet_shape_and_content(tmp_path):
  from rfgen_jax.data import contact_sheet
  write_market_fixture(str(tmp_path / "m"))
  config = market.get_config()
  config.data.root = str(tmp_path / "m")
  config.data.tfds_data_dir = str(tmp_path / "tfds")
  config.data.image_size = (HEIGHT, WIDTH)
  sheet = contact_sheet.make_sheet(config, num=3, split="test", scale=1)
  k = config.data.num_sources
  assert sheet.dtype == np.uint8
  assert sheet.shape == (3 * HEIGHT + 2 * 2, (k + 2) * WIDTH + (k + 1) * 2, 3)
  assert sheet[:HEIGHT, (k + 1) * (WIDTH + 2):].max() > 200        # the pose map column is not empty


def test_sheet_refuses_a_bad_data_key(tmp_path):
  """The pipeline no longer checks `data.*` itself (data/config_check.py does, once): the contact sheet,
  which reads data without a run, checks them first and names the key."""
  from rfgen_jax.data import contact_sheet
  config = market.get_config()
  config.data.root = str(tmp_path / "absent")
  config.data.augment_target = "bogus"
  with pytest.raises(ValueError, match=r"--config.data.augment_target='bogus'"):
    contact_sheet.make_sheet(config, num=1)
  assert not (tmp_path / "absent").exists()
