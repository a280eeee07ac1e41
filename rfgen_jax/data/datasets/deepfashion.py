"""DeepFashion In-shop Clothes Retrieval (data set `deepfashion`, paper Table 1) in GFLA's layout.

    root/train/fasionMENDenimid0000008001_1front.jpg ...     root/test/...
    root/fasion-annotation-{train,test}.csv     name:keypoints_y:keypoints_x (rfgen_jax/data/annotations.py)
    root/fasion-pairs-{train,test}.csv          optional (PATN: fasion-resize-pairs-*), not used for tuples

GFLA's `train/` and `test/` hold the high-resolution files (1101 x 750) while the CSV's keypoints are in
the 256 x 176 frame of PATN's resized files; `configs/deepfashion.py` reads them in that frame
(`data.keypoint_frame = (256, 176)`), which also fits PATN's resized release; keypoints outside the
frame stop the run naming the file (docs/protocol.md).

Identity: the clothing item id. GFLA/PATN names flatten `MEN/Denim/id_00000080/01_1_front.jpg` to
`fasionMENDenimid0000008001_1front.jpg` (some copies spell the prefix `fashion`); the id is the text after
the `fasion`/`fashion` prefix up to and including `id` + 8 digits: `MENDenimid00000080`. Stored through
TFDS (`people_tfds.py`).
"""
from __future__ import annotations

import re

from rfgen_jax.data import annotations
from rfgen_jax.data.datasets import people_tfds

_ITEM_ID = re.compile(r"^(?:fashion|fasion)?(.+?id\d{8})")


def identity(name: str) -> str:
  """The clothing item id of a GFLA file name (module docstring); ValueError naming the file."""
  match = _ITEM_ID.match(name)
  if not match:
    raise ValueError(f"DeepFashion file name {name!r} has no clothing item id ('id' + 8 digits).")
  return match.group(1)


LAYOUT = annotations.Layout("deepfashion", "fasion-annotation-{split}.csv", identity,
                            pairs="fasion-pairs-{split}.csv")

HELP = """\
DeepFashion was not found at {root}.
The In-shop Clothes Retrieval images come from the DeepFashion authors (Liu et al., CVPR 2016:
http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html); the 256x176 images, keypoint annotations and
pairs in the pose-transfer layout from GFLA (https://github.com/RenYurui/Global-Flow-Local-Attention;
high-resolution files with keypoints in the 256x176 frame, or PATN's resized 256x176 files).
Expected layout:
  {root}/
    train/fasionMENDenimid0000008001_1front.jpg ...
    test/...
    fasion-annotation-train.csv   fasion-annotation-test.csv   (name:keypoints_y:keypoints_x)
    fasion-pairs-train.csv        fasion-pairs-test.csv        (optional)
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR"""

_INSTRUCTIONS = """\
DeepFashion In-shop Clothes Retrieval comes from its authors (Liu et al., CVPR 2016;
http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html); the 256x176 "resize" images, keypoint annotations
and pairs from GFLA (https://github.com/RenYurui/Global-Flow-Local-Attention). Put under the manual dir:
  train/fasion*.jpg  test/fasion*.jpg  fasion-annotation-train.csv  fasion-annotation-test.csv
  fasion-pairs-train.csv  fasion-pairs-test.csv  (optional)
"""

DEEPFASHION = people_tfds.people_dataset("deepfashion", "deepfashion", LAYOUT,
                                         "DeepFashion In-shop people (paper Table 1)", HELP, _INSTRUCTIONS)
