"""ShapeNet chairs in M2N's HDF5 format at 256x256 (paper Table 2). `:runlocal` shrinks it for a laptop.

Data: `data_chair.hdf5`, `id_chair_train.txt`, `id_chair_test.txt` from M2N
(github.com/shaohua0116/Multiview2Novelview, `datasets/shapenet`); layout and source rules in
`rfgen_jax/data/datasets/m2n.py`. Poses: one-hot azimuth (36) + one-hot elevation (3) broadcast to H x W.
"""
from configs import common


def add_camera_keys(c, encoding: str) -> None:
  """Camera-pose settings (the keys themselves, with defaults, are in configs/common.py)."""
  c.data.camera_encoding = encoding      # one_hot_view (ShapeNet, turntable) | vector (KITTI)
  c.data.augment = False                 # a random affine would contradict the camera pose


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.get_base_config()
  c.data.name = "shapenet_chair"
  c.data.root = "data/m2n/shapenet"
  add_camera_keys(c, "one_hot_view")
  c.data.pose_channels = 36 + 3          # num_azimuths + num_elevations
  common.novel_view_settings(c, arg.runlocal)
  return c
