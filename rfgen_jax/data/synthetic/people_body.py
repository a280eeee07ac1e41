"""The synthetic people's bodies: per-identity parameters, per-image pose and placement, 18 keypoints.

Part of the synthetic people set (`rfgen_jax/data/synthetic/people.py` writes the data set,
`people_render.py` paints the images). An articulated 3D stick body (per-identity height, shoulder and
hip width, torso, limb and head sizes, build), posed (arm swing/abduction, elbow bend, walking or
standing legs, occasionally a raised arm), turned about the vertical axis by an orientation in [0, 360)
degrees (0 = facing the camera, 90 = facing image right) and projected orthographically. Keypoints are
hidden as OpenPose would not see them (nose and eyes from behind, the far eye and ear in profile,
sometimes a wrist, an ankle, the far shoulder or hip) and set to -1 outside the frame.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


FORMAT_VERSION = 1
NUM_CAMERAS = 6
BACKGROUNDS_PER_CAMERA = 3
INFO_FILE = "info.json"
NAME_PATTERN = re.compile(r"^\d{4}_c\d+s1_\d{6}_00\.png$")

FRONT_PATTERNS = ("solid", "hstripes", "vstripes", "checks", "dots", "logo", "band", "diagonal")
BACK_PATTERNS = ("solid", "hstripes", "vstripes", "checks", "dots", "logo", "band", "diagonal", "number")
HAIR_STYLES = ("short", "long", "cap", "short", "long")

_SKIN_TONES = np.array([(255, 224, 196), (241, 194, 160), (224, 172, 128), (198, 134, 90),
                        (161, 102, 64), (120, 74, 45), (92, 58, 38), (234, 190, 150)], np.float64)
_HAIR_COLOURS = np.array([(25, 20, 18), (55, 38, 25), (95, 65, 40), (190, 150, 90), (140, 60, 30),
                          (150, 150, 150), (40, 30, 28)], np.float64)

# Nominal body layout in body units (standing height 1 after normalisation): y down, x = person's left,
# z = person's forward.
_NOSE, _NECK, _RSH, _REL, _RWR, _LSH, _LEL, _LWR, _RHIP, _RKNE, _RANK, _LHIP, _LKNE, _LANK = range(14)
_REYE, _LEYE, _REAR, _LEAR = 14, 15, 16, 17


# -------------------------------------------------------------------------------------------- parameters
@dataclasses.dataclass(frozen=True)
class Garment:
  """One side of the top: base colour, accent colour (RGB 0-255, float), pattern and its parameters."""
  base: Tuple[float, float, float]
  accent: Tuple[float, float, float]
  pattern: str
  n_u: int          # pattern repeats across the face
  n_v: int          # pattern repeats down the face
  logo: int         # 0 disc, 1 square, 2 triangle, 3 diamond


@dataclasses.dataclass(frozen=True)
class Identity:
  """Everything that stays fixed for one person. Lengths in body units (standing height = 1)."""
  height: float               # fraction of the nominal 0.8 * image height
  head_r: float
  neck_len: float
  shoulder_w: float           # joint to joint
  hip_w: float                # joint to joint
  torso_len: float            # shoulder to hip joints
  torso_d: float              # front-back depth
  upper_arm: float
  forearm: float
  thigh: float
  shin: float
  arm_r: float
  leg_r: float
  skin: Tuple[float, float, float]
  hair: Tuple[float, float, float]
  hair_style: str
  hat: Tuple[float, float, float]
  front: Garment
  back: Garment
  sleeve_r: Tuple[float, float, float]
  sleeve_l: Tuple[float, float, float]
  long_sleeves: bool
  trousers: Tuple[float, float, float]
  shorts: bool
  shoes: Tuple[float, float, float]
  backpack: Optional[Tuple[float, float, float]]   # colour, or None


@dataclasses.dataclass(frozen=True)
class View:
  """One photograph: pose, orientation, camera and in-frame placement."""
  orientation: float          # degrees; 0 faces the camera, 90 faces image right
  arm_swing: Tuple[float, float]       # (right, left) degrees, + = forward
  arm_abduct: Tuple[float, float]      # degrees, + = outward
  elbow: Tuple[float, float]           # degrees of flexion
  leg_swing: Tuple[float, float]
  leg_abduct: Tuple[float, float]
  knee: Tuple[float, float]
  camera: int                 # 1..NUM_CAMERAS
  background: int             # 0..BACKGROUNDS_PER_CAMERA - 1
  bg_offset: float            # [0, 1): horizontal offset into the wider background
  scale: float                # person scale factor (1 +- 0.1)
  shift: Tuple[float, float]  # (dy, dx) pixels at 128-high images (scaled with the image height)
  rotation: float             # degrees, in-plane
  brightness: float
  drop: Tuple[int, ...]       # joints that the "detector" misses in this image
  colour: Tuple[float, float, float] = (1.0, 1.0, 1.0)   # per-camera RGB gains (misalign.py; 1 = none)


def _colour(rng: np.random.Generator, muted: bool = False) -> np.ndarray:
  """A random garment colour, RGB float in [0, 255]."""
  r = rng.random()
  if r < 0.12:
    v = rng.uniform(15, 70)       # black-ish
    return np.array([v, v, v]) + rng.uniform(-5, 5, 3)
  if r < 0.22:
    v = rng.uniform(180, 245)     # white/light grey
    return np.array([v, v, v]) + rng.uniform(-8, 8, 3)
  h = rng.random()
  s = rng.uniform(0.15, 0.55) if muted else rng.uniform(0.35, 0.95)
  v = rng.uniform(0.3, 0.95)
  i = int(h * 6) % 6
  f = h * 6 - int(h * 6)
  p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
  rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
  return np.clip(np.array(rgb) * 255, 0, 255)


def _distinct_colour(rng: np.random.Generator, others: Sequence[np.ndarray], min_dist: float = 90.0,
                     muted: bool = False) -> np.ndarray:
  for _ in range(50):
    c = _colour(rng, muted)
    if all(np.linalg.norm(c - o) >= min_dist for o in others):
      return c
  return 255.0 - others[0]  # a complementary colour is always far enough


def _t(c) -> Tuple[float, float, float]:
  return tuple(float(v) for v in np.clip(c, 0, 255))


def _garment(rng: np.random.Generator, base: np.ndarray, patterns: Sequence[str],
             avoid_pattern: Optional[str] = None) -> Garment:
  choices = [p for p in patterns if p != avoid_pattern]
  pattern = choices[rng.integers(len(choices))]
  accent = _distinct_colour(rng, [base], 110.0)
  return Garment(_t(base), _t(accent), pattern, int(rng.integers(2, 5)), int(rng.integers(3, 7)),
                 int(rng.integers(4)))


def sample_identity(rng: np.random.Generator) -> Identity:
  """Draws one person: proportions, colours, garments (front and back always differ)."""
  u = rng.uniform
  head_r = u(0.058, 0.068)
  shoulder_w = u(0.18, 0.25)
  build = u(0.85, 1.2)
  front_base = _colour(rng)
  back_base = _distinct_colour(rng, [front_base], 90.0)
  front = _garment(rng, front_base, FRONT_PATTERNS)
  back = _garment(rng, back_base, BACK_PATTERNS, avoid_pattern=front.pattern)
  sleeve_r = front_base if rng.random() < 0.6 else _colour(rng)
  sleeve_l = sleeve_r if rng.random() < 0.7 else _distinct_colour(rng, [sleeve_r], 90.0)
  trousers = _colour(rng, muted=True)
  style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
  return Identity(
      height=u(0.9, 1.05), head_r=head_r, neck_len=u(0.03, 0.045), shoulder_w=shoulder_w,
      hip_w=u(0.10, 0.14), torso_len=u(0.27, 0.32), torso_d=u(0.10, 0.14),
      upper_arm=u(0.16, 0.19), forearm=u(0.14, 0.17), thigh=u(0.22, 0.26), shin=u(0.21, 0.25),
      arm_r=u(0.026, 0.034) * build, leg_r=u(0.036, 0.046) * build,
      skin=_t(_SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.uniform(-10, 10, 3)),
      hair=_t(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.uniform(-8, 8, 3)),
      hair_style=style, hat=_t(_colour(rng)), front=front, back=back,
      sleeve_r=_t(sleeve_r), sleeve_l=_t(sleeve_l), long_sleeves=bool(rng.random() < 0.55),
      trousers=_t(trousers), shorts=bool(rng.random() < 0.2),
      shoes=_t(_colour(rng, muted=True) * 0.5),
      backpack=_t(_distinct_colour(rng, [back_base], 80.0, muted=True)) if rng.random() < 0.3 else None)


def sample_view(rng: np.random.Generator, orientation: float, camera: int) -> View:
  """Draws the pose and placement of one image at the given orientation (degrees) and camera (1..6)."""
  u = rng.uniform
  walking = rng.random() < 0.5
  if walking:
    a = u(10, 32) * (1 if rng.random() < 0.5 else -1)
    leg_swing = (a, -a)
    knee = (u(0, 15), u(15, 45)) if a > 0 else (u(15, 45), u(0, 15))
    arm_swing = (-0.8 * a + u(-8, 8), 0.8 * a + u(-8, 8))
  else:
    leg_swing = (u(-8, 8), u(-8, 8))
    knee = (u(0, 10), u(0, 10))
    arm_swing = (u(-25, 25), u(-25, 25))
  arm_abduct = [u(4, 22), u(4, 22)]
  elbow = [u(0, 50), u(0, 50)]
  arm_swing = list(arm_swing)
  r = rng.random()
  if r < 0.12:                     # one arm raised forward/up
    s = int(rng.integers(2))
    arm_swing[s], elbow[s] = u(70, 160), u(0, 40)
  elif r < 0.22:                   # one arm out to the side
    s = int(rng.integers(2))
    arm_abduct[s], elbow[s] = u(50, 110), u(0, 60)
  elif r < 0.3:                    # hands on hips / folded forward
    arm_abduct, elbow = [u(30, 45), u(30, 45)], [u(80, 110), u(80, 110)]
    arm_swing = [u(-30, -15), u(-30, -15)]
  theta = math.radians(orientation)
  profile = abs(math.sin(theta)) > 0.85
  drop = []
  for joint, p in ((_RWR, 0.04), (_LWR, 0.04), (_RANK, 0.03), (_LANK, 0.03)):
    if rng.random() < p:
      drop.append(joint)
  # The far shoulder/hip in profile (OpenPose often misses it), rarely any other.
  far_right = math.sin(theta) < 0     # facing image left: the person's right side is away
  p_far = 0.08 if profile else 0.01
  if rng.random() < p_far:
    drop.append(_RSH if far_right else _LSH)
  if rng.random() < p_far:
    drop.append(_RHIP if far_right else _LHIP)
  return View(
      orientation=float(orientation % 360.0), arm_swing=tuple(arm_swing), arm_abduct=tuple(arm_abduct),
      elbow=tuple(elbow), leg_swing=leg_swing, leg_abduct=(u(1, 8), u(1, 8)), knee=knee,
      camera=int(camera), background=int(rng.integers(BACKGROUNDS_PER_CAMERA)), bg_offset=float(u(0, 1)),
      scale=float(u(0.9, 1.1)), shift=(float(u(-3, 3)), float(u(-3, 3))), rotation=float(u(-5, 5)),
      brightness=float(u(0.9, 1.08)), drop=tuple(sorted(drop)))


# -------------------------------------------------------------------------------------------- skeleton
def _limb_dir(swing_deg: float, abduct_deg: float, side: float) -> np.ndarray:
  """Unit direction of a limb hanging down, swung forward by `swing` and out to `side` by `abduct`."""
  s, a = math.radians(swing_deg), math.radians(abduct_deg)
  return np.array([side * math.sin(a), math.cos(a) * math.cos(s), math.cos(a) * math.sin(s)])


def body_points(identity: Identity, view: View) -> Dict[str, np.ndarray]:
  """3D joints and helper points in body units (x = person's left, y down, z = person's forward).

  Returns a dict with `joints` (18, 3), `toes` (2, 3) (right, left), `head` (3,) centre, `hands` (2, 3)
  hand tips, and `ground` (the sole height the body was shifted to, = 1 for standing).
  """
  idn = identity
  j = np.zeros((18, 3))
  head = np.array([0.0, idn.head_r * 1.1, 0.0])
  neck_y = 2.2 * idn.head_r + idn.neck_len
  sh_y = neck_y + 0.012
  hip_y = sh_y + idn.torso_len
  j[_NECK] = (0, neck_y, 0)
  hands, toes = np.zeros((2, 3)), np.zeros((2, 3))
  for s, (sh, el, wr) in enumerate(((_RSH, _REL, _RWR), (_LSH, _LEL, _LWR))):
    side = -1.0 if s == 0 else 1.0
    j[sh] = (side * idn.shoulder_w / 2, sh_y, 0)
    d1 = _limb_dir(view.arm_swing[s], view.arm_abduct[s], side)
    d2 = _limb_dir(view.arm_swing[s] + view.elbow[s], view.arm_abduct[s] * 0.7, side)
    j[el] = j[sh] + idn.upper_arm * d1
    j[wr] = j[el] + idn.forearm * d2
    hands[s] = j[wr] + 0.06 * d2
  for s, (hp, kn, an) in enumerate(((_RHIP, _RKNE, _RANK), (_LHIP, _LKNE, _LANK))):
    side = -1.0 if s == 0 else 1.0
    j[hp] = (side * idn.hip_w / 2, hip_y, 0)
    d1 = _limb_dir(view.leg_swing[s], view.leg_abduct[s], side)
    d2 = _limb_dir(view.leg_swing[s] - view.knee[s], view.leg_abduct[s] * 0.5, side)
    j[kn] = j[hp] + idn.thigh * d1
    j[an] = j[kn] + idn.shin * d2
    toes[s] = j[an] + (0, 0.025, 0.075)
  r = idn.head_r
  j[_NOSE] = head + (0, 0.15 * r, 0.9 * r)
  j[_REYE] = head + (-0.38 * r, -0.12 * r, 0.85 * r)
  j[_LEYE] = head + (0.38 * r, -0.12 * r, 0.85 * r)
  j[_REAR] = head + (-0.9 * r, 0.05 * r, -0.1 * r)
  j[_LEAR] = head + (0.9 * r, 0.05 * r, -0.1 * r)
  # Normalise to standing height 1 and put the lower sole on the ground (y = 1).
  standing = hip_y + idn.thigh + idn.shin + 0.03
  sole = max(j[_RANK, 1], j[_LANK, 1]) + 0.03
  shift = np.array([0.0, standing - sole, 0.0])
  f = 1.0 / standing
  return {"joints": (j + shift) * f, "toes": (toes + shift) * f, "head": (head + shift) * f,
          "hands": (hands + shift) * f, "scale": f, "shift": shift}


def _rotate(points: np.ndarray, theta: float) -> np.ndarray:
  """Turns body points (..., 3) about the vertical axis: returns camera (x', y, z'), z' toward camera."""
  c, s = math.cos(theta), math.sin(theta)
  x, y, z = points[..., 0], points[..., 1], points[..., 2]
  return np.stack([x * c + z * s, y, -x * s + z * c], axis=-1)


@dataclasses.dataclass(frozen=True)
class _Frame:
  """Maps camera-plane body units (x', y) to image pixels (pixel centres at integer coordinates)."""
  height: int
  width: int
  scale: float      # pixels per body unit
  cy: float
  cx: float
  cos: float
  sin: float

  def __call__(self, xy: np.ndarray) -> np.ndarray:
    """(..., 2) (x', y) body units -> (..., 2) (x, y) image pixels."""
    x = xy[..., 0]
    y = xy[..., 1] - 0.5
    px = self.cx + self.scale * (x * self.cos - y * self.sin)
    py = self.cy + self.scale * (x * self.sin + y * self.cos)
    return np.stack([px, py], axis=-1)


def _frame(identity: Identity, view: View, height: int, width: int) -> _Frame:
  rho = math.radians(view.rotation)
  unit = height / 128.0
  return _Frame(height, width, 0.8 * height * identity.height * view.scale,
                (height - 1) / 2 + view.shift[0] * unit, (width - 1) / 2 + view.shift[1] * unit,
                math.cos(rho), math.sin(rho))


def view_keypoints(identity: Identity, view: View, height: int, width: int) -> np.ndarray:
  """(18, 2) int32 `(y, x)` keypoints of the image (rounded pixels), -1 where OpenPose would miss them."""
  pts = body_points(identity, view)
  theta = math.radians(view.orientation)
  cam = _rotate(pts["joints"], theta)
  xy = _frame(identity, view, height, width)(cam[:, :2])
  out = np.floor(xy[:, ::-1] + 0.5).astype(np.int32)   # round half up: integer shifts stay exact
  c, s = math.cos(theta), math.sin(theta)

  def facing(nx, nz):  # z' of a body-frame surface normal (nx, 0, nz)
    return -nx * s + nz * c

  visible = np.ones(18, bool)
  visible[_NOSE] = facing(0.0, 1.0) > -0.3
  e = math.sin(math.radians(30))
  visible[_REYE] = facing(-e, 0.87) > -0.1
  visible[_LEYE] = facing(e, 0.87) > -0.1
  visible[_REAR] = facing(-1.0, -0.2) > -0.35
  visible[_LEAR] = facing(1.0, -0.2) > -0.35
  visible[list(view.drop)] = False
  inside = (out[:, 0] >= 0) & (out[:, 0] < height) & (out[:, 1] >= 0) & (out[:, 1] < width)
  out[~(visible & inside)] = -1
  return out
