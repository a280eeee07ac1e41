"""Market-1501 (data set `market`, paper Table 1) in the PATN/GFLA pose-transfer layout.

    root/train/0002_c1s1_000451_03.jpg ...     root/test/...
    root/market-annotation-{train,test}.csv    name:keypoints_y:keypoints_x (rfgen_jax/data/annotations.py)
    root/market-pairs-{train,test}.csv         optional, not used for tuples

Identity: the part of the file name before the first `_` (`0002_c1s1_000451_03.jpg` -> `0002`); the ids
`-1` (junk) and `0000` (distractors) are dropped. Stored through TFDS (`people_tfds.py`); tuples: K other
images of the target's identity (`rfgen_jax/data/tuples.py`).
"""
from __future__ import annotations

from rfgen_jax.data import annotations
from rfgen_jax.data.datasets import people_tfds


def identity(name: str) -> str:
  """Market-1501's person id: the file name up to the first `_`."""
  return name.split("_", 1)[0]


LAYOUT = annotations.Layout("market", "market-annotation-{split}.csv", identity, distractors=("-1", "0000"),
                            pairs="market-pairs-{split}.csv")

HELP = """\
Market-1501 was not found at {root}.
The images come from the Market-1501 authors (Zheng et al., ICCV 2015:
https://zheng-lab-anu.github.io/Project/project_reid.html); the keypoint annotations and pairs in the
pose-transfer layout from PATN / GFLA (https://github.com/tengteng95/Pose-Transfer,
https://github.com/RenYurui/Global-Flow-Local-Attention). Expected layout:
  {root}/
    train/0002_c1s1_000451_03.jpg ...
    test/...
    market-annotation-train.csv   market-annotation-test.csv   (name:keypoints_y:keypoints_x)
    market-pairs-train.csv        market-pairs-test.csv        (optional)
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR"""

_INSTRUCTIONS = """\
Market-1501 comes from its authors (Zheng et al., ICCV 2015; https://zheng-lab-anu.github.io/Project/
project_reid.html). The pose-transfer layout with keypoints comes from PATN/GFLA
(https://github.com/tengteng95/Pose-Transfer, https://github.com/RenYurui/Global-Flow-Local-Attention):
put under the manual dir (config.data.root):
  train/*.jpg  test/*.jpg  market-annotation-train.csv  market-annotation-test.csv
  market-pairs-train.csv  market-pairs-test.csv
"""

MARKET = people_tfds.people_dataset("market", "market1501", LAYOUT, "Market-1501 people (paper Table 1)",
                                    HELP, _INSTRUCTIONS)
