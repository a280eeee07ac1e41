"""The test pairs of the paper's Table 1 (GFLA's `market-pairs-test.csv` / `fasion-pairs-test.csv`) as tuples.

Rule (documented in docs/protocol.md):
- K = 1: exactly the listed pairs, in file order: `(from, to)`.
- K > 1: the pair's `from`, then K - 1 other images of the same identity (never `from` or `to`), taken
  in the order of a permutation of those candidates (sorted by name) drawn with
  `np.random.default_rng([seed, pair number])`. The permutation does not depend on K, so the sources
  for K are the first K of those for K + 1 (nested). With fewer than K - 1 candidates, all of them are
  used and the rest is filled by cycling through `from` and the candidates in the same order.
The target is always the pair's `to`; the tuple list has one row per pair for every K.

The pairs file is found by `pairs_file(config)`: `eval.test_pairs` "auto" looks in `data.root` for the
data set's GFLA file (both spellings of DeepFashion's: `fasion-` as released, `fashion-` as GFLA's
README writes it); "" switches pairs off (the seeded tuples of `data/tuples.py`); any other value is
the file itself.
"""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

PAIRS_FILES = {"market": ("market-pairs-test.csv",),
               "deepfashion": ("fasion-pairs-test.csv", "fashion-pairs-test.csv")}


def pairs_file(config) -> Optional[str]:
  """The pairs CSV to evaluate on, or None (see the module docstring)."""
  setting = config.eval.test_pairs
  if not setting:
    return None
  if setting != "auto":
    if not os.path.exists(setting):
      raise FileNotFoundError(f"--config.eval.test_pairs={setting} does not exist.")
    return setting
  for name in PAIRS_FILES.get(config.data.name, ()):
    path = os.path.join(config.data.root, name)
    if os.path.exists(path):
      return path
  return None


def read_pairs(path: str) -> List[Tuple[str, str]]:
  """(from, to) names of a GFLA pairs CSV (header `from,to`; an unnamed index column is ignored)."""
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if not rows:
    raise ValueError(f"{path} is empty; expected a `from,to` header and one pair per line.")
  header = [h.strip() for h in rows[0]]
  if "from" not in header or "to" not in header:
    raise ValueError(f"{path}: header {rows[0]} has no `from` and `to` columns.")
  i, j = header.index("from"), header.index("to")
  pairs = []
  for line, row in enumerate(rows[1:], start=2):
    if not row:
      continue
    if len(row) <= max(i, j):
      raise ValueError(f"{path}, line {line}: {row} has no `from`/`to` value.")
    pairs.append((row[i].strip(), row[j].strip()))
  if not pairs:
    raise ValueError(f"{path} lists no pairs.")
  return pairs


def pair_tuples(pairs: Sequence[Tuple[str, str]], names: Sequence[str], identities: Sequence[str],
                num_sources: int, seed: int, source: str = "pairs file") -> np.ndarray:
  """Tuples of record indices for the pairs (see the module docstring).

  Args:
    pairs: (from, to) file names.
    names, identities: the test split's file name and identity of every record.
    num_sources: K >= 1.
    seed: `data.test_tuples_seed`.
    source: what to name in errors (the CSV path).
  Returns:
    (len(pairs), K + 1) int64: sources..., target.
  Raises:
    ValueError: a name of the pairs is not in the split, or a pair's images have different identities.
  """
  if num_sources < 1:
    raise ValueError(f"K must be >= 1, got {num_sources}.")
  position: Dict[str, int] = {n: i for i, n in enumerate(names)}
  by_identity: Dict[str, List[int]] = {}
  for i in sorted(range(len(names)), key=lambda i: names[i]):
    by_identity.setdefault(identities[i], []).append(i)
  rows = np.zeros((len(pairs), num_sources + 1), np.int64)
  for p, (a, b) in enumerate(pairs):
    missing = [n for n in (a, b) if n not in position]
    if missing:
      raise ValueError(f"{source}, pair {p + 1} ({a}, {b}): {missing[0]!r} is not an image of the test split "
                       f"(it holds e.g. {list(names[:3])}).")
    ia, ib = position[a], position[b]
    if identities[ia] != identities[ib]:
      raise ValueError(f"{source}, pair {p + 1}: {a} (identity {identities[ia]}) and {b} (identity "
                       f"{identities[ib]}) are different people.")
    candidates = [i for i in by_identity[identities[ia]] if i not in (ia, ib)]
    order = [candidates[j] for j in np.random.default_rng([seed, p]).permutation(len(candidates))]
    extra = list(order[:num_sources - 1])
    cycle = [ia] + order
    while len(extra) < num_sources - 1:
      extra.append(cycle[(len(extra) - len(order)) % len(cycle)])
    rows[p] = [ia] + extra + [ib]
  return rows


__all__ = ("pairs_file", "read_pairs", "pair_tuples", "PAIRS_FILES")
