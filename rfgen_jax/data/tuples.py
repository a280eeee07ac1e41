"""K-source tuples: K source images and 1 target image of one identity.

Training draws tuples afresh: `sample_sources(target, K, rng)` takes K sources among the target's identity
*other than the target itself*, without replacement when the identity has at least K + 1 images, and with
replacement from the others when it has fewer (an identity of 2 images then gives K copies of the one other
image; every identity kept by the readers has at least 2 images).

Evaluation uses a fixed list (`make_test_tuples`): by default one tuple per image as target, in index order;
the sources of tuple i are drawn by a generator seeded with (seed, i), so the list is the same on every run
and machine, and the sources for K are a prefix of those for K + 1 (K = 1, 2, 3 are evaluated on the same
targets with nested source sets). `write_test_tuples_csv` / `read_test_tuples_csv` store such a list as
`from_0,...,from_{K-1},to` rows of file names.
"""
from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np


class TupleSampler:
  """Draws sources of the same identity for a target index.

  Args:
    identities: identity of every image, indexed like the data source.
  """

  def __init__(self, identities: Sequence[str]):
    keys, inverse = np.unique(np.asarray(identities, dtype=object).astype(str), return_inverse=True)
    self.group_of = inverse.astype(np.int64)                      # (N,) group id per image
    order = np.argsort(self.group_of, kind="stable")
    counts = np.bincount(self.group_of, minlength=len(keys))
    self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    self._counts = counts.astype(np.int64)
    self._members = order.astype(np.int64)                       # indices grouped, ascending within a group
    if (counts < 2).any():
      bad = keys[counts < 2][:5].tolist()
      raise ValueError(f"Identities with fewer than 2 images cannot form tuples: {bad} ...")
    self.num_images = len(self.group_of)

  def others(self, target: int) -> np.ndarray:
    """Indices of the target's identity other than the target, ascending."""
    g = self.group_of[target]
    members = self._members[self._starts[g]:self._starts[g] + self._counts[g]]
    return members[members != target]

  def sample_sources(self, target: int, num_sources: int, rng: np.random.Generator) -> np.ndarray:
    """(num_sources,) int64 source indices for `target`, never the target itself (see module docstring)."""
    others = self.others(target)
    if len(others) >= num_sources:
      return rng.choice(others, size=num_sources, replace=False)
    return rng.choice(others, size=num_sources, replace=True)


def make_test_tuples(identities: Sequence[str], num_sources: int, seed: int,
                     num_tuples: int = 0) -> np.ndarray:
  """The fixed evaluation tuples.

  Args:
    identities: identity of every test image (indexed like the data source).
    num_sources: K.
    seed: `config.data.test_tuples_seed`.
    num_tuples: 0 = one tuple per image as target, in index order; > 0 = that many tuples whose targets
      are a seeded permutation of the images (cycled when num_tuples exceeds the number of images).

  Returns:
    (T, K + 1) int64: columns 0..K-1 are the sources, column K the target.
  """
  sampler = TupleSampler(identities)
  return seeded_test_tuples(np.arange(sampler.num_images), lambda t, rng: rng.permutation(sampler.others(t)),
                            num_sources, seed, num_tuples)


def seeded_test_tuples(targets, candidates, num_sources: int, seed: int, num_tuples: int = 0) -> np.ndarray:
  """The fixed-tuple rule every data kind shares: seeded per tuple, nested in K.

  Args:
    targets: (N,) indices of the possible targets, in order.
    candidates: `candidates(target, rng) -> (M,) indices`, the target's possible sources in the order they
      are taken (drawn with `rng`, seeded by (seed, tuple index)); may raise for a target without any.
    num_sources: K.
    seed: `config.data.test_tuples_seed`.
    num_tuples: 0 = one tuple per target in order; > 0 = that many, targets a seeded permutation (cycled).

  Returns:
    (T, K + 1) int64: columns 0..K-1 are the sources, column K the target. With fewer than K candidates
    the rest are seeded draws with replacement among them; the sources for K are a prefix of those for
    K + 1.
  """
  targets = np.asarray(targets, np.int64)
  if num_tuples > 0:
    order = np.random.default_rng([seed, 0x7A]).permutation(len(targets))
    targets = targets[order[np.arange(num_tuples) % len(targets)]]
  rows = np.empty((len(targets), num_sources + 1), np.int64)
  for i, target in enumerate(targets):
    perm = np.asarray(candidates(int(target), np.random.default_rng([seed, i])), np.int64)
    if len(perm) < num_sources:
      extra = np.random.default_rng([seed, i, 1]).integers(0, len(perm), size=num_sources)
      perm = np.concatenate([perm, perm[extra]])
    rows[i, :num_sources] = perm[:num_sources]
    rows[i, num_sources] = target
  return rows


def write_test_tuples_csv(path: str, tuples: Sequence[Sequence[str]]) -> None:
  """Writes tuples of file names (sources..., target) as `from_0,...,from_{K-1},to` CSV rows."""
  if not tuples:
    raise ValueError("No tuples to write.")
  k = len(tuples[0]) - 1
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow([f"from_{j}" for j in range(k)] + ["to"])
    for row in tuples:
      if len(row) != k + 1:
        raise ValueError(f"Tuple {row!r} has {len(row)} names, expected {k + 1}.")
      writer.writerow(list(row))


def read_test_tuples_csv(path: str) -> list[tuple[str, ...]]:
  """Reads a CSV written by `write_test_tuples_csv`; returns tuples (from_0, ..., from_{K-1}, to)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Test tuple file not found: {path}")
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if not header or header[-1] != "to" or any(h != f"from_{j}" for j, h in enumerate(header[:-1])):
      raise ValueError(f"{path}, line 1: expected the header from_0,...,from_{{K-1}},to, got {header!r}.")
    rows = []
    for lineno, row in enumerate(reader, start=2):
      if len(row) != len(header):
        raise ValueError(f"{path}, line {lineno}: expected {len(header)} names, got {len(row)}.")
      rows.append(tuple(row))
  return rows
