"""KITTI odometry frames in M2N's HDF5 format at 256x256 (paper Table 2). `:runlocal` shrinks it.

Data: `data_kitti.hdf5`, `id_train.txt`, `id_test.txt` from M2N (`datasets/kitti`); layout and source
rules in `rfgen_jax/data/datasets/m2n.py`: sources are frames of the same drive within +-10 frames. Poses: M2N's
6-DoF vector, standardised with the training split's per-component mean and std, broadcast to H x W.
"""
from configs import common
from configs import shapenet_chair


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.get_base_config()
  c.data.name = "kitti"
  c.data.root = "data/m2n/kitti"
  shapenet_chair.add_camera_keys(c, "vector")
  c.data.pose_dim = 6
  c.data.pose_channels = 6
  c.data.pose_normalisation = "standardize"
  c.data.source_window = 10              # M2N's scene_loader bound
  c.model.warp_padding = "border"        # scenes continue past the frame edge
  common.novel_view_settings(c, arg.runlocal)
  return c
