"""Your own images (data set `folder`): a folder of images per split and a keypoint CSV per split.

    root/train/<images>           any size and format PIL reads (jpg, png, ...); subfolders allowed
    root/test/<images>
    root/annotations-train.csv    name:keypoints_y:keypoints_x[:identity]   (`data.folder_annotation`)
    root/annotations-test.csv

The CSV is the PATN/GFLA format (`rfgen_jax/data/annotations.py`): `name` is the image's path relative
to the split folder, the keypoint columns JSON lists of `data.num_keypoints` numbers ((y, x) pixels in the
file's own size, -1 missing; `python -m rfgen_jax.tools.pose_keypoints` writes them for photos).

Identity (images of one identity form the K-source tuples), `data.folder_identity`:
- "prefix": the file name up to the first `data.folder_identity_separator` (`alice_01.jpg` -> `alice`),
- "folder": the first folder of the name (`alice/01.jpg` -> `alice`),
- "column": the CSV's fourth column `identity` (header `name:keypoints_y:keypoints_x:identity`).

With 18 OpenPose joints, images missing a shoulder or a hip are dropped (ABF's rule, as for Market);
identities with fewer than 2 usable images are dropped. Images are read in place, resized to
`data.image_size`, augmented as the people sets (`data.augment`). Walk-through: docs/own_dataset.md.
"""
from __future__ import annotations

import os

from rfgen_jax import errors
from rfgen_jax.data import annotations
from rfgen_jax.data import registry
from rfgen_jax.data.split_index import FileSource
from rfgen_jax.data.split_index import SplitIndex

IDENTITY_RULES = ("prefix", "folder", "column")

_HELP = """\
The image folder was not found at {root}.
Expected layout (docs/own_dataset.md, rfgen_jax/data/datasets/image_folder.py):
  {root}/
    train/...             images (subfolders allowed)
    test/...
    {annotation_train}    name:keypoints_y:keypoints_x[:identity], keypoints as JSON lists of (y, x) pixels
    {annotation_test}
Point --config.data.root at that folder (--config.data.folder_annotation names the CSVs)."""


class _Identity:
  """Picklable identity rule of a config (`data.folder_identity`, `data.folder_identity_separator`)."""

  def __init__(self, rule: str, separator: str):
    if rule not in IDENTITY_RULES:
      raise ValueError(f"Unknown --config.data.folder_identity={rule!r}; accepted: {IDENTITY_RULES}.")
    if rule == "prefix" and not separator:
      raise ValueError("--config.data.folder_identity_separator must not be empty for the 'prefix' rule.")
    self.rule, self.separator = rule, separator

  def __call__(self, name: str) -> str:
    if self.rule == "folder":
      parts = name.replace("\\", "/").split("/")
      if len(parts) < 2:
        raise ValueError(f"Image {name!r} is not in a subfolder; data.folder_identity='folder' takes the "
                         "identity from the first folder of the name.")
      return parts[0]
    return os.path.basename(name).split(self.separator, 1)[0]


def layout(config) -> annotations.Layout:
  """The annotation layout of a config's folder data set."""
  d = config.data
  rule = None if d.folder_identity == "column" else _Identity(d.folder_identity, d.folder_identity_separator)
  if "{split}" not in d.folder_annotation:
    raise ValueError(f"--config.data.folder_annotation={d.folder_annotation!r} must contain {{split}}.")
  return annotations.Layout("folder", d.folder_annotation, rule)


def _prepare(config) -> None:
  """Checks the root, its split folders and CSVs; FileNotFoundError with the expected layout otherwise."""
  root = config.data.root
  lay = layout(config)
  text = _HELP.format(root=os.path.abspath(root or "."), annotation_train=lay.annotation.format(split="train"),
                      annotation_test=lay.annotation.format(split="test"))
  if not root or not os.path.isdir(root):
    raise errors.MissingFileError(text)
  missing = [p for p in [os.path.join(root, s) for s in ("train", "test")] +
             [os.path.join(root, lay.annotation.format(split=s)) for s in ("train", "test")]
             if not os.path.exists(p)]
  if missing:
    raise errors.MissingFileError(f"folder data root {root} is incomplete; missing: {', '.join(missing)}.\n" +
                                  text.split("\n", 1)[1])


def _open_split(config, split: str) -> SplitIndex:
  root = os.path.abspath(config.data.root)
  records = annotations.load_split(root, layout(config), split, int(config.data.num_keypoints),
                                   skip_missing_images=config.data.skip_corrupt_images)
  return SplitIndex(FileSource([r.path for r in records], [r.keypoints for r in records]),
                    [r.name for r in records], [r.identity for r in records],
                    f"{os.path.join(root, split)} (image folder)")


FOLDER = registry.register(registry.DataSet(
    name="folder", pose_kind="keypoints", summary="your own images + keypoint CSVs (docs/own_dataset.md)",
    prepare=_prepare, open_split=_open_split,
    fingerprint_files=lambda config: [os.path.join(config.data.root, config.data.folder_annotation.format(
        split=s)) for s in ("train", "test")] + [os.path.join(config.data.root, s) for s in ("train", "test")]))
