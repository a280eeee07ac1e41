"""Synthetic data sets, generated on first use (no download): multi-view people and a camera turntable.

| module | writes | layout |
| --- | --- | --- |
| `people.py` (`people_body.py`, `people_render.py`) | people seen from all sides, 18 OpenPose keypoints | Market-1501 (PATN/GFLA), data set `synthetic` |
| `turntable.py` | textured objects on a turntable, one-hot camera views | M2N HDF5 objects, data set `turntable` |

`python -m rfgen_jax.data.synthetic --out DIR` writes the people (`people.main`);
`python -m rfgen_jax.data.synthetic.turntable --out DIR` the turntable. The data set modules
(`rfgen_jax/data/datasets/people.py`, `m2n.py`) call `generate` when `data.root` is incomplete.
"""
