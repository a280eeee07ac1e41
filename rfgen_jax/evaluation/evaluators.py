"""Evaluators: small parts registered by name and listed in `eval.evaluators` (big_vision style).

Every evaluator sees the same thing, batch after batch: 8-bit generated and real images (what a saved
PNG holds; GFLA's scripts score saved files), a `valid` row mask and the tuple names. The loop
(`loop.py`) feeds them; `--mode=eval` (`evaluator.py`), training (`loop.run_evaluators`, every
`eval.every_steps`) and the folder scorer (`rfgen_jax.tools.score_folder`) all run these same classes.

Interface (`Evaluator`):
- `__init__(env)`: load what it needs; raise `Unavailable(reason)` when it cannot run (a weight file
  is missing: the reason says which and the command that makes it). `applies(env)` (a classmethod)
  says whether it means anything for the data (Mask-LPIPS needs body keypoints).
- `start(k)`: new accumulators for a run over the tuples of K sources.
- `update(batch)`: one `Batch`; must be called on every process (it may gather across processes).
- `result()`: `{metric: float}` over the valid rows seen since `start`.
- `counts()`: optional `{name: int}` put into metrics.json (e.g. rows with an empty person mask).

Registered (name -> metric keys): `ssim_psnr_l1` -> ssim, psnr, l1 (+ ssim_person, l1_person with body
keypoints); `lpips` -> lpips; `mask_lpips` -> mask_lpips; `fid_gfla` -> fid (GFLA's FID: torchvision's
ImageNet Inception, GFLA's input transform, real statistics of the training set); `fid_pytorch` ->
fid_pytorch (pytorch-fid's TF-Inception; same real images); `samples` -> samples_K{k}.png; `pngs` ->
images_K{k}/<tuple>.png (every generated test image, see `image_files.png_name`). Metric definitions:
`metrics.py`; the protocol and why: docs/protocol.md; docs/design.md, "## 6. Evaluation".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from rfgen_jax import errors, multihost, visualize
from rfgen_jax.evaluation import image_files, metrics
from rfgen_jax.runtime import sharding

REGISTRY: Dict[str, type] = {}


def register(name: str):
  """Class decorator: `@register("lpips") class LPIPS(Evaluator): ...`."""
  def wrap(cls):
    cls.name = name
    REGISTRY[name] = cls
    return cls
  return wrap


class Unavailable(Exception):
  """An evaluator cannot run here; `str(e)` says why and what to do."""


@dataclasses.dataclass
class Batch:
  """One global batch as every evaluator sees it.

  Attributes:
    fake: (B, H, W, 3) uint8 generated images, a global array sharded over `data`.
    real: (B, H, W, 3) uint8 ground truth, same layout.
    valid: (B,) bool numpy, the same on every process (False: padding or an unreadable tuple).
    names: (B,) tuples of file names (sources..., target); invalid rows hold any tuple.
    mask: (B, H, W, 1) float32 target-pose body mask (`masks.limb_mask`), global; None without body
      keypoints.
    host: this process's input batch (numpy dict of the batch contract) or None (folder scorer).
    index: batch number within the run.
  """
  fake: jax.Array
  real: jax.Array
  valid: np.ndarray
  names: Sequence[Tuple[str, ...]]
  mask: Optional[jax.Array] = None
  host: Optional[dict] = None
  index: int = 0


@dataclasses.dataclass
class Env:
  """What evaluators may use besides the batches.

  Attributes:
    config: the run's config (reads `eval.*`, `data.image_size`).
    mesh: the device mesh; batches are sharded over its `data` axis.
    keypoint_data: the targets have body keypoints (person masks exist).
    out_dir: folder for files (samples, PNGs); None = write nothing.
    fid_reals: None, or `(description, make_batches)` for FID's real statistics (`eval.fid_real`
      "train": the training split): `make_batches()` yields `(images (b, H, W, 3) uint8, valid (b,))`
      per-host batches in the eval layout. None: the reals of the scored batches (the test targets).
    cache_dir: where real FID statistics are cached (keyed by `fid_reals[0]` and the network); None = no
      cache.
    step: the checkpoint step (for file names and logs).
  """
  config: Any
  mesh: Mesh
  keypoint_data: bool = False
  out_dir: Optional[str] = None
  fid_reals: Optional[Tuple[str, Callable[[], Iterable[Tuple[np.ndarray, np.ndarray]]]]] = None
  cache_dir: Optional[str] = None
  step: int = 0


def gather(x) -> np.ndarray:
  """A global array (possibly spanning processes) -> the whole numpy array on every process.

  With several processes, they first meet at a coordination-service barrier (`rfgen_jax/multihost.py`):
  process 0 does more host work between gathers (writing PNGs, drawing grids) and a process may compile
  a network that another found cached, and the gather's collective (gloo's on CPU) waits only 30 s.
  """
  multihost.barrier("evaluation gather")
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


@jax.jit
def to_signed(images_u8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1] (the metric functions' range)."""
  return images_u8.astype(jnp.float32) / 127.5 - 1.0


class Evaluator:
  """Base class; see the module docstring for the interface."""
  name = ""

  def __init__(self, env: Env):
    self.env = env

  @classmethod
  def applies(cls, env: Env) -> bool:
    del env
    return True

  def start(self, k: int) -> None:
    self.k = k

  def update(self, batch: Batch) -> None:
    raise NotImplementedError

  def result(self) -> Dict[str, float]:
    return {}

  def counts(self) -> Dict[str, int]:
    return {}


class _PerImage(Evaluator):
  """Averages per-image values over the valid rows (no value is dropped: an inf stays in the mean).

  Subclasses define `values(fake, real, mask) -> {metric: (B,)}` (jittable, [-1, 1] inputs) and may
  list in `MASKED` metrics that are undefined for an empty person mask: those rows are left out of that
  metric and counted in `counts()["empty_person_mask"]`.
  """
  MASKED: Tuple[str, ...] = ()

  def start(self, k):
    super().start(k)
    self._values: Dict[str, list] = {}
    self._empty = 0

  def values(self, fake, real, mask):
    """{metric: (B,)} of [-1, 1] float images (jitted functions, compiled once per shape)."""
    raise NotImplementedError

  def update(self, batch):
    out = self.values(to_signed(batch.fake), to_signed(batch.real), batch.mask)
    has_mask = None
    if batch.mask is not None and self.MASKED:
      has_mask = gather(jnp.sum(batch.mask, axis=(1, 2, 3)) > 0)
      self._empty += int(np.sum(batch.valid & ~has_mask))
    for name, v in out.items():
      keep = batch.valid & has_mask if (name in self.MASKED and has_mask is not None) else batch.valid
      self._values.setdefault(name, []).append(gather(v)[keep])

  def result(self):
    return {n: float(np.mean(np.concatenate(v).astype(np.float64))) if sum(map(len, v)) else float("nan")
            for n, v in self._values.items()}

  def counts(self):
    return {"empty_person_mask": self._empty} if self.MASKED and self.env.keypoint_data else {}


@register("ssim_psnr_l1")
class PixelMetrics(_PerImage):
  """SSIM, PSNR, L1 on [0, 1] images (`metrics.ssim/psnr/l1`), and over the person region with keypoints."""
  MASKED = ("l1_person", "ssim_person")

  def values(self, fake, real, mask):
    return _pixel_values(fake, real, mask)


@jax.jit
def _pixel_values(fake, real, mask):
  out = {"l1": metrics.l1(fake, real), "psnr": metrics.psnr(fake, real), "ssim": metrics.ssim(fake, real)}
  if mask is not None:
    out["l1_person"] = metrics.l1(fake, real, mask)
    out["ssim_person"] = metrics.ssim(fake, real, mask)
  return out


_NETWORKS: Dict[Tuple, Any] = {}


def _cached(key: Tuple, make: Callable[[], Any]):
  """Loaded metric networks, kept for the next evaluation (training evaluates every eval.every_steps)."""
  if key not in _NETWORKS:
    _NETWORKS[key] = make()
  return _NETWORKS[key]


def _lpips_model(config) -> metrics.LPIPSModel:
  ok, reason = metrics.LPIPSModel.available(config)
  if not ok:
    raise Unavailable(reason)
  return _cached(("lpips", config.eval.alexnet_weights, config.eval.lpips_heads),
                 lambda: metrics.LPIPSModel.from_config(config))


@register("lpips")
class LPIPS(_PerImage):
  """LPIPS v0.1 AlexNet-lin of the whole images."""

  def __init__(self, env):
    super().__init__(env)
    self.model = _lpips_model(env.config)

  def values(self, fake, real, mask):
    del mask
    return {"lpips": self.model(fake, real)}


@register("mask_lpips")
class MaskLPIPS(_PerImage):
  """GFLA's Mask-LPIPS (Market-1501): LPIPS of both images times the target pose's body mask."""

  @classmethod
  def applies(cls, env):
    return env.keypoint_data and bool(env.config.eval.mask_lpips)

  def __init__(self, env):
    super().__init__(env)
    self.model = _lpips_model(env.config)

  def values(self, fake, real, mask):
    return {"mask_lpips": self.model(fake, real, mask=mask)}


def _file_key(path: str) -> list:
  st = os.stat(path)
  return [os.path.abspath(path), st.st_size, int(st.st_mtime)]


class _FID(Evaluator):
  """FID of the generated images against `env.fid_reals` (or the scored batches' reals)."""
  VARIANT = ""
  KEY = ""

  def __init__(self, env):
    super().__init__(env)
    config = env.config
    ok, reason = metrics.InceptionFeatures.available(config, self.VARIANT)
    if not ok:
      raise Unavailable(reason)
    path = config.eval[metrics.InceptionFeatures.CONFIG_KEYS[self.VARIANT].split(".")[1]]
    self.weights_key = _file_key(path)
    self.net = _cached(("inception", self.VARIANT, path),
                       lambda: metrics.InceptionFeatures.load(path, self.VARIANT))
    self.real_stats = None

  def features(self, images_u8: jax.Array) -> jax.Array:
    """(B, H, W, 3) uint8 -> (B, 2048) pool3 features (the network's jit, shared by every instance)."""
    return self.net(to_signed(images_u8))

  def start(self, k):
    super().start(k)
    self.fake = metrics.FeatureStatistics()
    self.real = metrics.FeatureStatistics() if self.env.fid_reals is None else None

  def update(self, batch):
    self.fake.update(gather(self.features(batch.fake)), batch.valid)
    if self.real is not None:
      self.real.update(gather(self.features(batch.real)), batch.valid)

  def _stats_path(self, description: str) -> Optional[str]:
    if not self.env.cache_dir:
      return None
    key = hashlib.sha1(json.dumps([self.VARIANT, self.weights_key, description]).encode()).hexdigest()[:16]
    return os.path.join(self.env.cache_dir, f"{self.VARIANT}_{key}.npz")

  def _reference_stats(self):
    """Real statistics of `env.fid_reals`, computed once per evaluator and cached on disk."""
    if self.real_stats is not None:
      return self.real_stats
    description, make_batches = self.env.fid_reals
    path = self._stats_path(description)
    if path and os.path.exists(path):
      with np.load(path) as f:
        self.real_stats = (f["mu"], f["sigma"], int(f["count"]))
      logging.info("FID (%s): real statistics of %d images from %s", self.VARIANT, self.real_stats[2], path)
      return self.real_stats
    acc = metrics.FeatureStatistics()
    for images, valid in make_batches():
      global_images = sharding.to_global_batch({"x": images}, self.env.mesh)["x"]
      global_valid = gather(sharding.to_global_batch({"v": valid}, self.env.mesh)["v"])
      acc.update(gather(self.features(global_images)), global_valid)
    mu, sigma = acc.finalize()
    self.real_stats = (mu, sigma, acc.count)
    if path and jax.process_index() == 0:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      np.savez(path, mu=mu, sigma=sigma, count=acc.count, description=description)
    return self.real_stats

  def result(self):
    if self.fake.count < 2:
      raise errors.BadInputError(f"{self.KEY}: FID needs at least 2 generated images, got {self.fake.count} "
                                 "(raise eval.max_tuples).")
    if self.real is not None:
      mu, sigma = self.real.finalize()
      self._real_count = self.real.count
    else:
      mu, sigma, self._real_count = self._reference_stats()
    return {self.KEY: metrics.frechet_distance(*self.fake.finalize(), mu, sigma)}

  def counts(self):
    return {f"{self.KEY}_real_images": int(getattr(self, "_real_count", 0))}


@register("fid_gfla")
class FIDGFLA(_FID):
  """GFLA's FID (`fid`): torchvision's ImageNet Inception-v3, GFLA's input transform."""
  VARIANT, KEY = "gfla", "fid"


@register("fid_pytorch")
class FIDPytorch(_FID):
  """pytorch-fid's FID (`fid_pytorch`): the TF FID Inception-v3 (`pt_inception-2015-12-05`)."""
  VARIANT, KEY = "pytorch_fid", "fid_pytorch"


@register("samples")
class Samples(Evaluator):
  """samples_K{k}.png: sources | target pose | generated | ground truth of the first batches' rows."""

  @classmethod
  def applies(cls, env):
    return env.out_dir is not None

  def start(self, k):
    super().start(k)
    self.rows = []

  def update(self, batch):
    if batch.index >= self.env.config.eval.num_sample_grids or batch.host is None:
      return
    fake = gather(batch.fake)  # every process takes part; process 0 draws its own (first) rows
    n = len(batch.host["target_image"])
    valid = batch.valid[:n]
    if jax.process_index() == 0 and valid.any():
      host = {key: v[:n][valid] for key, v in batch.host.items()}
      self.rows.append(visualize.sample_grid(host, fake[:n][valid].astype(np.float32) / 127.5 - 1.0,
                                             max_rows=8))

  def result(self):
    if self.rows and jax.process_index() == 0:
      width = max(r.shape[1] for r in self.rows)
      grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in self.rows])
      visualize.write_png(os.path.join(self.env.out_dir, f"samples_K{self.k}.png"), grid)
    return {}


@register("pngs")
class PNGs(Evaluator):
  """images_K{k}/<sources>_2_<target>.png: every valid generated image, 8-bit, named after its tuple."""

  @classmethod
  def applies(cls, env):
    return env.out_dir is not None

  def start(self, k):
    super().start(k)
    self.folder = os.path.join(self.env.out_dir, f"images_K{k}")
    self.written = 0
    self.used: set = set()
    if jax.process_index() == 0:
      os.makedirs(self.folder, exist_ok=True)

  def update(self, batch):
    fake = gather(batch.fake)
    if jax.process_index() != 0:
      return
    for i in np.flatnonzero(batch.valid):
      name = image_files.png_name(batch.names[i], self.used)
      image_files.write_png(os.path.join(self.folder, name), fake[i])
      self.written += 1

  def counts(self):
    return {"pngs_written": self.written}


def build(names: Sequence[str], env: Env) -> Tuple[list, list]:
  """Instantiates the evaluators `names` that apply to `env`.

  Returns:
    (evaluators, skipped): skipped is `[{"metric": name, "reason": ...}]` for those `Unavailable`.
  Raises:
    ValueError: an unknown name (naming `eval.evaluators` and the registered ones).
  """
  unknown = [n for n in names if n not in REGISTRY]
  if unknown:
    raise errors.BadInputError(f"--config.eval.evaluators: unknown evaluator(s) {unknown}; registered: "
                               f"{sorted(REGISTRY)}.")
  built, skipped = [], []
  for name in names:
    cls = REGISTRY[name]
    if not cls.applies(env):
      continue
    try:
      built.append(cls(env))
    except Unavailable as e:
      skipped.append({"metric": {"fid_gfla": "fid"}.get(name, name), "reason": str(e)})
  return built, skipped


__all__ = ("REGISTRY", "register", "Unavailable", "Batch", "Env", "Evaluator", "build", "gather",
           "to_signed")
