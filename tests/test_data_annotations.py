"""Annotation readers: grouping, ABF filtering, distractors, identity rules and error messages."""
import os

import numpy as np
import pytest

from rfgen_jax.data import annotations
from rfgen_jax.data.datasets import deepfashion
from rfgen_jax.data.datasets import market
from tests.data_fixtures import write_market_fixture


@pytest.fixture(scope="module")
def market_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("market"))
  return root, write_market_fixture(root)


@pytest.mark.parametrize("split", ["train", "test"])
def test_market_grouping_and_filtering(market_root, split):
  root, expected = market_root
  records = annotations.load_split(root, market.LAYOUT, split)
  assert {r.name: r.identity for r in records} == expected[split]
  assert [r.name for r in records] == sorted(r.name for r in records)
  for r in records:
    assert r.keypoints.shape == (18, 2) and r.keypoints.dtype == np.float32
    assert annotations.has_required_joints(r.keypoints)
    assert os.path.isfile(r.path)
  ids = [r.identity for r in records]
  assert not {"-1", "0000", "0015", "0020"} & set(ids)       # distractors, lonely id, missing joint
  assert all(ids.count(i) >= 2 for i in ids)


def test_keypoints_read_as_y_x(market_root):
  root, _ = market_root
  table = annotations.read_annotations(os.path.join(root, "market-annotation-test.csv"))
  with open(os.path.join(root, "market-annotation-test.csv")) as f:
    f.readline()
    name, ys, xs = f.readline().split(":")
  np.testing.assert_array_equal(table[name][:, 0], np.array(eval(ys), np.float32))
  np.testing.assert_array_equal(table[name][:, 1], np.array(eval(xs), np.float32))


def test_identity_rules():
  assert market.identity("0002_c1s1_000451_03.jpg") == "0002"
  assert market.identity("-1_c1s1_000451_03.jpg") == "-1"
  assert deepfashion.identity("fashionMENDenimid0000008001_1front.jpg") == "MENDenimid00000080"
  assert deepfashion.identity("fasionWOMENBlouses_Shirtsid0000035706_7additional.jpg") == \
      "WOMENBlouses_Shirtsid00000357"
  with pytest.raises(ValueError, match="fasionMENnothing.jpg"):
    deepfashion.identity("fasionMENnothing.jpg")


def test_deepfashion_layout(tmp_path):
  from PIL import Image
  names = ["fasionMENDenimid0000008001_1front.jpg", "fasionMENDenimid0000008001_2side.jpg",
           "fasionMENDenimid0000008002_1front.jpg", "fasionWOMENDressesid0000123401_1front.jpg"]
  os.makedirs(tmp_path / "train")
  kp = "[" + ",".join(["10"] * 18) + "]"
  rows = ["name:keypoints_y:keypoints_x"]
  for n in names:
    Image.new("RGB", (8, 16)).save(tmp_path / "train" / n)
    rows.append(f"{n}: {kp}: {kp}")
  (tmp_path / "fasion-annotation-train.csv").write_text("\n".join(rows) + "\n")
  records = annotations.load_split(str(tmp_path), deepfashion.LAYOUT, "train")
  assert [r.identity for r in records] == ["MENDenimid00000080"] * 3   # the lonely dress is dropped


def test_missing_csv_names_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="market-annotation-train.csv"):
    annotations.load_split(str(tmp_path), market.LAYOUT, "train")


def test_wrong_keypoint_count_names_file_and_line(tmp_path):
  path = tmp_path / "market-annotation-train.csv"
  good = "[" + ",".join(["5"] * 18) + "]"
  bad = "[" + ",".join(["5"] * 17) + "]"
  path.write_text(f"name:keypoints_y:keypoints_x\na_1.jpg: {good}: {good}\nb_1.jpg: {good}: {bad}\n")
  with pytest.raises(ValueError, match=r"market-annotation-train.csv, line 3: expected 18 values in "
                                       r"column keypoints_x, got 17"):
    annotations.read_annotations(str(path))


def test_missing_image_names_the_file(market_root, tmp_path):
  import shutil
  root, _ = market_root
  copy = tmp_path / "m"
  shutil.copytree(root, copy)
  victim = sorted(os.listdir(copy / "test"))[0]
  os.remove(copy / "test" / victim)
  with pytest.raises(FileNotFoundError, match=victim):
    annotations.load_split(str(copy), market.LAYOUT, "test")
  kept = annotations.load_split(str(copy), market.LAYOUT, "test", skip_missing_images=True)
  assert victim not in [r.name for r in kept]


def test_identity_column(tmp_path):
  """A fourth CSV column `identity` gives the identities when the layout has no rule."""
  from PIL import Image
  os.makedirs(tmp_path / "train")
  kp = "[" + ",".join(["10"] * 18) + "]"
  rows = ["name:keypoints_y:keypoints_x:identity"]
  for n, ident in (("a.png", "p1"), ("b.png", "p1"), ("c.png", "p2")):
    Image.new("RGB", (8, 16)).save(tmp_path / "train" / n)
    rows.append(f"{n}: {kp}: {kp}: {ident}")
  (tmp_path / "ann-train.csv").write_text("\n".join(rows) + "\n")
  records = annotations.load_split(str(tmp_path), annotations.Layout("mine", "ann-{split}.csv", None), "train")
  assert [(r.name, r.identity) for r in records] == [("a.png", "p1"), ("b.png", "p1")]
  with pytest.raises(ValueError, match="no 'identity' column"):
    (tmp_path / "ann-train.csv").write_text("\n".join(["name:keypoints_y:keypoints_x"] +
                                                       [r.rsplit(":", 1)[0] for r in rows[1:]]) + "\n")
    annotations.load_split(str(tmp_path), annotations.Layout("mine", "ann-{split}.csv", None), "train")
