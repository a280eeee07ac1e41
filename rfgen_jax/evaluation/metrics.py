"""Image-quality metrics: FID, LPIPS, Mask-LPIPS, SSIM, PSNR, L1 (docs/design.md, "## 6. Evaluation").

Conventions:
- Images are NHWC float in [-1, 1] (the generator's range). SSIM, PSNR and L1 are computed on the
  [0, 1] rescaling `(x + 1) / 2` with data range 1 (GFLA/PATN compute them on 8-bit images / 255;
  `quantize_uint8` reproduces that rounding if wanted). LPIPS takes [-1, 1] directly.
- Per-image functions return (B,) float32 so the eval loop can drop padding rows (`valid`) and
  average over the data set itself. All are jittable (shapes static).
- Optional `mask`: (B, H, W, 1) in [0, 1] (e.g. `masks.limb_mask`); region-restricted metrics
  average over the mask's support (weighted by the mask). An all-zero mask gives NaN for SSIM/PSNR/L1
  (no pixels to average); Mask-LPIPS is LPIPS of the masked images (GFLA), so it is defined for any mask.
- FID statistics and the Fréchet distance are float64 numpy on host, scipy-free: the trace of
  sqrt(S1 S2) is the sum of square roots of the eigenvalues of the symmetric PSD matrix
  sqrt(S1) S2 sqrt(S1) (same spectrum as S1 S2), which is stable for near-singular covariances
  where `scipy.linalg.sqrtm(S1 @ S2)` returns complex noise.

Networks with converted weights (`InceptionFeatures`, `LPIPSModel`) load from the files named by
`eval.gfla_inception_weights` (GFLA's FID: torchvision's ImageNet Inception), `eval.inception_weights`
(pytorch-fid's TF-Inception), `eval.alexnet_weights`, `eval.lpips_heads`; `available(config)` says
whether they can be loaded and, if not, what to run.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rfgen_jax.evaluation import masks as masks_lib
from rfgen_jax.nets import alexnet as alexnet_lib
from rfgen_jax.nets import inception as inception_lib

# SSIM constants (Wang et al. 2004; skimage `gaussian_weights=True`): 11-tap Gaussian, sigma 1.5.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

INCEPTION_COMMANDS = {
    "pytorch_fid": ("python -m rfgen_jax.tools.convert_inception --variant=pytorch_fid "
                    "--input pt_inception-2015-12-05-6726825d.pth --output inception_fid.npz"),
    "gfla": ("python -m rfgen_jax.tools.convert_inception --variant=gfla "
             "--input inception_v3_google-0cc3c7bd.pth --output inception_gfla.npz"),
}
INCEPTION_COMMAND = INCEPTION_COMMANDS["pytorch_fid"]
LPIPS_COMMAND = ("python -m rfgen_jax.tools.convert_lpips --alexnet alexnet-owt-7be5be79.pth "
                 "--heads <lpips>/weights/v0.1/alex.pth --output lpips_alex.npz")


class MissingWeightsError(FileNotFoundError):
  """A metric network's converted weight file is not configured or not found."""


# ---------------------------------------------------------------------------------------------
# Pixel metrics.

def to_unit_range(images: jax.Array) -> jax.Array:
  """[-1, 1] -> [0, 1], float32."""
  return (jnp.asarray(images, jnp.float32) + 1.0) * 0.5


def quantize_uint8(images: jax.Array) -> jax.Array:
  """Rounds [-1, 1] images to the 8-bit grid a saved PNG would hold; stays in [-1, 1], float32."""
  q = jnp.clip(jnp.round(to_unit_range(images) * 255.0), 0.0, 255.0)
  return q / 127.5 - 1.0


def _masked_mean(values: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
  """Mean of (B, H, W, C) values over H, W, C, weighted by a (B, H, W, 1) mask if given -> (B,)."""
  if mask is None:
    return jnp.mean(values, axis=(1, 2, 3))
  mask = jnp.asarray(mask, jnp.float32)
  _check_mask(mask, values.shape)
  num = jnp.sum(values * mask, axis=(1, 2, 3))
  den = jnp.sum(mask, axis=(1, 2, 3)) * values.shape[-1]
  return num / den


def _check_mask(mask, shape):
  if mask.shape != tuple(shape[:3]) + (1,):
    raise ValueError(f"mask must be (B, H, W, 1) = {tuple(shape[:3]) + (1,)}, got {mask.shape}.")


def _check_pair(a, b):
  if a.shape != b.shape or a.ndim != 4:
    raise ValueError(f"expected two (B, H, W, C) image batches of equal shape, got {a.shape} and {b.shape}.")


def l1(images_a: jax.Array, images_b: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """Mean absolute difference on the [0, 1] scale (= half the [-1, 1] difference), per image.

  Args:
    images_a, images_b: (B, H, W, C) in [-1, 1].
    mask: optional (B, H, W, 1) weights; the mean is then over the masked pixels.
  Returns:
    (B,) float32.
  """
  _check_pair(images_a, images_b)
  diff = jnp.abs(to_unit_range(images_a) - to_unit_range(images_b))
  return _masked_mean(diff, mask)


def psnr(images_a: jax.Array, images_b: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """Peak signal-to-noise ratio in dB on [0, 1] images (data range 1), per image.

  `10 log10(1 / MSE)`, MSE over all pixels and channels (over the mask's pixels if given), as
  `skimage.metrics.peak_signal_noise_ratio(data_range=1)`; +inf for identical images.
  Args:
    images_a, images_b: (B, H, W, C) in [-1, 1].
    mask: optional (B, H, W, 1).
  Returns:
    (B,) float32 dB.
  """
  _check_pair(images_a, images_b)
  mse = _masked_mean((to_unit_range(images_a) - to_unit_range(images_b)) ** 2, mask)
  return 10.0 * jnp.log10(1.0 / mse)


def _gaussian_taps(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
  """scipy.ndimage.gaussian_filter's normalised 1-d kernel (radius int(truncate*sigma + 0.5))."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * (x / sigma) ** 2)
  return taps / taps.sum()


def _gaussian_filter(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable filter of (B, H, W, C) over H and W with symmetric ('reflect' in scipy) borders."""
  r = (len(taps) - 1) // 2
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (r, r), (0, 0), (0, 0)), mode="symmetric")
  x = sum(float(t) * xp[:, i:i + h] for i, t in enumerate(taps))
  xp = jnp.pad(x, ((0, 0), (0, 0), (r, r), (0, 0)), mode="symmetric")
  return sum(float(t) * xp[:, :, i:i + w] for i, t in enumerate(taps))


def ssim_map(images_a: jax.Array, images_b: jax.Array) -> jax.Array:
  """Per-pixel SSIM averaged over channels, on [0, 1] images with data range 1.

  Gaussian window (sigma 1.5, 11 taps), K1 = 0.01, K2 = 0.03, population (not sample) covariances,
  'reflect' borders: the map of `skimage.metrics.structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`.
  Args:
    images_a, images_b: (B, H, W, C) in [-1, 1]; H, W >= 11.
  Returns:
    (B, H, W) float32 (the full map, borders included).
  """
  _check_pair(images_a, images_b)
  x, y = to_unit_range(images_a), to_unit_range(images_b)
  taps = _gaussian_taps()
  filt = lambda v: _gaussian_filter(v, taps)
  # Second moments around a common per-image, per-channel offset (moments are shift-invariant):
  # less float32 cancellation in E[x^2] - E[x]^2.
  offset = 0.5 * jnp.mean(x + y, axis=(1, 2), keepdims=True)
  dx, dy = x - offset, y - offset
  mx, my = filt(dx), filt(dy)
  vx = filt(dx * dx) - mx * mx
  vy = filt(dy * dy) - my * my
  vxy = filt(dx * dy) - mx * my
  ux, uy = mx + offset, my + offset
  c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return jnp.mean(s, axis=-1)


def ssim(images_a: jax.Array, images_b: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """Structural similarity per image (see `ssim_map`), mean over the map without its 5-pixel border.

  Without a mask this equals skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1.0, channel_axis=-1)` of the [0, 1] images (which also
  drops the (win_size - 1) / 2 border). With a (B, H, W, 1) mask, the mask-weighted mean over the same
  interior ("SSIM over the person region"); an all-ones mask gives the unmasked value.
  Returns:
    (B,) float32.
  """
  s = ssim_map(images_a, images_b)[..., None]
  pad = (len(_gaussian_taps()) - 1) // 2
  inner = s[:, pad:-pad, pad:-pad]
  if mask is not None:
    mask = jnp.asarray(mask, jnp.float32)
    _check_mask(mask, s.shape)
    mask = mask[:, pad:-pad, pad:-pad]
  return _masked_mean(inner, mask)


# ---------------------------------------------------------------------------------------------
# FID.

def feature_statistics(features: Any) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and covariance (unbiased, N - 1, as pytorch-fid's np.cov) of features, float64.

  Args:
    features: (N, D) array, N >= 2.
  Returns:
    mu (D,), sigma (D, D) float64.
  """
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"feature_statistics: need (N >= 2, D) features, got shape {f.shape}.")
  return f.mean(axis=0), np.cov(f, rowvar=False)


class FeatureStatistics:
  """Streaming float64 mean/covariance of features, for data sets that do not fit in memory.

  `update(features, valid)` per eval batch, `finalize()` -> (mu, sigma) equal (to float64 rounding)
  to `feature_statistics` of all valid rows. Sums are taken around the first batch's mean for
  numerical stability.
  """

  def __init__(self):
    self.count = 0
    self._shift = None
    self._sum = None
    self._outer = None

  def update(self, features: Any, valid: Optional[Any] = None) -> None:
    """Adds (B, D) features; rows with `valid` False (B,) are ignored."""
    f = np.asarray(features, np.float64)
    if valid is not None:
      f = f[np.asarray(valid, bool)]
    if f.shape[0] == 0:
      return
    if self._shift is None:
      self._shift = f.mean(axis=0)
      self._sum = np.zeros_like(self._shift)
      self._outer = np.zeros((f.shape[1], f.shape[1]))
    d = f - self._shift
    self.count += f.shape[0]
    self._sum += d.sum(axis=0)
    self._outer += d.T @ d

  def finalize(self) -> Tuple[np.ndarray, np.ndarray]:
    """(mu (D,), sigma (D, D)) float64; needs >= 2 rows."""
    if self.count < 2:
      raise ValueError(f"FeatureStatistics: need >= 2 feature rows, got {self.count}.")
    mean_d = self._sum / self.count
    sigma = (self._outer - self.count * np.outer(mean_d, mean_d)) / (self.count - 1)
    return self._shift + mean_d, sigma


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (negative eigenvalues from rounding -> 0)."""
  w, v = np.linalg.eigh(matrix)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64, scipy-free.

  `||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))`, with tr sqrt(S1 S2) computed as the sum of
  square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1) (those below D * eps * the largest, i.e.
  rounding noise of a rank-deficient product, count as 0).
  Args:
    mu1, mu2: (D,) means.
    sigma1, sigma2: (D, D) covariances.
  Returns:
    Python float (>= 0 up to rounding).
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
    raise ValueError(f"frechet_distance: shapes mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}.")
  s1 = (s1 + s1.T) * 0.5
  s2 = (s2 + s2.T) * 0.5
  root1 = _sqrt_psd(s1)
  middle = root1 @ s2 @ root1
  eig = np.linalg.eigvalsh((middle + middle.T) * 0.5)
  # Eigenvalues below the rounding level of the largest one are zeros of a rank-deficient product
  # (fewer samples than dimensions); their square roots would add ~sqrt(eps) noise each.
  eig = np.where(eig > eig.max(initial=0.0) * len(eig) * np.finfo(np.float64).eps, eig, 0.0)
  tr_covmean = np.sum(np.sqrt(eig))
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(features_a: Any, features_b: Any) -> float:
  """FID between two (N, D) feature sets."""
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


# ---------------------------------------------------------------------------------------------
# Networks with converted weights.

def _config_value(config, key: str):
  node = config
  for part in key.split("."):
    node = node.get(part) if hasattr(node, "get") else getattr(node, part, None)
    if node is None:
      return None
  return node


def _weights_problem(path: Optional[str], key: str, command: str) -> Optional[str]:
  if not path:
    return f"{key} is not set; convert the weights with `{command}` and pass --config.{key}=<file>."
  if not os.path.exists(path):
    return f"{key}={path} does not exist; create it with `{command}`."
  return None


class InceptionFeatures:
  """FID Inception-v3 pool3 features with converted weights.

  `features = InceptionFeatures.load(path, variant)(images)`: images (B, H, W, 3) in [-1, 1], any size
  (resized to 299 bilinearly inside) -> (B, 2048) float32. `variant` "gfla" (torchvision's ImageNet
  network, GFLA's input transform; weights `eval.gfla_inception_weights`) or "pytorch_fid" (the TF FID
  network; `eval.inception_weights`). `module`/`params` are exposed for a caller that wants to
  jit/shard `module.apply({"params": params}, images)` itself.
  """
  CONFIG_KEYS = {"pytorch_fid": "eval.inception_weights", "gfla": "eval.gfla_inception_weights"}
  CONFIG_KEY = CONFIG_KEYS["pytorch_fid"]

  def __init__(self, params: Any, resize_to: Optional[int] = inception_lib.INPUT_SIZE,
               variant: str = "pytorch_fid"):
    self.variant = variant
    self.module = inception_lib.InceptionV3(resize_to=resize_to, variant=variant)
    self.params = jax.tree_util.tree_map(jnp.asarray, params)
    self._apply = jax.jit(lambda p, x: self.module.apply({"params": p}, x))

  @classmethod
  def load(cls, path: Optional[str], variant: str = "pytorch_fid") -> "InceptionFeatures":
    """Loads a `convert_inception` .npz; MissingWeightsError naming the config key if absent."""
    problem = _weights_problem(path, cls.CONFIG_KEYS[variant], INCEPTION_COMMANDS[variant])
    if problem:
      raise MissingWeightsError(f"FID ({variant}) needs the Inception weights: {problem}")
    return cls(inception_lib.load_params(path, variant=variant), variant=variant)

  @classmethod
  def from_config(cls, config, variant: str = "pytorch_fid") -> "InceptionFeatures":
    return cls.load(_config_value(config, cls.CONFIG_KEYS[variant]), variant)

  @staticmethod
  def available(config, variant: str = "pytorch_fid") -> Tuple[bool, str]:
    """(True, "") if the configured file exists, else (False, what is missing and what to run)."""
    key = InceptionFeatures.CONFIG_KEYS[variant]
    problem = _weights_problem(_config_value(config, key), key, INCEPTION_COMMANDS[variant])
    return (problem is None, "" if problem is None else f"FID skipped: {problem}")

  def __call__(self, images: jax.Array) -> jax.Array:
    """(B, H, W, 3) in [-1, 1] -> (B, 2048) float32."""
    return self._apply(self.params, jnp.asarray(images, jnp.float32))


class LPIPSModel:
  """LPIPS v0.1 AlexNet-lin with converted weights (`eval.alexnet_weights`, `eval.lpips_heads`).

  `LPIPSModel.load(alexnet_path, heads_path)(a, b, mask=None)` -> (B,) distances, images in
  [-1, 1]. `heads_path=None` reads the heads from the AlexNet file (`convert_lpips` writes both into
  one file when given both inputs). With `mask`, both images are multiplied by it first (GFLA's
  Mask-LPIPS).
  """
  ALEXNET_KEY = "eval.alexnet_weights"
  HEADS_KEY = "eval.lpips_heads"

  def __init__(self, params: Any):
    self.module = alexnet_lib.LPIPS()
    self.params = jax.tree_util.tree_map(jnp.asarray, params)
    self._apply = jax.jit(lambda p, x, y: self.module.apply({"params": p}, x, y))

  @staticmethod
  def _problem(alexnet_path: Optional[str], heads_path: Optional[str]) -> Optional[str]:
    problem = _weights_problem(alexnet_path, LPIPSModel.ALEXNET_KEY, LPIPS_COMMAND)
    if problem:
      return problem
    if heads_path:
      return _weights_problem(heads_path, LPIPSModel.HEADS_KEY, LPIPS_COMMAND)
    with np.load(alexnet_path) as data:
      if not any(k.startswith("lin") for k in data.files):
        return (f"{LPIPSModel.HEADS_KEY} is not set and {alexnet_path} holds no LPIPS heads; convert "
                f"them with `{LPIPS_COMMAND}` and pass --config.{LPIPSModel.HEADS_KEY}=<file>.")
    return None

  @classmethod
  def load(cls, alexnet_path: Optional[str], heads_path: Optional[str] = None) -> "LPIPSModel":
    """Loads `convert_lpips` output; MissingWeightsError naming the config key if absent."""
    problem = cls._problem(alexnet_path, heads_path)
    if problem:
      raise MissingWeightsError(f"LPIPS needs AlexNet and its linear heads: {problem}")
    backbone = alexnet_lib.load_alexnet(alexnet_path)
    heads = alexnet_lib.load_heads(heads_path or alexnet_path)
    return cls(alexnet_lib.lpips_params(backbone, heads))

  @classmethod
  def from_config(cls, config) -> "LPIPSModel":
    return cls.load(_config_value(config, cls.ALEXNET_KEY), _config_value(config, cls.HEADS_KEY))

  @staticmethod
  def available(config) -> Tuple[bool, str]:
    """(True, "") if the configured files exist, else (False, what is missing and what to run)."""
    problem = LPIPSModel._problem(_config_value(config, LPIPSModel.ALEXNET_KEY),
                                  _config_value(config, LPIPSModel.HEADS_KEY))
    return (problem is None, "" if problem is None else f"LPIPS skipped: {problem}")

  def __call__(self, images_a: jax.Array, images_b: jax.Array,
               mask: Optional[jax.Array] = None) -> jax.Array:
    """(B,) LPIPS distances of (B, H, W, 3) images in [-1, 1] (H, W >= 63); masked if `mask` given."""
    a, b = jnp.asarray(images_a, jnp.float32), jnp.asarray(images_b, jnp.float32)
    _check_pair(a, b)
    if mask is not None:
      mask = jnp.asarray(mask, jnp.float32)
      _check_mask(mask, a.shape)
      a, b = a * mask, b * mask
    return self._apply(self.params, a, b)


def mask_lpips(model: LPIPSModel, images_a: jax.Array, images_b: jax.Array, target_keypoints: Any,
               point_radius: float = masks_lib.POINT_RADIUS) -> jax.Array:
  """Mask-LPIPS (GFLA, Market-1501): LPIPS of both images multiplied by the target pose's limb mask.

  Args:
    model: a loaded `LPIPSModel`.
    images_a, images_b: (B, H, W, 3) in [-1, 1] (generated, ground truth).
    target_keypoints: (B, J, 2) (y, x) pixels of the target pose, -1 missing.
    point_radius: limb half-width in pixels (GFLA: 4 at 128x64).
  Returns:
    (B,) float32.
  """
  mask = masks_lib.limb_mask(target_keypoints, images_a.shape[1:3], point_radius=point_radius)
  return model(images_a, images_b, mask=mask)


__all__ = (
    "l1", "psnr", "ssim", "ssim_map", "to_unit_range", "quantize_uint8", "feature_statistics",
    "FeatureStatistics", "frechet_distance", "fid_from_features", "InceptionFeatures", "LPIPSModel",
    "MissingWeightsError", "mask_lpips")
