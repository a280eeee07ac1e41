"""The data sets, one module each, registered by name (`config.data.name`); docs/data.md.

| data.name | module | pose kind | storage |
| --- | --- | --- | --- |
| `synthetic` | `synthetic_people.py` | keypoints | generated, then TFDS (`people_tfds.py`) |
| `market` | `market.py` | keypoints | PATN/GFLA layout -> TFDS |
| `deepfashion` | `deepfashion.py` | keypoints | GFLA layout -> TFDS |
| `folder` | `image_folder.py` | keypoints | your images + keypoint CSVs, read in place |
| `shapenet_chair`, `shapenet_car`, `kitti`, `turntable` | `m2n.py` (`../m2n_format.py`) | camera | M2N HDF5, read in place |
| `voxceleb2` | `voxceleb.py` | landmarks | frames + landmark CSVs, read in place |

`get(name)` returns the registered `rfgen_jax.data.registry.DataSet`. A new data set is a module that
calls `registry.register(DataSet(...))`, imported below.
"""
from rfgen_jax.data import registry
from rfgen_jax.data.datasets import deepfashion  # pylint: disable=unused-import
from rfgen_jax.data.datasets import image_folder  # pylint: disable=unused-import
from rfgen_jax.data.datasets import m2n  # pylint: disable=unused-import
from rfgen_jax.data.datasets import market  # pylint: disable=unused-import
from rfgen_jax.data.datasets import synthetic_people  # pylint: disable=unused-import
from rfgen_jax.data.datasets import voxceleb  # pylint: disable=unused-import

get = registry.lookup
names = registry.registered
