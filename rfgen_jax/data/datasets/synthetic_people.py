"""The synthetic people (data set `synthetic`, the demo): generated at `data.root` in Market-1501's layout.

Generation (`rfgen_jax/data/synthetic/people.py`) runs when `data.root` holds no complete set, with
`data.image_size` and `data.synthetic_{train_ids,test_ids,views_per_id,seed,misalign}`; then the set is stored
through TFDS like Market-1501 (`people_tfds.py`), with Market's identity rule (`market.py`).
"""
from __future__ import annotations

from absl import logging

from rfgen_jax.data import annotations
from rfgen_jax.data.datasets import market
from rfgen_jax.data.datasets import people_tfds
from rfgen_jax.data.synthetic import people

LAYOUT = annotations.Layout("synthetic", "market-annotation-{split}.csv", market.identity,
                            distractors=("-1", "0000"), pairs="market-pairs-{split}.csv")

_INSTRUCTIONS = ("Nothing to download: `python -m rfgen_jax.data.synthetic --out DIR` generates the set "
                 "(done automatically for configs/synthetic.py).")


def generate(config) -> None:
  """Writes the synthetic people at `data.root` unless a complete set is there."""
  d = config.data
  misalign = d.get("synthetic_misalign")   # per-camera offsets (rfgen_jax/data/synthetic/misalign.py)
  misalign = dict(misalign) if misalign is not None else None
  if not people.is_complete(d.root, misalign=misalign):
    h, w = d.image_size
    logging.info("Generating the synthetic people data set into %s.", d.root)
    people.generate(d.root, h, w, d.synthetic_train_ids, d.synthetic_test_ids, d.synthetic_views_per_id,
                    d.synthetic_seed, misalign=misalign)


SYNTHETIC = people_tfds.people_dataset("synthetic", "synthetic_people", LAYOUT,
                                       "synthetic multi-view people (generated; the demo)", None,
                                       _INSTRUCTIONS, generate=generate)
