"""The grain input pipeline: random-access source -> K-source tuples -> per-host numpy batches.

Sources (`sources.py`, chosen by `data.pose_kind`): TFDS array_record for body keypoints (PATN/GFLA
layout), the M2N HDF5 files read in place for camera poses (ShapeNet chairs, KITTI, the synthetic
turntable), the VoxCeleb2 frame folders read in place for facial landmarks. Everything below is the same
for all of them; only the pose encoder (`poses.make_pose_encoder`) and the source sampler differ.

Batch contract (docs/architecture.md): `source_images` (B, K, H, W, 3) float32 in [-1, 1], `source_poses`
(B, K, H, W, P) float32, `target_image` (B, H, W, 3), `target_pose` (B, H, W, P), `source_keypoints`
(B, K, J, 2) and `target_keypoints` (B, J, 2) float32 (y, x) pixels at `data.image_size` (after resize and
augmentation), -1 missing (keypoint data only: camera and landmark batches have no `*_keypoints` keys),
and `valid` (B,) bool (all True in training; False for the padding rows of the last evaluation batch).

Training stream (a grain MapDataset, so it is random-access, deterministic and resumable):
  range(N train targets) -> shuffle(data.shuffle_seed), reshuffled each epoch -> repeat forever
  -> random_map: element i (global index) draws its sources and augmentation from a generator seeded by
     (seed, i) -> this host's rows (`_HostRows`: of global batch t, host p reads elements
     t * B + p * B / P + [0, B / P)) -> to_iter_dataset (threads) -> batch(per-host)
  -> mp_prefetch(data.num_workers) when > 0.
Each epoch every image is a target once; its K sources are drawn afresh by the split's sampler: among its
identity (tuples.py), other views of the object at its elevation / nearby KITTI frames (m2n.py), other
frames of the face identity, other videos first (voxceleb.py).
Host p's i-th batch is rows [p * B / P, (p + 1) * B / P) of the global batch i, which is the same for
every process count (a run on 2 hosts sees the batches of a run on 1); `get_state()/set_state()` of the
returned iterator (or grain's Orbax handlers) restore the stream exactly.

Images are resized to `data.image_size` when the file's size differs (keypoints and landmarks scaled with
pixel centres kept: y' = (y + 0.5) * H' / H - 0.5), then augmented (training only, `data.augment`; never
for camera poses, which a random affine would contradict), then encoded as pose maps.
"""
from __future__ import annotations

import io
import os
from typing import Iterator

from absl import flags
from absl import logging
import grain
import numpy as np
from PIL import Image

from rfgen_jax.data import annotations
from rfgen_jax.data import augment as augment_lib
from rfgen_jax.data import m2n
from rfgen_jax.data import poses
from rfgen_jax.data import sources as sources_lib
from rfgen_jax.data import tuples as tuples_lib
from rfgen_jax.data.sources import SplitIndex

# Threads that read and transform elements ahead of the consumer (per process).
_READ_THREADS = 2

_REAL_DATA_HELP = {
    "market": """\
Market-1501 was not found at {root}.
The images come from the Market-1501 authors (Zheng et al., ICCV 2015:
https://zheng-lab-anu.github.io/Project/project_reid.html); the keypoint annotations and pairs in the
pose-transfer layout from PATN / GFLA (https://github.com/tengteng95/Pose-Transfer,
https://github.com/RenYurui/Global-Flow-Local-Attention). Expected layout:
  {root}/
    train/0002_c1s1_000451_03.jpg ...
    test/...
    market-annotation-train.csv   market-annotation-test.csv   (name:keypoints_y:keypoints_x)
    market-pairs-train.csv        market-pairs-test.csv        (optional)
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR""",
    "deepfashion": """\
DeepFashion was not found at {root}.
The In-shop Clothes Retrieval images come from the DeepFashion authors (Liu et al., CVPR 2016:
http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html); the 256x176 images, keypoint annotations and
pairs in the pose-transfer layout from GFLA (https://github.com/RenYurui/Global-Flow-Local-Attention).
Expected layout:
  {root}/
    train/fasionMENDenimid0000008001_1front.jpg ...
    test/...
    fasion-annotation-train.csv   fasion-annotation-test.csv   (name:keypoints_y:keypoints_x)
    fasion-resize-pairs-train.csv fasion-resize-pairs-test.csv (optional)
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR""",
    "shapenet_chair": """\
ShapeNet chairs (M2N format) were not found at {root}.
The rendered chairs come with Multi-view to Novel View (Sun et al., ECCV 2018:
https://github.com/shaohua0116/Multiview2Novelview, datasets/shapenet). Expected layout:
  {root}/
    data_{kind}.hdf5        one group per image, '{{model}}_{{azimuth index}}_{{elevation}}', e.g.
                            e8f20141696f143cdb77753d44aa25f6_4_10, holding 'image' (H, W, 3) uint8 and
                            'pose' [azimuth index, elevation in degrees]
    id_{kind}_train.txt     id_{kind}_test.txt     (one group name per line)
Point --config.data.root at that folder, or try the camera-pose path without downloads (a synthetic
turntable in the same format, generated on first use):
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR""",
    "kitti": """\
KITTI (M2N format) was not found at {root}.
The KITTI odometry frames come with Multi-view to Novel View (Sun et al., ECCV 2018:
https://github.com/shaohua0116/Multiview2Novelview, datasets/kitti). Expected layout:
  {root}/
    data_kitti.hdf5         one group per frame, '{{drive}}_{{frame}}', e.g. 00_004166, holding
                            'image' (H, W, 3) uint8 and 'pose' (a {pose_dim}-vector)
    id_train.txt            id_test.txt            (one group name per line)
Point --config.data.root at that folder, or try the camera-pose path without downloads (a synthetic
turntable in the M2N format, generated on first use):
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR""",
    "voxceleb2": """\
VoxCeleb2 frames were not found at {root}.
The videos come from the VoxCeleb2 authors (Chung et al., Interspeech 2018:
https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html); extract frames and 68 facial landmarks per
frame (e.g. with face_alignment) into this layout (rfgen_jax/data/voxceleb.py):
  {root}/
    train/{{identity}}/{{video}}/{{frame}}.png|jpg     e.g. train/id00012/21Uxsk56VDQ/00001.png
    train/{{identity}}/{{video}}/landmarks.csv        name:landmarks_y:landmarks_x, JSON lists of 68
    test/...                                       (y, x) pixels in the frame's size, -1 missing
Point --config.data.root at that folder, or try the project without downloads:
  python -m rfgen_jax.main --config=configs/turntable.py --workdir=DIR   (camera poses)
  python -m rfgen_jax.main --config=configs/synthetic.py --workdir=DIR   (body keypoints)""",
}


# ------------------------------------------------------------------------------------------ dataset setup
def _help(config) -> str:
  """The layout help of a real data set, for its name or, failing that, its pose kind."""
  d = config.data
  key = d.name if d.name in _REAL_DATA_HELP else {"camera": "kitti" if m2n.is_kitti(d.m2n_kind) else
                                                  "shapenet_chair", "landmarks": "voxceleb2"}.get(d.pose_kind)
  if key is None:
    raise ValueError(f"Unknown data.name={d.name!r}; this pipeline knows synthetic, market, deepfashion, "
                     "shapenet_chair, kitti, turntable, voxceleb2 (or any name with data.pose_kind "
                     "'camera' / 'landmarks' and their layouts).")
  return _REAL_DATA_HELP[key].format(root=os.path.abspath(d.root or "."), kind=d.m2n_kind,
                                     pose_dim=d.pose_dim)


def _ensure_m2n(config) -> None:
  d = config.data
  root = d.root
  if d.m2n_kind == "turntable":
    from rfgen_jax.data import turntable  # pylint: disable=g-import-not-at-top
    if not turntable.is_complete(root):
      h, w = d.image_size
      logging.info("Generating the synthetic turntable data set into %s.", root)
      turntable.generate(root, size=max(h, w), train_objects=d.turntable_train_objects,
                         test_objects=d.turntable_test_objects, seed=d.turntable_seed,
                         num_azimuths=d.num_azimuths,
                         elevations=tuple(int(d.elevation_min + d.elevation_step * i)
                                          for i in range(d.num_elevations)))
    return
  if not root or not os.path.isdir(root):
    raise FileNotFoundError(_help(config))
  missing = [os.path.join(root, n) for n in sources_lib.m2n_expected_files(config)
             if not os.path.isfile(os.path.join(root, n))]
  if missing:
    raise FileNotFoundError(f"{d.name} data root {root} is incomplete; missing: {', '.join(missing)}.\n" +
                            _help(config).split("\n", 1)[1])


def _ensure_voxceleb(config) -> None:
  root = config.data.root
  if not root or not os.path.isdir(root):
    raise FileNotFoundError(_help(config))
  missing = [os.path.join(root, s) for s in ("train", "test") if not os.path.isdir(os.path.join(root, s))]
  if missing:
    raise FileNotFoundError(f"{config.data.name} data root {root} is incomplete; missing: "
                            f"{', '.join(missing)}.\n" + _help(config).split("\n", 1)[1])


def ensure_dataset(config) -> None:
  """Generates a synthetic set at `data.root` if incomplete; checks a real set's root and layout.

  Synthetic people (`data.name = "synthetic"`) and the synthetic turntable (`data.m2n_kind =
  "turntable"`) are generated; for real sets a missing root or file raises FileNotFoundError naming the
  files and layout expected (and the synthetic config to try instead).
  """
  name, root = config.data.name, config.data.root
  if config.data.pose_kind == "camera":
    _ensure_m2n(config)
    return
  if config.data.pose_kind == "landmarks":
    _ensure_voxceleb(config)
    return
  if name == "synthetic":
    from rfgen_jax.data import synthetic  # pylint: disable=g-import-not-at-top
    if not synthetic.is_complete(root):
      h, w = config.data.image_size
      logging.info("Generating the synthetic people data set into %s.", root)
      synthetic.generate(root, h, w, config.data.synthetic_train_ids, config.data.synthetic_test_ids,
                         config.data.synthetic_views_per_id, config.data.synthetic_seed)
    return
  if name not in ("market", "deepfashion"):
    raise ValueError(f"Unknown data.name={name!r} for body keypoints; this pipeline knows synthetic, "
                     "market, deepfashion (and shapenet_chair, kitti, turntable, voxceleb2 with their "
                     "data.pose_kind).")
  if not root or not os.path.isdir(root):
    raise FileNotFoundError(_REAL_DATA_HELP[name].format(root=os.path.abspath(root or ".")))
  layout = annotations.layout_for(name)
  missing = [p for p in [os.path.join(root, s) for s in ("train", "test")] +
             [os.path.join(root, layout.annotation.format(split=s)) for s in ("train", "test")]
             if not os.path.exists(p)]
  if missing:
    raise FileNotFoundError(f"{name} data root {root} is incomplete; missing: {', '.join(missing)}.\n" +
                            _REAL_DATA_HELP[name].format(root=os.path.abspath(root)).split("\n", 1)[1])


def open_split(config, split: str) -> SplitIndex:
  """Opens one split as a random-access data source (`sources.SplitIndex`), by `data.pose_kind`.

  Body keypoints: prepares the TFDS data set if needed. Camera poses: the M2N HDF5 file of
  `data.m2n_kind`. Landmarks: the VoxCeleb2 layout. Bad input raises naming the file and entry.
  """
  if config.data.pose_kind == "camera":
    return sources_lib.open_m2n_split(config, split)
  if config.data.pose_kind == "landmarks":
    return sources_lib.open_voxceleb_split(config, split)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from rfgen_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top
  builder = tfds_builders.prepare(config)
  source = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
  names, identities = [], []
  for i in range(len(source)):
    record = source[i]
    names.append(_text(record["name"]))
    identities.append(_text(record["identity"]))
  return SplitIndex(source, names, identities, f"{builder.name}/{split} in {builder.data_dir}")


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------------------ examples
def decode_image(data: bytes, name: str) -> np.ndarray:
  """Decodes JPEG/PNG bytes to (H, W, 3) uint8; raises ValueError naming the file on failure."""
  try:
    with Image.open(io.BytesIO(data)) as im:
      return np.asarray(im.convert("RGB"))
  except Exception as e:  # PIL raises several types for broken files
    raise ValueError(f"Corrupt or unreadable image {name!r} ({type(e).__name__}: {e}).") from e


def resize_example(image: np.ndarray, keypoints: np.ndarray,
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Resizes (h, w, 3) uint8 to size (H, W) (bilinear) and rescales (J, 2) (y, x) keypoints (-1 kept)."""
  h, w = image.shape[:2]
  if (h, w) == tuple(size):
    return image, keypoints
  out = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
  scale = np.array([size[0] / h, size[1] / w], np.float32)
  kp = (np.asarray(keypoints, np.float32) + 0.5) * scale - 0.5
  kp[(np.asarray(keypoints) < 0).any(axis=-1)] = -1.0
  return out, kp


class _TupleLoader:
  """Loads K sources + 1 target by index into one example of the batch contract (no batch axis).

  Picklable (grain workers receive a copy).
  """

  def __init__(self, config, index: SplitIndex, train: bool):
    self.source = index.source
    self.names = index.names
    self.description = index.description
    self.image_size = tuple(config.data.image_size)
    self.encoder = poses.make_pose_encoder(config, index.pose_stats)
    self.pose_kind = config.data.pose_kind
    # Points (keypoints, landmarks) move with the image; a camera pose would not, so no augmentation.
    self.augment = train and config.data.augment and self.pose_kind != "camera"
    self.rotation = config.data.augment_rotation
    self.shift = config.data.augment_shift
    self.scale_range = tuple(config.data.augment_scale)
    self.skip_corrupt = config.data.skip_corrupt_images

  def load_image(self, index: int, rng: np.random.Generator | None):
    """-> (image (H, W, 3) float32 in [-1, 1], pose (H, W, P), points (J, 2) or None) or None (skipped).

    Points are the keypoints / landmarks at `data.image_size` ((y, x), -1 missing), None for camera poses.
    """
    record = self.source[int(index)]
    name = self.names[int(index)]
    raw = record["image"]
    try:
      image = raw if isinstance(raw, np.ndarray) else decode_image(raw, name)
    except ValueError as e:
      if not self.skip_corrupt:
        raise ValueError(f"{e} Record {index} of {self.description}.") from None
      logging.warning("Skipping a tuple with an unreadable image %s (data.skip_corrupt_images=True).", name)
      return None
    pose_raw = np.asarray(record["keypoints"] if "keypoints" in record else record["pose"], np.float32)
    try:
      if self.pose_kind == "camera":
        image, _ = resize_example(image, np.zeros((0, 2), np.float32), self.image_size)
        points = None
        pose = self.encoder.encode(pose_raw, self.image_size)
      else:
        image, points = resize_example(image, pose_raw, self.image_size)
        if self.augment and rng is not None:
          image, points = augment_lib.augment(image, points, rng, self.rotation, self.shift,
                                              self.scale_range)
        points = points.astype(np.float32)
        pose = self.encoder.encode(points, self.image_size)
    except ValueError as e:
      raise ValueError(f"{self.description}, entry {name!r}: {e}") from None
    return image.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0), pose, points

  def load_tuple(self, source_ids, target_id, rng, valid=True) -> dict[str, np.ndarray] | None:
    loaded = [self.load_image(i, rng) for i in list(source_ids) + [target_id]]
    if any(x is None for x in loaded):
      return None
    images, pose_maps, kps = zip(*loaded)
    example = {
        "source_images": np.stack(images[:-1]),
        "source_poses": np.stack(pose_maps[:-1]),
        "target_image": images[-1],
        "target_pose": pose_maps[-1],
        "valid": np.bool_(valid),
    }
    if self.pose_kind == "keypoints":
      example["source_keypoints"] = np.stack(kps[:-1])
      example["target_keypoints"] = kps[-1]
    return example


class _RandomTuple(grain.transforms.RandomMap):
  """Training element: position among the targets -> a tuple with freshly drawn sources and augmentation.

  Args:
    loader: the tuple loader.
    sampler: `sample_sources(target, k, rng)` over source indices (TupleSampler, m2n.ViewSampler,
      voxceleb.FaceSourceSampler).
    num_sources: K.
    targets: (N,) source indices of the training targets, or None for all records.
  """

  def __init__(self, loader: _TupleLoader, sampler, num_sources: int, targets: np.ndarray | None = None):
    self.loader, self.sampler, self.num_sources = loader, sampler, num_sources
    self.targets = targets

  def random_map(self, position, rng: np.random.Generator):
    target = int(position) if self.targets is None else int(self.targets[int(position)])
    sources = self.sampler.sample_sources(target, self.num_sources, rng)
    return self.loader.load_tuple(sources, target, rng)


# ------------------------------------------------------------------------------------------ hosts
def _hosts(process_index, process_count) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} outside [0, {process_count}).")
  return process_index, process_count


def _per_host(global_batch: int, process_count: int, key: str) -> int:
  if global_batch % process_count:
    raise ValueError(f"{key}={global_batch} is not divisible by the {process_count} processes; "
                     f"choose a multiple of {process_count}.")
  return global_batch // process_count


def _num_workers(requested: int) -> int:
  if requested <= 0:
    return 0
  if not flags.FLAGS.is_parsed():
    logging.warning("data.num_workers=%d needs absl flags parsed (run under absl.app.run, inside an "
                    "`if __name__ == '__main__':` guard); loading in the main process instead.", requested)
    return 0
  return requested


class _HostRows(grain.MapDataset):
  """Element n of host p: element (n // L) * G + p * L + n % L of `parent` (L = G / P rows per host)."""

  _MUTATES_ELEMENT_SPEC = False

  def __init__(self, parent: grain.MapDataset, process_index: int, process_count: int, per_host: int):
    super().__init__(parent)
    self._p, self._count, self._rows = process_index, process_count, per_host
    self._length = len(parent) // process_count

  def __len__(self) -> int:
    return self._length

  def _parent_index(self, index: int) -> int:
    batch, row = divmod(index, self._rows)
    return batch * self._rows * self._count + self._p * self._rows + row

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[self._parent_index(index)]

  def __str__(self) -> str:
    return f"_HostRows(process {self._p} of {self._count}, {self._rows} rows)"


# ------------------------------------------------------------------------------------------ entry points
def create_train_dataset(config, process_index=None, process_count=None,
                         index: SplitIndex | None = None) -> grain.IterDataset:
  """The training IterDataset (see the module docstring); `create_train_iterator` iterates it."""
  process_index, process_count = _hosts(process_index, process_count)
  per_host = _per_host(config.train.batch_size, process_count, "train.batch_size")
  index = index or open_split(config, "train")
  sampler = index.sampler if index.sampler is not None else tuples_lib.TupleSampler(index.identities)
  loader = _TupleLoader(config, index, train=True)
  seed = int(config.data.shuffle_seed)
  num_targets = len(index.names) if index.targets is None else len(index.targets)
  ds = grain.MapDataset.range(num_targets).shuffle(seed=seed).repeat(None)
  ds = ds.random_map(_RandomTuple(loader, sampler, config.data.num_sources, index.targets), seed=seed + 1)
  if process_count > 1:
    ds = _HostRows(ds, process_index, process_count, per_host)
  it = ds.to_iter_dataset(grain.ReadOptions(
      num_threads=_READ_THREADS, prefetch_buffer_size=max(1, config.data.prefetch_buffer_size) * per_host))
  it = it.batch(per_host, drop_remainder=True)
  workers = _num_workers(config.data.num_workers)
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=workers, per_worker_buffer_size=max(1, config.data.prefetch_buffer_size)))
  return it


def create_train_iterator(config, process_index=None, process_count=None) -> grain.DatasetIterator:
  """A grain DatasetIterator of per-host training batches (`train.batch_size // process_count` tuples).

  Args:
    config: the experiment config.
    process_index, process_count: this host's place; default `jax.process_index()/process_count()`.

  Returns:
    An infinite, checkpointable iterator (`get_state()/set_state()`, grain's Orbax handlers) of dicts
    following the batch contract with K = `config.data.num_sources`.
  """
  return iter(create_train_dataset(config, process_index, process_count))


class EvalBatches:
  """Re-iterable per-host evaluation batches over the fixed, seeded test tuples.

  Global batch b holds tuples [b * eval.batch_size, (b + 1) * eval.batch_size); host p holds its
  `eval.batch_size // process_count` consecutive rows of it. Rows past the last tuple repeat tuple 0 with
  `valid` False, so every host yields `len(self)` batches of the same shape.

  Attributes:
    tuples: (T, K + 1) int64 record indices (sources..., target) of all hosts' tuples, in order.
    names: the same as tuples of file names (for `tuples.write_test_tuples_csv`).
  """

  def __init__(self, config, num_sources: int, process_index: int, process_count: int, index: SplitIndex):
    self._loader = _TupleLoader(config, index, train=False)
    self.per_host = _per_host(config.eval.batch_size, process_count, "eval.batch_size")
    self.global_batch = config.eval.batch_size
    self.process_index = process_index
    if index.make_test_tuples is not None:   # camera / landmark data: their own rules (m2n.py, voxceleb.py)
      rows = index.make_test_tuples(num_sources, config.data.test_tuples_seed, config.data.num_test_tuples)
    else:
      # Tuples are made over the images sorted by name, so they depend on the file names only (not on the
      # record order TFDS chose when preparing).
      order = np.argsort(np.asarray(index.names, dtype=object).astype(str), kind="stable")
      rows = order[tuples_lib.make_test_tuples([index.identities[i] for i in order], num_sources,
                                               config.data.test_tuples_seed, config.data.num_test_tuples)]
    if config.eval.max_tuples > 0:
      rows = rows[:config.eval.max_tuples]
    self.tuples = rows
    self.names = [tuple(index.names[i] for i in row) for row in rows]
    self.num_sources = num_sources

  def __len__(self) -> int:
    return -(-len(self.tuples) // self.global_batch)

  def _element(self, j: int) -> dict[str, np.ndarray]:
    b, r = divmod(j, self.per_host)
    g = b * self.global_batch + self.process_index * self.per_host + r
    valid = g < len(self.tuples)
    row = self.tuples[g if valid else 0]
    example = self._loader.load_tuple(row[:-1], row[-1], None, valid=valid)
    if example is None:  # an unreadable image with data.skip_corrupt_images: keep the shape, mark invalid
      example = self._loader.load_tuple(self.tuples[0][:-1], self.tuples[0][-1], None, valid=False)
    return example

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    ds = grain.MapDataset.range(len(self) * self.per_host).map(self._element).batch(self.per_host)
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=_READ_THREADS,
                                                     prefetch_buffer_size=2 * self.per_host)))


def create_eval_batches(config, num_sources: int, process_index=None, process_count=None) -> EvalBatches:
  """Per-host evaluation batches of `num_sources` sources over the fixed test tuples (see EvalBatches).

  The tuples are `tuples.make_test_tuples` (keypoints), `m2n.make_test_tuples` (camera) or
  `voxceleb.make_test_tuples` (landmarks) of the test split with `data.test_tuples_seed` and
  `data.num_test_tuples`, cut to the first `eval.max_tuples` when that is > 0; no augmentation.
  """
  process_index, process_count = _hosts(process_index, process_count)
  return EvalBatches(config, num_sources, process_index, process_count, open_split(config, "test"))

