"""Per-camera misalignment of the synthetic people: camera distance, height in frame, tilt and lighting.

The paper's claim (Lu et al., AAAI 2022, Table 4) is that residual flow, occlusion and attention help when
the sources are misaligned. The synthetic people (`people.py`) jitter every image a little (scale +-10%,
shift +-3 px at 128 high, roll +-5 degrees, brightness 0.9-1.08) but all cameras frame a person alike.
These switches give each of the `NUM_CAMERAS` cameras its own systematic offset, on top of that jitter:

| setting | per camera | unit |
| --- | --- | --- |
| `scale` | person size x (1 + scale * u): camera distance | fraction (0.2 = sizes 0.8 .. 1.2) |
| `shift_y` | vertical offset shift_y * u (+ = down) | pixels at a 128-high image (scaled with the height) |
| `shift_x` | horizontal offset shift_x * u (+ = right) | pixels at a 128-high image |
| `roll` | in-plane rotation roll * u | degrees |
| `colour` | RGB gains 1 + colour * u (one u per channel) | fraction |
| `brightness` | gain 1 + brightness * u | fraction |

`u` is stratified: for every setting (and every colour channel) the six cameras take the values
`linspace(-1, 1, 6)` in an order shuffled by the data set seed, so the documented range is always spanned
and two seeds give different camera layouts. The keypoints move with the person exactly (scale, shift and
roll enter the same `View` placement the keypoints are projected with). All zeros (the default) changes
nothing: the generator's output is byte-identical to a generator without this module.

The defaults of the ablation study (`configs/ablation.py`): `MODERATE`.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from rfgen_jax.data.synthetic.people_body import NUM_CAMERAS
from rfgen_jax.data.synthetic.people_body import View

_SEED_OFFSET = 30_000_000   # SeedSequence([seed, _SEED_OFFSET + i]): apart from the ids, backgrounds, tints


@dataclasses.dataclass(frozen=True)
class Misalign:
  """Amplitudes of the per-camera offsets (see the module docstring); all 0 = off."""
  scale: float = 0.0
  shift_y: float = 0.0
  shift_x: float = 0.0
  roll: float = 0.0
  colour: float = 0.0
  brightness: float = 0.0

  def __post_init__(self):
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
        raise ValueError(f"misalign.{f.name} must be a finite number >= 0 (an amplitude), got {v!r}.")
    if self.scale >= 1 or self.colour >= 1 or self.brightness >= 1:
      raise ValueError(f"misalign scale, colour and brightness must be < 1 (gains stay positive), got {self}.")

  @property
  def active(self) -> bool:
    return any(getattr(self, f.name) != 0 for f in dataclasses.fields(self))

  def as_dict(self) -> Dict[str, float]:
    return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


OFF = Misalign()
# The ablation study's sources: camera distance +-20%, height in frame +-10 px and +-6 px sideways at 128
# high, roll +-8 degrees, colour casts +-12% per channel and brightness +-25%.
MODERATE = Misalign(scale=0.2, shift_y=10.0, shift_x=6.0, roll=8.0, colour=0.12, brightness=0.25)


def from_mapping(values: Optional[Mapping[str, float]]) -> Misalign:
  """A `Misalign` from a dict / ConfigDict (e.g. `config.data.synthetic_misalign`); None = OFF.

  Raises:
    ValueError: naming an unknown key and the accepted ones, or a bad amplitude.
  """
  if values is None:
    return OFF
  if isinstance(values, Misalign):
    return values
  values = dict(values)
  names = [f.name for f in dataclasses.fields(Misalign)]
  unknown = sorted(set(values) - set(names))
  if unknown:
    raise ValueError(f"Unknown misalign setting(s) {unknown}; accepted: {names}.")
  return Misalign(**{k: float(v) for k, v in values.items()})


def parse(text: str) -> Misalign:
  """`scale=0.2,shift_y=10,...` (the CLI's `--misalign`); "" / "off" = OFF, "moderate" = MODERATE."""
  text = (text or "").strip()
  if text in ("", "off"):
    return OFF
  if text == "moderate":
    return MODERATE
  values = {}
  for item in text.split(","):
    key, sep, value = item.strip().partition("=")
    if not sep:
      raise ValueError(f"--misalign item {item!r} is not key=value (in {text!r}).")
    try:
      values[key] = float(value)
    except ValueError:
      raise ValueError(f"--misalign {key}={value!r} is not a number.") from None
  return from_mapping(values)


@dataclasses.dataclass(frozen=True)
class CameraOffset:
  """One camera's offsets: multiply the person's scale, add to shift (dy, dx) and roll, gains on RGB."""
  scale: float
  shift: Tuple[float, float]     # (dy, dx) pixels at a 128-high image
  roll: float                    # degrees
  gain: Tuple[float, float, float]   # RGB, brightness included


def camera_offsets(seed: int, settings: Misalign) -> Dict[int, CameraOffset]:
  """Camera (1..NUM_CAMERAS) -> its offsets for the data set `seed` (stratified, see the module docstring)."""
  grid = np.linspace(-1.0, 1.0, NUM_CAMERAS)

  def u(i: int) -> np.ndarray:   # (NUM_CAMERAS,) the grid in a seeded order, one order per setting
    return np.random.default_rng(np.random.SeedSequence([seed, _SEED_OFFSET + i])).permutation(grid)

  scale, dy, dx, roll, bright = (u(i) for i in range(5))
  colour = np.stack([u(5 + c) for c in range(3)], axis=-1)     # (NUM_CAMERAS, 3)
  s = settings
  out = {}
  for cam in range(NUM_CAMERAS):
    gain = (1.0 + s.colour * colour[cam]) * (1.0 + s.brightness * bright[cam])
    out[cam + 1] = CameraOffset(scale=float(1.0 + s.scale * scale[cam]),
                                shift=(float(s.shift_y * dy[cam]), float(s.shift_x * dx[cam])),
                                roll=float(s.roll * roll[cam]),
                                gain=tuple(float(g) for g in gain))
  return out


def apply(view: View, offset: CameraOffset) -> View:
  """The view as seen by a camera with `offset` (placement composed, the camera's gain on the colour)."""
  return dataclasses.replace(
      view, scale=view.scale * offset.scale,
      shift=(view.shift[0] + offset.shift[0], view.shift[1] + offset.shift[1]),
      rotation=view.rotation + offset.roll,
      colour=tuple(c * g for c, g in zip(view.colour, offset.gain)))


# The contact sheet and its command live in misalign_sheet.py (it renders with people.py, which imports this).
