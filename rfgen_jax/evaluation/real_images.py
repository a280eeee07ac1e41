"""Streams of real images for FID's reference statistics: a data split, or a folder of files.

Both come out as per-host uint8 batches in the eval layout (`host_batches`): global batch b holds items
[b * B, (b + 1) * B), host p its `B / process_count` consecutive rows, rows past the end repeat item 0
with `valid` False. GFLA takes FID's real statistics over the whole training set, as files at the size
the model sees (`train_12864`, `train_256`); `split_images` reads the training split at
`data.image_size`, rounded to 8 bits like a saved file.
"""
from __future__ import annotations

import concurrent.futures
import os
from typing import Callable, Iterator, List, Sequence, Tuple

import numpy as np

from rfgen_jax.data import pipeline
from rfgen_jax.evaluation import image_files

_THREADS = 8


class ImageList:
  """`n` images loadable by position: `load(i)` -> (H, W, 3) uint8. `description` names them (cache key)."""

  def __init__(self, n: int, load: Callable[[int], np.ndarray], description: str):
    self.n, self.load, self.description = n, load, description


def host_batches(images: ImageList, global_batch: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Yields `(images (B / P, H, W, 3) uint8, valid (B / P,) bool)` for this host, all items once."""
  if global_batch % process_count:
    raise ValueError(f"eval.batch_size={global_batch} is not divisible by the {process_count} processes.")
  per_host = global_batch // process_count
  num_batches = -(-images.n // global_batch)
  with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
    for b in range(num_batches):
      rows = b * global_batch + process_index * per_host + np.arange(per_host)
      valid = rows < images.n
      loaded = list(pool.map(images.load, np.where(valid, rows, 0)))
      yield np.stack(loaded), valid


def folder_images(folder: str, files: Sequence[str] | None = None, size: Tuple[int, int] | None = None,
                  what: str = "Real") -> ImageList:
  """The images of a folder (sorted names), each checked to be `size` (H, W) if given."""
  names: List[str] = list(files) if files is not None else image_files.list_images(folder, what)

  def load(i):
    path = os.path.join(folder, names[int(i)])
    image = image_files.read_image(path)
    if size is not None and image.shape[:2] != tuple(size):
      raise image_files.ImageFolderError(
          f"{what} image {path} is {image.shape[0]}x{image.shape[1]}, the generated images are "
          f"{size[0]}x{size[1]}: score images of one size (resize the folder first).")
    return image

  stats = [os.stat(os.path.join(folder, n)) for n in names]
  description = repr((os.path.abspath(folder), [(n, s.st_size, int(s.st_mtime)) for n, s in zip(names, stats)]))
  return ImageList(len(names), load, description)


def split_images(config, split: str = "train") -> ImageList:
  """Every image of a data split at `data.image_size`, uint8 (what the model is trained on).

  Data hook: reads through `data.pipeline.open_split` and its example loader (no augmentation).
  """
  index = pipeline.open_split(config, split)
  loader = pipeline._TupleLoader(config, index, train=False)  # pylint: disable=protected-access

  def load(i):
    loaded = loader.load_image(int(i), None)
    if loaded is None:
      raise ValueError(f"Unreadable image {index.names[int(i)]} in {index.description} (FID's real images "
                       "must all be readable).")
    return np.clip(np.round((loaded[0] + 1.0) * 127.5), 0, 255).astype(np.uint8)

  h, w = config.data.image_size
  description = repr((config.data.name, os.path.abspath(config.data.root), split, h, w, len(index.names),
                      index.names[:3], index.names[-3:]))
  return ImageList(len(index.names), load, description)


__all__ = ("ImageList", "host_batches", "folder_images", "split_images")
