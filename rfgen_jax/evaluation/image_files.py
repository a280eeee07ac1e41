"""Image files of an evaluation: PNG names after the tuple, and pairing generated files with real ones.

Name of a generated image (GFLA's convention, `<from>_2_<to>_vis.png`, extended to K sources):
`<stem of source 0>__<stem of source 1>..._2_<stem of target>.png`, e.g.
`0002_c1s1_000451_03__0002_c2s1_000301_01_2_0002_c3s1_000551_02.png`. When two tuples would get the same
name (a repeated tuple), the later ones get a `<n>@` prefix, which keeps the target part intact.

Pairing (`target_stem`): the target of a generated file is the part after one of its `_2_` separators,
without a trailing `_vis` (GFLA's outputs) — the one that names a file in the real folder; a file without
`_2_` is paired with the real file of the same stem. So GFLA's, PISE's and our outputs are scored alike.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from PIL import Image

from rfgen_jax import errors

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SEPARATOR = "_2_"


class ImageFolderError(errors.BadInputError):
  """Bad scorer input: a missing, unreadable or mis-sized file (the message names it); a user error."""


def _stem(name: str) -> str:
  return os.path.splitext(os.path.basename(name))[0]


def png_name(names: Sequence[str], used: Optional[Set[str]] = None) -> str:
  """File name of the generated image of one tuple `(source, ..., target)` (see the module docstring).

  Args:
    names: K source names then the target name (file names, any extension).
    used: names given out so far; the new one is added. A repeat gets a `<n>@` prefix.
  """
  name = "__".join(_stem(n) for n in names[:-1]) + SEPARATOR + _stem(names[-1]) + ".png"
  if used is None:
    return name
  base, n = name, 1
  while name in used:
    name = f"{n}@{base}"
    n += 1
  used.add(name)
  return name


def write_png(path: str, image: np.ndarray) -> None:
  """Writes a (H, W, 3) uint8 image as PNG (lossless: the file holds exactly the scored values)."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"write_png: expected uint8, got {image.dtype}.")
  Image.fromarray(image).save(path)


def read_image(path: str) -> np.ndarray:
  """(H, W, 3) uint8 RGB of an image file; ImageFolderError naming the file if unreadable."""
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert("RGB"))
  except (OSError, ValueError) as e:
    raise ImageFolderError(f"Cannot read image {path} ({type(e).__name__}: {e}).") from None


def list_images(folder: str, what: str) -> List[str]:
  """Sorted image file names (not paths) in `folder`; ImageFolderError if it is missing or empty."""
  if not os.path.isdir(folder):
    raise ImageFolderError(f"{what} folder {folder} does not exist.")
  files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise ImageFolderError(f"{what} folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
  return files


def target_stem(generated_name: str, real_stems: Dict[str, str]) -> str:
  """The real image a generated file shows (see the module docstring); `real_stems`: stem -> file name.

  Raises:
    ImageFolderError: no real file matches, or several parts of the name do.
  """
  stem = _stem(generated_name)
  if "@" in stem.split(SEPARATOR)[0]:
    stem = stem.split("@", 1)[1]
  parts = stem.split(SEPARATOR)
  candidates = [SEPARATOR.join(parts[i:]) for i in range(1, len(parts))] if len(parts) > 1 else [stem]
  candidates = [c[:-len("_vis")] if c.endswith("_vis") and c not in real_stems else c for c in candidates]
  found = sorted({c for c in candidates if c in real_stems})
  if not found:
    raise ImageFolderError(f"Generated image {generated_name}: no real image named "
                           f"{' or '.join(repr(c) for c in candidates[:3])} (any extension) in the real folder.")
  if len(found) > 1:
    raise ImageFolderError(f"Generated image {generated_name}: ambiguous target, several real images match "
                           f"({found}).")
  return found[0]


def pair_folders(generated_dir: str, real_dir: str) -> List[Tuple[str, str]]:
  """[(generated path, real path)] for every generated image, in the generated files' sorted order."""
  generated = list_images(generated_dir, "Generated")
  reals = list_images(real_dir, "Real")
  stems: Dict[str, str] = {}
  for f in reals:
    if _stem(f) in stems:
      raise ImageFolderError(f"Real folder {real_dir}: two files with stem {_stem(f)!r} "
                             f"({stems[_stem(f)]}, {f}).")
    stems[_stem(f)] = f
  return [(os.path.join(generated_dir, g), os.path.join(real_dir, stems[target_stem(g, stems)]))
          for g in generated]


__all__ = ("png_name", "write_png", "read_image", "list_images", "target_stem", "pair_folders",
           "ImageFolderError", "SEPARATOR")
