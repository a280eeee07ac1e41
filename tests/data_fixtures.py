"""A small Market-1501-layout fixture for the data tests (real-style names, distractors, missing joints).

Each image is a flat colour per identity with a white dot at every present keypoint, so tests can check
what was loaded.
"""
import json
import os

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 32, 16


def _keypoints(rng, missing=()):
  ys = rng.integers(2, HEIGHT - 2, size=18).astype(float)
  xs = rng.integers(2, WIDTH - 2, size=18).astype(float)
  for j in missing:
    ys[j] = xs[j] = -1
  return ys, xs


def colour_of(identity: str) -> tuple[int, int, int]:
  h = sum(ord(c) * (i + 1) for i, c in enumerate(identity))
  return (40 + h % 150, 40 + (h * 7) % 150, 40 + (h * 13) % 150)


def write_market_fixture(root, seed=0):
  """Writes root/{train,test}, annotation and pair CSVs. Returns {split: {name: expected identity or None}}.

  train: ids 0002 (4 images), 0007 (3), 0011 (2 usable + 1 missing a hip), 0015 (1 usable: dropped),
         distractors -1 and 0000 (dropped), 0020 (1 image missing r_shoulder: dropped).
  test:  ids 0003 (3), 0004 (2), 0009 (5).
  """
  rng = np.random.default_rng(seed)
  plan = {
      "train": [("0002", 4, ()), ("0007", 3, ()), ("0011", 2, ()), ("0011", 1, (8,)), ("0015", 1, ()),
                ("-1", 2, ()), ("0000", 2, ()), ("0020", 1, (2,)), ("0007", 0, ())],
      "test": [("0003", 3, ()), ("0004", 2, ()), ("0009", 5, (3, 4))],
  }
  expected = {}
  for split, items in plan.items():
    os.makedirs(os.path.join(root, split), exist_ok=True)
    rows, exp = [], {}
    counter = {}
    for identity, count, missing in items:
      for _ in range(count):
        n = counter[identity] = counter.get(identity, 0) + 1
        name = f"{identity}_c{n}s1_{451 * n:06d}_0{n}.jpg"
        rows.append(_write_image(root, split, name, identity, *_keypoints(rng, missing), dots=True))
        exp[name] = identity
    expected[split] = exp
    _write_csvs(root, "market", split, rows, exp)
  usable = {
      "train": {n: i for n, i in expected["train"].items()
                if i in ("0002", "0007") or (i == "0011" and "_c3" not in n)},
      "test": dict(expected["test"]),
  }
  return usable


def _write_image(root, split, name, identity, ys, xs, dots: bool) -> str:
  """Writes one flat-colour image (white dots at the present keypoints when `dots`); returns its CSV row."""
  img = np.zeros((HEIGHT, WIDTH, 3), np.uint8) + np.array(colour_of(identity), np.uint8)
  for y, x in zip(ys, xs):
    if dots and y >= 0:
      img[int(y), int(x)] = 255
  Image.fromarray(img).save(os.path.join(root, split, name), quality=100, subsampling=0)
  return f"{name}: {json.dumps([int(v) for v in ys])}: {json.dumps([int(v) for v in xs])}"


def _write_csvs(root, prefix, split, rows, identities: dict[str, str]) -> None:
  """`{prefix}-annotation-{split}.csv` (GFLA's name:keypoints_y:keypoints_x) and its pairs CSV."""
  with open(os.path.join(root, f"{prefix}-annotation-{split}.csv"), "w") as f:
    f.write("name:keypoints_y:keypoints_x\n" + "\n".join(rows) + "\n")
  _write_pairs(os.path.join(root, f"{prefix}-pairs-{split}.csv"), identities)


def _write_pairs(path, identities: dict[str, str]) -> None:
  """GFLA's pairs CSV: each image (by name) paired with the next image of the same person."""
  names = sorted(identities)
  pairs = [(a, b) for a, b in zip(names, names[1:]) if identities[a] == identities[b]]
  with open(path, "w") as f:
    f.write("from,to\n" + "\n".join(f"{a},{b}" for a, b in pairs) + "\n")


def write_deepfashion_fixture(root, seed=0):
  """Writes a DeepFashion-layout root (GFLA's flattened names, `fasion-*` CSVs, keypoints inside the
  256x176 frame of `configs/deepfashion.py`): 3 train items with 3, 2, 2 views; 2 test items with 3, 2.
  Returns {split: {name: identity}}."""
  rng = np.random.default_rng(seed)
  plan = {"train": [("MENDenimid00000080", 3), ("WOMENDressesid00001234", 2), ("MENShirtsid00000011", 2)],
          "test": [("WOMENBlousesid00000357", 3), ("MENPantsid00000042", 2)]}
  expected = {}
  for split, items in plan.items():
    os.makedirs(os.path.join(root, split), exist_ok=True)
    rows, exp = [], {}
    for identity, count in items:
      for n in range(1, count + 1):
        name = f"fasion{identity}{n:02d}_{n}front.jpg"
        rows.append(_write_image(root, split, name, identity, *_keypoints(rng), dots=False))
        exp[name] = identity
    expected[split] = exp
    _write_csvs(root, "fasion", split, rows, exp)
  return expected
