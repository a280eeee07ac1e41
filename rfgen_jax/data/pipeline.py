"""The grain input pipeline: a registered data set's split -> K-source tuples -> per-host numpy batches.

Data flow (docs/data.md): `config.data.name` -> the registry (`rfgen_jax/data/datasets/`) -> the data set
prepares itself once (`ensure_dataset`: process 0 first, then a barrier) and opens a split as a
`SplitIndex` (random-access source + metadata, cached per process) -> tuples (its sampler, or
`tuples.TupleSampler` over identities) -> images decoded and resized (`images.py`), augmented
(`augment.py`, training only) -> pose maps (`poses.make_pose_encoder`) -> grain batches. Nothing here
names a data set.

Batch contract (docs/design.md, "## 4. Data"): `source_images` (B, K, H, W, 3) float32 in [-1, 1],
`source_poses` (B, K, H, W, P) float32, `target_image` (B, H, W, 3), `target_pose` (B, H, W, P),
`source_keypoints` (B, K, J, 2) and `target_keypoints` (B, J, 2) float32 (y, x) pixels at
`data.image_size` (after resize and augmentation), -1 missing (keypoint data only: camera and landmark
batches have no `*_keypoints` keys), and `valid` (B,) bool (all True in training; False for the padding
rows of the last evaluation batch).

Training stream (a grain MapDataset, so it is random-access, deterministic and resumable):
  range(N train targets) -> shuffle(data.shuffle_seed), reshuffled each epoch -> repeat forever
  -> random_map: element i (global index) draws its sources and augmentation from a generator seeded by
     (seed, i) -> this host's rows (`_HostRows`: of global batch t, host p reads elements
     t * B + p * B / P + [0, B / P)) -> batch(per-host) -> to_iter_dataset (threads)
  -> mp_prefetch(data.num_workers) when > 0 (worker w makes batches w, w + n, ...; grain hands them
     out in order, so the stream is the same for every number of workers).
Each epoch every image is a target once; its K sources are drawn afresh by the split's sampler.
Host p's i-th batch is rows [p * B / P, (p + 1) * B / P) of the global batch i, which is the same for
every process count (a run on 2 hosts sees the batches of a run on 1); `get_state()/set_state()` of the
returned iterator (or grain's Orbax handlers) restore the stream exactly.

Images are resized to `data.image_size` when the file's size differs; points are scaled with pixel
centres kept (`images.rescale_points`) from the frame they were annotated in (`data.keypoint_frame`, or
the file's own size when it is ()). Then augmented (training only, `data.augment`, and only for data
sets whose pose moves with the image: not camera poses; the target gets GFLA's weaker transform with
`data.augment_target = "weaker"`, docs/protocol.md), then encoded as pose maps.
"""
from __future__ import annotations

from typing import Iterator

from absl import flags
from absl import logging
import grain
import jax
import numpy as np

from rfgen_jax.data import augment as augment_lib
from rfgen_jax.data import datasets
from rfgen_jax.data import images
from rfgen_jax.data import poses
from rfgen_jax.data import prepare as prepare_lib
from rfgen_jax.data import split_index
from rfgen_jax.data import tuples as tuples_lib
from rfgen_jax.data.images import resize_example  # pylint: disable=unused-import  (used by inference.py)
from rfgen_jax.data.split_index import SplitIndex

AUGMENT_TARGET = ("weaker", "same")


def _check_in_frame(keypoints: np.ndarray, frame: tuple[int, int], explicit: tuple[int, ...]) -> None:
  """ValueError when a present keypoint lies outside its (H, W) frame (one pixel of slack)."""
  kp = np.asarray(keypoints)
  present = (kp >= 0).all(axis=-1)
  outside = present & ((kp[:, 0] > frame[0]) | (kp[:, 1] > frame[1]))
  if outside.any():
    where = ("--config.data.keypoint_frame" if explicit else
             "the image file's size (--config.data.keypoint_frame=())")
    raise ValueError(f"keypoints {kp[outside].max(axis=0).tolist()} (y, x) fall outside their frame {frame} "
                     f"({where}); set --config.data.keypoint_frame to the (H, W) the annotations were made in.")


# ------------------------------------------------------------------------------------------ data set
def pose_kind(config) -> str:
  """The pose kind of the config's data set: "keypoints" | "camera" | "landmarks"."""
  return datasets.get(config.data.name).pose_kind


def ensure_dataset(config) -> None:
  """Prepares the data set once: generates a synthetic set at `data.root` if incomplete, checks a real
  set's root and layout, and writes any prepared copy (TFDS) with its split index.

  Runs on process 0 first, then (after a barrier) on the others (`prepare.run_once`). A missing root or
  file raises FileNotFoundError naming the files and layout expected (and a synthetic config to try).
  """
  dataset = datasets.get(config.data.name)
  prepare_lib.run_once(lambda: dataset.prepare(config), f"prepare {dataset.name}")


def open_split(config, split: str) -> SplitIndex:
  """Opens one split (`split_index.SplitIndex`), preparing the data set first; once per process.

  Bad input raises naming the file and entry.
  """
  dataset = datasets.get(config.data.name)

  def files():
    return dataset.fingerprint_files(config) if dataset.fingerprint_files else []

  def open_fn(cfg, s):
    ensure_dataset(cfg)
    return dataset.open_split(cfg, s)

  return split_index.cached_split(config, split, open_fn, files)


# ------------------------------------------------------------------------------------------ examples
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
    dataset = datasets.get(config.data.name)
    self.pose_kind = dataset.pose_kind
    # Points (keypoints, landmarks) move with the image; a camera pose would not, so no augmentation.
    self.augment = train and config.data.augment and dataset.augment
    self.rotation = config.data.augment_rotation
    self.shift = config.data.augment_shift
    self.scale_range = tuple(config.data.augment_scale)
    self.weaker_target = config.data.augment_target == "weaker"   # checked by data/config_check.py
    self.keypoint_frame = tuple(int(v) for v in config.data.keypoint_frame)
    self.skip_corrupt = config.data.skip_corrupt_images

  def load_image(self, index: int, rng: np.random.Generator | None, target: bool = False):
    """-> (image (H, W, 3) float32 in [-1, 1], pose (H, W, P), points (J, 2) or None) or None (skipped).

    Points are the keypoints / landmarks at `data.image_size` ((y, x), -1 missing), None for camera poses.
    Body keypoints are read in the frame `data.keypoint_frame` (or the file's own size when that is ());
    a target gets GFLA's weaker transform with `data.augment_target = "weaker"`.
    """
    record = self.source[int(index)]
    name = self.names[int(index)]
    raw = record["image"]
    try:
      image = raw if isinstance(raw, np.ndarray) else images.decode_image(raw, name)
    except ValueError as e:
      if not self.skip_corrupt:
        raise ValueError(f"{e} Record {index} of {self.description}.") from None
      logging.warning("Skipping a tuple with an unreadable image %s (data.skip_corrupt_images=True).", name)
      return None
    pose_raw = np.asarray(record["pose"], np.float32)
    try:
      if self.pose_kind == "camera":
        image = images.resize_image(image, self.image_size)
        points = None
        pose = self.encoder.encode(pose_raw, self.image_size)
      else:
        frame = self.keypoint_frame or tuple(image.shape[:2])
        if self.pose_kind == "keypoints":
          _check_in_frame(pose_raw, frame, self.keypoint_frame)
        image = images.resize_image(image, self.image_size)
        points = pose_raw if frame == self.image_size else images.rescale_points(pose_raw, frame, self.image_size)
        if self.augment and rng is not None:
          if target and self.weaker_target:   # GFLA: angle x 0.2, shift x 0.5, no scale for the target
            image, points = augment_lib.augment(image, points, rng, 0.2 * self.rotation, 0.5 * self.shift,
                                                (1.0, 1.0))
          else:
            image, points = augment_lib.augment(image, points, rng, self.rotation, self.shift,
                                                self.scale_range)
        points = points.astype(np.float32)
        pose = self.encoder.encode(points, self.image_size)
    except ValueError as e:
      raise ValueError(f"{self.description}, entry {name!r}: {e}") from None
    return image.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0), pose, points

  def load_tuple(self, source_ids, target_id, rng, valid=True) -> dict[str, np.ndarray] | None:
    loaded = [self.load_image(i, rng) for i in source_ids] + [self.load_image(target_id, rng, target=True)]
    if any(x is None for x in loaded):
      return None
    pixels, pose_maps, kps = zip(*loaded)
    example = {
        "source_images": np.stack(pixels[:-1]),
        "source_poses": np.stack(pose_maps[:-1]),
        "target_image": pixels[-1],
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
    sampler: `sample_sources(target, k, rng)` over source indices (the split's sampler, e.g.
      `tuples.TupleSampler`, `datasets.m2n.ViewSampler`, `datasets.voxceleb.FaceSourceSampler`).
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
def _read_threads(config) -> int:
  """`data.read_threads`: threads (per process, or per grain worker) that load elements ahead of use."""
  threads = config.data.read_threads
  if not isinstance(threads, int) or threads < 1:
    raise ValueError(f"--config.data.read_threads must be an integer >= 1, got {threads!r}.")
  return threads


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
  # Batched before the iterator, so that a batch is one element: grain's worker w reads elements
  # w, w + n, ... of the iterator's source, and batching after that would mix the rows of different
  # batches (worker 0's first batch would be elements 0, 2, 4, ...). This way batch t is rows
  # [t * per_host, (t + 1) * per_host) whatever data.num_workers (tests/test_real_configs.py).
  ds = ds.batch(per_host, drop_remainder=True)
  it = ds.to_iter_dataset(grain.ReadOptions(
      num_threads=_read_threads(config), prefetch_buffer_size=max(1, config.data.prefetch_buffer_size)))
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
    self._read_threads = _read_threads(config)
    self.per_host = _per_host(config.eval.batch_size, process_count, "eval.batch_size")
    self.global_batch = config.eval.batch_size
    self.process_index = process_index
    if index.make_test_tuples is not None:   # the data set's own rule (e.g. datasets/m2n.py, voxceleb.py)
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
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=self._read_threads,
                                                     prefetch_buffer_size=2 * self.per_host)))


def create_eval_batches(config, num_sources: int, process_index=None, process_count=None) -> EvalBatches:
  """Per-host evaluation batches of `num_sources` sources over the fixed test tuples (see EvalBatches).

  The tuples are the split's own rule (`SplitIndex.make_test_tuples`, e.g. `datasets.m2n`) or
  `tuples.make_test_tuples` over the test images sorted by name, with `data.test_tuples_seed` and
  `data.num_test_tuples`, cut to the first `eval.max_tuples` when that is > 0; no augmentation. The
  split is opened once per process (evaluating K = 1, 2, 3 reads its index once).
  """
  process_index, process_count = _hosts(process_index, process_count)
  return EvalBatches(config, num_sources, process_index, process_count, open_split(config, "test"))

