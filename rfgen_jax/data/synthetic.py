"""Synthetic multi-view people in the Market-1501 layout of PATN/GFLA: the project's embedded data set.

    python -m rfgen_jax.data.synthetic --out DIR [--height 128 --width 64 --train-ids 200 --test-ids 20 \
        --views-per-id 8 --seed 0]

writes

    DIR/train/0001_c3s1_000117_00.png ...      ids 1..N
    DIR/test/0201_c1s1_000142_00.png ...       ids N+1..N+M (disjoint from train)
    DIR/market-annotation-{train,test}.csv     name:keypoints_y:keypoints_x (JSON lists of 18 ints, -1 = none)
    DIR/market-pairs-{train,test}.csv          from,to (a few pairs of the same identity)
    DIR/README.txt, DIR/info.json              generation parameters; info.json is written last

Why it is a multi-source task: every identity wears a top whose FRONT and BACK differ in colour and pattern
(stripes, checks, dots, a logo, a chest band; a backpack, seen only from behind, whose straps show in
front), may have sleeves of two colours, long hair seen only from behind, and is rendered at
orientations spread around the full circle. A view from the front says nothing about the back; the
target view (any orientation) needs the sources that saw that side.

The people: 18 OpenPose joints of an articulated 3D stick body (per-identity height, shoulder and hip
width, torso, limb and head sizes, build), posed (arm swing/abduction, elbow bend, walking or standing
legs, occasionally a raised arm), turned about the vertical axis by an orientation in [0, 360) degrees
(0 = facing the camera, 90 = facing image right) and projected orthographically. Torso faces (front,
back and the visible side, each with its own texture), limb capsules, head (a shaded sphere sprite with
face/hair by orientation) and backpack are painted far to near. Keypoints hidden as OpenPose would not
see them: nose and eyes from behind, the far eye and ear in profile, sometimes a wrist or ankle, and
sometimes (mostly in profile) the far shoulder or hip, so the ABF filter (drop images missing a shoulder
or a hip) has work; keypoints outside the frame are -1 too.

The cameras: 6 cameras, each with its own colour cast and 3 backgrounds (wall/floor split, gradients,
stripes, tiles, smooth noise); every image is shifted within its background and the person is scaled
(+-10%), shifted (+-3 px at 128 high, scaled with the height) and rotated (+-5 degrees) in the frame, the
keypoints with it exactly (up to rounding to integer pixels).

Rendering: Pillow polygons on a supersampled canvas (about 256 px high), box-reduced for anti-aliasing;
numpy textures for the torso and head. Deterministic: image (id, view) draws from
`SeedSequence([seed, id, view])`, so the same arguments give byte-identical files. Any size works
(128x64 default; 64x32 and 32x32 are tested).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw

from rfgen_jax.data import keypoints as kp_lib

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


# -------------------------------------------------------------------------------------------- textures
def _quad_uv(quad: np.ndarray, x0: int, y0: int, w: int, h: int):
  """Texture coordinates of pixel centres in a box for a convex quad (TL, TR, BR, BL) in (x, y).

  Returns (u, v, inside): (h, w) arrays; u across (TL->TR), v down (top edge -> bottom edge), both in
  [0, 1] inside the quad.
  """
  ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32)
  tl, tr, br, bl = quad.astype(np.float32)
  top, bot = (tl + tr) / 2, (bl + br) / 2
  axis = bot - top
  v = ((xs - top[0]) * axis[0] + (ys - top[1]) * axis[1]) / max(float(axis @ axis), 1e-6)
  lx, ly = tl[0] + v * (bl[0] - tl[0]), tl[1] + v * (bl[1] - tl[1])
  rx, ry = tr[0] + v * (br[0] - tr[0]), tr[1] + v * (br[1] - tr[1])
  dx, dy = rx - lx, ry - ly
  u = ((xs - lx) * dx + (ys - ly) * dy) / np.maximum(dx * dx + dy * dy, 1e-6)
  inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
  return u, v, inside


def _pattern_mask(g: Garment, u: np.ndarray, v: np.ndarray, side: bool = False) -> np.ndarray:
  """Bool mask of the accent colour of garment `g` at texture coordinates (u across, v down in [0, 1])."""
  p = g.pattern
  if p == "hstripes":
    return (np.floor(v * g.n_v * 1.5) % 2) == 1
  if side:
    return np.zeros(u.shape, bool)
  if p == "vstripes":
    return (np.floor(u * (g.n_u + 2)) % 2) == 1
  if p == "checks":
    return ((np.floor(u * g.n_u) + np.floor(v * g.n_v)) % 2) == 1
  if p == "dots":
    fu, fv = (u * g.n_u) % 1 - 0.5, (v * g.n_v) % 1 - 0.5
    return fu * fu + fv * fv < 0.09
  if p == "diagonal":
    return (np.floor((u + v) * g.n_v) % 2) == 1
  if p == "band":
    return (v > 0.28) & (v < 0.5)
  if p in ("logo", "number"):
    cu, cv = u - 0.5, (v - (0.35 if p == "logo" else 0.4)) * 1.6
    if p == "number":   # a big rectangular print with a hole: reads as a shirt number
      outer = (np.abs(cu) < 0.22) & (np.abs(cv) < 0.3)
      return outer & ~((np.abs(cu) < 0.1) & (np.abs(cv) < 0.16))
    if g.logo == 0:
      return cu * cu + cv * cv < 0.06
    if g.logo == 1:
      return (np.abs(cu) < 0.2) & (np.abs(cv) < 0.2)
    if g.logo == 2:
      return (cv < 0.2) & (cv > -0.25) & (np.abs(cu) < (cv + 0.25) * 0.55)
    return np.abs(cu) + np.abs(cv) < 0.26
  return np.zeros(u.shape, bool)


def _face_texture(face: str, identity: Identity, u: np.ndarray, v: np.ndarray, waist: float) -> np.ndarray:
  """(h, w, 3) float RGB of a torso face: `front`, `back` or `side` (u = 0 at the front edge)."""
  idn = identity
  if face == "side":
    front = np.where(_pattern_mask(idn.front, u, v, True)[..., None], idn.front.accent, idn.front.base)
    back = np.where(_pattern_mask(idn.back, u, v, True)[..., None], idn.back.accent, idn.back.base)
    rgb = np.where((u < 0.5)[..., None], front, back)
  else:
    g = idn.front if face == "front" else idn.back
    rgb = np.where(_pattern_mask(g, u, v)[..., None], g.accent, g.base)
    if face == "front" and idn.backpack is not None:
      straps = (v < 0.6) & (((u > 0.17) & (u < 0.27)) | ((u > 0.73) & (u < 0.83)))
      rgb = np.where(straps[..., None], np.asarray(idn.backpack) * 0.8, rgb)
  rgb = np.where((v > waist)[..., None], idn.trousers, rgb)
  rgb = np.where((np.abs(v - waist) < 0.025)[..., None], np.asarray(idn.trousers) * 0.55, rgb)  # belt
  return rgb


def _head_sprite(identity: Identity, theta: float, rho: float, cx: float, cy: float, r: float,
                 canvas_w: int, canvas_h: int):
  """A shaded head (face, hair, cap) as (box, rgb uint8, mask uint8) for `Image.paste`, or None."""
  ry = 1.12 * r
  x0, y0 = int(math.floor(cx - r - 1)), int(math.floor(cy - ry - 1))
  x1, y1 = int(math.ceil(cx + r + 2)), int(math.ceil(cy + ry + 2))
  x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, canvas_w), min(y1, canvas_h)
  if x1 <= x0 or y1 <= y0:
    return None
  ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
  dx, dy = (xs - cx) / r, (ys - cy) / ry
  cr, sr = math.cos(rho), math.sin(rho)
  px, py = dx * cr + dy * sr, -dx * sr + dy * cr        # undo the in-plane rotation
  rr = px * px + py * py
  inside = rr <= 1.0
  pz = np.sqrt(np.maximum(1.0 - rr, 0.0))              # sphere normal (px, py, pz), camera frame
  c, s = math.cos(theta), math.sin(theta)
  bx, bz = px * c - pz * s, px * s + pz * c             # body frame: x left, z forward
  up = -py
  idn = identity
  rgb = np.broadcast_to(np.asarray(idn.skin, np.float32), px.shape + (3,)).copy()
  if idn.hair_style == "long":
    hair = (up > 0.25) | (bz < 0.05)
  elif idn.hair_style == "cap":
    hair = (bz < -0.35) & (up > -0.3)
  else:
    hair = (up > 0.3) | ((bz < 0.1) & (up > -0.5))
  rgb[hair] = idn.hair
  if idn.hair_style == "cap":
    rgb[(up > 0.3) | ((up > 0.1) & (bz > 0.6))] = idn.hat
  # Eyes and mouth where the face looks at us.
  front_face = bz > 0.5
  for ex in (-0.38, 0.38):
    rgb[front_face & ((bx - ex) ** 2 + (up - 0.12) ** 2 < 0.02)] = (35, 25, 25)
  mouth = (bz > 0.6) & (np.abs(bx) < 0.22) & (np.abs(up + 0.45) < 0.07)
  rgb[mouth] = np.asarray(idn.skin) * 0.6 + np.array([60, 0, 0]) * 0.4
  shade = 0.75 + 0.25 * pz
  rgb *= shade[..., None]
  mask = (inside * 255).astype(np.uint8)
  return (x0, y0), np.clip(rgb, 0, 255).astype(np.uint8), mask


# -------------------------------------------------------------------------------------------- renderer
def _capsule(a: np.ndarray, b: np.ndarray, r: float, n_arc: int = 6) -> List[Tuple[float, float]]:
  """Polygon of a capsule (segment a-b of radius r, (x, y) pixels) with rounded ends."""
  d = b - a
  length = math.hypot(d[0], d[1])
  ang = math.atan2(d[1], d[0]) if length > 1e-9 else 0.0
  arc = np.linspace(-math.pi / 2, math.pi / 2, n_arc)
  end_b = b + r * np.stack([np.cos(ang + arc), np.sin(ang + arc)], -1)
  end_a = a + r * np.stack([np.cos(ang + math.pi + arc), np.sin(ang + math.pi + arc)], -1)
  return [tuple(p) for p in np.concatenate([end_b, end_a]).tolist()]


def _int(c) -> Tuple[int, int, int]:
  return tuple(int(round(v)) for v in c)


def _supersample(height: int) -> int:
  return int(min(8, max(2, round(256 / height))))


def make_backgrounds(height: int, width: int, seed: int) -> List[List[Image.Image]]:
  """Per camera, `BACKGROUNDS_PER_CAMERA` supersampled RGB backgrounds, 1.5x the image width."""
  ss = _supersample(height)
  bh, bw = height * ss, int(width * 1.5) * ss
  out = []
  for cam in range(NUM_CAMERAS):
    rng = np.random.default_rng(np.random.SeedSequence([seed, 10_000_000 + cam]))
    kinds = rng.permutation(5)[:BACKGROUNDS_PER_CAMERA]
    wall = _colour(rng, muted=True) * 0.8 + 40
    floor = _colour(rng, muted=True) * 0.7 + 30
    cam_bgs = []
    for kind in kinds:
      y = np.linspace(0, 1, bh, dtype=np.float32)[:, None, None]
      x = np.linspace(0, 1, bw, dtype=np.float32)[None, :, None]
      jitter = rng.uniform(-25, 25, 3)
      a, b = wall + jitter, floor - jitter
      if kind == 0:    # wall/floor split with gradients
        split = rng.uniform(0.55, 0.8)
        img = np.where(y < split, a * (0.85 + 0.3 * y), b * (0.7 + 0.4 * (y - split)))
      elif kind == 1:  # vertical gradient with a sidewalk band
        img = a * (1 - y) + b * y
        img = np.where((y > 0.75) & (y < 0.78), img * 0.7, img)
      elif kind == 2:  # shop windows / columns
        n = rng.integers(2, 5)
        cols = (np.floor(x * n * 2) % 2) == 1
        img = np.where(cols, a, a * 0.75 + b * 0.25) + 0 * y
        img = np.where(y > rng.uniform(0.65, 0.85), b, img)
      elif kind == 3:  # tiles / bricks
        n = rng.integers(6, 12)
        line = ((y * n) % 1 < 0.06) | (((x * n * 0.7 + 0.5 * (np.floor(y * n) % 2)) % 1) < 0.05)
        img = np.where(line, a * 0.7, a) + 0 * x
      else:            # smooth noise (trees, crowds, street)
        small = rng.uniform(0, 1, (6, 5, 3))
        noise = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize(
            (bw, bh), Image.BILINEAR), np.float32) / 255
        noise = 0.75 * noise.mean(-1, keepdims=True) + 0.25 * noise   # mostly luminance
        img = a * (0.6 + 0.5 * noise) * (0.8 + 0.2 * y)
      img = np.broadcast_to(img, (bh, bw, 3)) + rng.normal(0, 4, (bh, bw, 3))
      cam_bgs.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    out.append(cam_bgs)
  return out


def camera_tint(seed: int, camera: int) -> np.ndarray:
  """(3,) per-camera colour cast (RGB gains around 1)."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, 20_000_000 + camera]))
  return rng.uniform(0.9, 1.1, 3)


def _parts(identity: Identity, view: View, frame: _Frame, ss: int):
  """Body parts as (depth, order, kind, payload) in supersampled pixel coordinates."""
  idn = identity
  pts = body_points(identity, view)
  f = pts["scale"]
  theta = math.radians(view.orientation)
  c, s = math.cos(theta), math.sin(theta)

  def to_px(p3):   # body (..., 3) -> supersampled (x, y) pixels and depth
    cam = _rotate(np.asarray(p3, np.float64), theta)
    xy = frame(cam[..., :2])
    return (xy + 0.5) * ss - 0.5, cam[..., 2]

  unit = frame.scale * ss             # supersampled pixels per body unit
  j3 = pts["joints"]
  jxy, jz = to_px(j3)
  parts = []
  order = [0]

  def add(depth, kind, payload):
    order[0] += 1
    parts.append((float(depth), order[0], kind, payload))

  # Torso box faces.
  sh_y, hip_y = j3[_RSH, 1], j3[_RHIP, 1]
  top, bot = sh_y - 0.01, hip_y + 0.045
  ht, hb = idn.shoulder_w * f / 2 + 0.012, idn.hip_w * f / 2 + 0.04
  hd = idn.torso_d * f / 2
  waist = (hip_y - 0.015 - top) / (bot - top)
  faces = []
  if c > 0.02:
    faces.append(("front", [(-ht, top, hd), (ht, top, hd), (hb, bot, hd), (-hb, bot, hd)]))
  if c < -0.02:
    faces.append(("back", [(ht, top, -hd), (-ht, top, -hd), (-hb, bot, -hd), (hb, bot, -hd)]))
  if s > 0.02:     # the person's right side faces the camera
    faces.append(("side", [(-ht, top, hd), (-ht, top, -hd), (-hb, bot, -hd), (-hb, bot, hd)]))
  if s < -0.02:
    faces.append(("side", [(ht, top, hd), (ht, top, -hd), (hb, bot, -hd), (hb, bot, hd)]))
  for name, quad in faces:
    qxy, qz = to_px(quad)
    add(qz.mean(), "face", (name, qxy, waist))
  torso_depth = max(p[0] for p in parts) if parts else 0.0

  # Arms: upper arm (sleeve), forearm, hand.
  hands_xy, hands_z = to_px(pts["hands"])
  for k, (sh, el, wr) in enumerate(((_RSH, _REL, _RWR), (_LSH, _LEL, _LWR))):
    side = -1.0 if k == 0 else 1.0
    sleeve = idn.sleeve_r if k == 0 else idn.sleeve_l
    out = np.array([side * idn.arm_r * f * 0.6, 0.0, 0.0])
    a3, b3, w3 = j3[sh] + out, j3[el] + out, j3[wr] + out
    (axy, bxy, wxy), (az, bz, wz) = to_px(np.stack([a3, b3, w3]))
    ra = idn.arm_r * f * unit
    add((az + bz) / 2, "capsule", (axy, bxy, ra * 1.08, sleeve))
    fore = sleeve if idn.long_sleeves else idn.skin
    add((bz + wz) / 2 + 1e-4, "capsule", (bxy, wxy, ra * 0.9, fore))
    add(hands_z[k] + 2e-4, "capsule", (wxy, hands_xy[k], ra * 0.75, idn.skin))

  # Legs: thigh, shin, shoe (biased behind the torso so the hips tuck under it).
  toes_xy, toes_z = to_px(pts["toes"])
  bias = -0.05
  for k, (hp, kn, an) in enumerate(((_RHIP, _RKNE, _RANK), (_LHIP, _LKNE, _LANK))):
    rl = idn.leg_r * f * unit
    (hxy, kxy, axy), (hz, kz, az) = jxy[[hp, kn, an]], jz[[hp, kn, an]]
    add((hz + kz) / 2 + bias, "capsule", (hxy, kxy, rl * (1.1 if idn.shorts else 1.0), idn.trousers))
    shin = idn.skin if idn.shorts else idn.trousers
    add((kz + az) / 2 + bias + 1e-4, "capsule", (kxy, axy, rl * 0.8, shin))
    if idn.shorts:
      add((hz + kz) / 2 + bias + 2e-4, "capsule",
          (hxy, hxy + 0.75 * (kxy - hxy), rl * 1.1, idn.trousers))
    add((az + toes_z[k]) / 2 + bias + 3e-4, "capsule", (axy, toes_xy[k], rl * 0.7, idn.shoes))

  # Backpack box behind the back.
  if idn.backpack is not None:
    bw, by0, by1 = 0.34 * idn.shoulder_w * f, top + 0.03, top + 0.7 * (bot - top)
    z0, z1 = -hd, -hd - 0.07 * f * 1.0
    corners = np.array([(x, y, z) for x in (-bw, bw) for y in (by0, by1) for z in (z0, z1)])
    cam = _rotate(corners, theta)
    xmin, xmax = cam[:, 0].min(), cam[:, 0].max()
    rect = np.array([(xmin, by0), (xmax, by0), (xmax, by1), (xmin, by1)])
    rxy = (frame(rect) + 0.5) * ss - 0.5
    zc = _rotate(np.array([0.0, 0.0, (z0 + z1) / 2]), theta)[2]
    add(zc, "polygon", (rxy, idn.backpack))
    if c < -0.3:   # the pocket on the visible back of the bag
      px0, px1 = _rotate(np.array([[-bw * 0.7, 0, z1], [bw * 0.7, 0, z1]]), theta)[:, 0]
      py0, py1 = by0 + 0.55 * (by1 - by0), by1 - 0.02
      pocket = np.array([(px0, py0), (px1, py0), (px1, py1), (px0, py1)])
      add(zc + 1e-4, "polygon", ((frame(pocket) + 0.5) * ss - 0.5, np.asarray(idn.backpack) * 0.7))

  # Long hair on the back, neck, head.
  head3 = pts["head"]
  hair_depth = -1.0
  if idn.hair_style == "long":
    hw, hz = idn.head_r * f * 0.95, -hd - 0.012
    hy0, hy1 = head3[1], sh_y + 0.09
    cam = _rotate(np.array([(x, 0.0, z) for x in (-hw, hw) for z in (hz, -idn.head_r * f * 0.3)]),
                  theta)
    xmin, xmax = cam[:, 0].min(), cam[:, 0].max()
    poly = np.array([(xmin, hy0), (xmax, hy0), (xmax + 0.01, hy1), (xmin - 0.01, hy1)])
    hair_depth = _rotate(np.array([0.0, 0.0, hz]), theta)[2]
    add(hair_depth, "polygon",
        ((frame(poly) + 0.5) * ss - 0.5, idn.hair))
  hxy, hz = to_px(head3)
  add(-0.002, "capsule", (hxy, jxy[_NECK], idn.head_r * f * 0.5 * unit, idn.skin))
  add(max(hz, torso_depth, hair_depth) + 1e-3, "head", (hxy, idn.head_r * f * unit))
  return parts, theta


def render(identity: Identity, view: View, height: int, width: int, backgrounds=None, seed: int = 0,
           mask: bool = False) -> Tuple[np.ndarray, np.ndarray]:
  """Renders one image.

  Args:
    identity, view: the person and the photograph (see `sample_identity`, `sample_view`).
    height, width: image size in pixels.
    backgrounds: `make_backgrounds(height, width, seed)` (made here if None; pass it in for speed).
    seed: the data set seed (backgrounds and camera tints).
    mask: if True return the person's coverage instead of the photo (no background, no tint).

  Returns:
    (image, keypoints): image (H, W, 3) uint8 (or (H, W) uint8 coverage 0-255 with `mask=True`);
    keypoints (18, 2) int32 `(y, x)`, -1 where missing.
  """
  ss = _supersample(height)
  cw, ch = width * ss, height * ss
  if mask:
    canvas = Image.new("L", (cw, ch), 0)
  else:
    if backgrounds is None:
      backgrounds = make_backgrounds(height, width, seed)
    bg = backgrounds[view.camera - 1][view.background]
    ox = int(view.bg_offset * (bg.width - cw))
    canvas = bg.crop((ox, 0, ox + cw, ch))
  draw = ImageDraw.Draw(canvas)
  frame = _frame(identity, view, height, width)
  parts, theta = _parts(identity, view, frame, ss)
  parts.sort(key=lambda p: (p[0], p[1]))
  white = 255
  for _, _, kind, payload in parts:
    if kind == "capsule":
      a, b, r, colour = payload
      draw.polygon(_capsule(a, b, r), fill=white if mask else _int(colour))
    elif kind == "polygon":
      poly, colour = payload
      draw.polygon([tuple(p) for p in poly.tolist()], fill=white if mask else _int(colour))
    elif kind == "face":
      name, quad, waist = payload
      x0, y0 = int(math.floor(quad[:, 0].min())), int(math.floor(quad[:, 1].min()))
      x1, y1 = int(math.ceil(quad[:, 0].max())) + 1, int(math.ceil(quad[:, 1].max())) + 1
      x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, cw), min(y1, ch)
      if x1 <= x0 or y1 <= y0:
        continue
      u, v, inside = _quad_uv(quad, x0, y0, x1 - x0, y1 - y0)
      m = Image.fromarray((inside * 255).astype(np.uint8))
      if mask:
        canvas.paste(white, (x0, y0, x1, y1), m)
      else:
        rgb = _face_texture(name, identity, u, v, waist)
        canvas.paste(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), (x0, y0), m)
    elif kind == "head":
      centre, r = payload
      sprite = _head_sprite(identity, theta, math.radians(view.rotation), centre[0], centre[1], r, cw, ch)
      if sprite is not None:
        (x0, y0), rgb, m = sprite
        if mask:
          canvas.paste(white, (x0, y0, x0 + m.shape[1], y0 + m.shape[0]), Image.fromarray(m))
        else:
          canvas.paste(Image.fromarray(rgb), (x0, y0), Image.fromarray(m))
  small = canvas.reduce(ss)
  keypoints = view_keypoints(identity, view, height, width)
  if mask:
    return np.asarray(small), keypoints
  gain = camera_tint(seed, view.camera) * view.brightness
  img = np.clip(np.asarray(small, np.float32) * gain.astype(np.float32), 0, 255).astype(np.uint8)
  return img, keypoints


# -------------------------------------------------------------------------------------------- data set
def _image_name(identity: int, camera: int, frame: int) -> str:
  return f"{identity:04d}_c{camera}s1_{frame:06d}_00.png"


def plan_identity(seed: int, person_id: int, views_per_id: int):
  """The identity and its views: [(name, View)], orientations spread around the circle."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, person_id]))
  identity = sample_identity(rng)
  start = rng.uniform(0, 360)
  cams = rng.permutation(NUM_CAMERAS)
  views = []
  for k in range(views_per_id):
    vrng = np.random.default_rng(np.random.SeedSequence([seed, person_id, k + 1]))
    orientation = (start + k * 360.0 / views_per_id + vrng.uniform(-0.3, 0.3) * 360.0 / views_per_id) % 360
    camera = int(cams[k % NUM_CAMERAS]) + 1
    view = sample_view(vrng, orientation, camera)
    frame = 100 * (k + 1) + int(vrng.integers(0, 100))
    views.append((_image_name(person_id, camera, frame), view))
  return identity, views


def _atomic_write(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def _annotation_csv(rows) -> str:
  lines = ["name:keypoints_y:keypoints_x"]
  for name, kp in rows:
    lines.append(f"{name}:{json.dumps([int(v) for v in kp[:, 0]])}:{json.dumps([int(v) for v in kp[:, 1]])}")
  return "\n".join(lines) + "\n"


def _pairs_csv(names_by_id: Dict[int, List[str]], per_id: int) -> str:
  lines = ["from,to"]
  for pid in sorted(names_by_id):
    names = names_by_id[pid]
    n = len(names)
    for k in range(min(per_id, n if n > 1 else 0)):
      lines.append(f"{names[k]},{names[(k + n // 2) % n if n // 2 else (k + 1) % n]}")
  return "\n".join(lines) + "\n"


def generate(out_dir: str, height: int = 128, width: int = 64, train_ids: int = 200, test_ids: int = 20,
             views_per_id: int = 8, seed: int = 0, verbose: bool = False) -> dict:
  """Writes the synthetic people set in the Market-1501 layout (see the module docstring).

  Args:
    out_dir: the data root; created if needed. `info.json` is removed first and written last, so an
      interrupted run leaves a folder that `is_complete` rejects. Stale synthetic-named PNGs are removed.
    height, width: image size in pixels (any size; >= 16 recommended).
    train_ids, test_ids: number of identities (train ids 1..N, test ids N+1..N+M).
    views_per_id: images per identity (>= 1; >= 2 for multi-source tuples).
    seed: everything is a function of the arguments (identical bytes for identical arguments).
    verbose: print progress to stderr.

  Returns:
    The summary also written to info.json: parameters, image and identity counts, the number of images
    missing a shoulder or a hip, and the generation time in seconds.
  """
  if height < 8 or width < 8:
    raise ValueError(f"Image size {height}x{width} is too small (min 8x8).")
  if views_per_id < 1 or train_ids < 0 or test_ids < 0:
    raise ValueError("views_per_id must be >= 1 and the id counts >= 0.")
  t0 = time.perf_counter()
  os.makedirs(out_dir, exist_ok=True)
  info_path = os.path.join(out_dir, INFO_FILE)
  if os.path.exists(info_path):
    os.remove(info_path)
  backgrounds = make_backgrounds(height, width, seed)
  splits = {"train": range(1, train_ids + 1), "test": range(train_ids + 1, train_ids + test_ids + 1)}
  counts, incomplete = {}, {}
  for split, ids in splits.items():
    folder = os.path.join(out_dir, split)
    os.makedirs(folder, exist_ok=True)
    rows, names_by_id, written = [], {}, set()
    for pid in ids:
      identity, views = plan_identity(seed, pid, views_per_id)
      for name, view in views:
        img, kp = render(identity, view, height, width, backgrounds, seed)
        Image.fromarray(img).save(os.path.join(folder, name), compress_level=1)
        rows.append((name, kp))
        names_by_id.setdefault(pid, []).append(name)
        written.add(name)
      if verbose and pid % 50 == 0:
        print(f"{split}: identity {pid}", file=sys.stderr)
    for stale in os.listdir(folder):
      if NAME_PATTERN.match(stale) and stale not in written:
        os.remove(os.path.join(folder, stale))
    rows.sort(key=lambda r: r[0])
    _atomic_write(os.path.join(out_dir, f"market-annotation-{split}.csv"), _annotation_csv(rows))
    _atomic_write(os.path.join(out_dir, f"market-pairs-{split}.csv"), _pairs_csv(names_by_id, 4))
    counts[split] = len(rows)
    incomplete[split] = int(sum(
        1 for _, kp in rows if np.any(kp[list(kp_lib.JOINT_INDEX[n] for n in
                                              ("r_shoulder", "l_shoulder", "r_hip", "l_hip"))] < 0)))
  elapsed = time.perf_counter() - t0
  params = {"height": height, "width": width, "train_ids": train_ids, "test_ids": test_ids,
            "views_per_id": views_per_id, "seed": seed}
  summary = {"format_version": FORMAT_VERSION, "params": params,
             "images": counts, "identities": {"train": train_ids, "test": test_ids},
             "missing_shoulder_or_hip": incomplete,
             "seconds": round(elapsed, 3)}
  readme = (
      "Synthetic multi-view people (rfgen_jax.data.synthetic), Market-1501 layout of PATN/GFLA.\n"
      f"Generated with: python -m rfgen_jax.data.synthetic --out DIR --height {height} --width "
      f"{width} --train-ids {train_ids} --test-ids {test_ids} --views-per-id {views_per_id} --seed {seed}\n"
      "train/, test/: {id:04d}_c{camera}s1_{frame:06d}_00.png; train and test identities are disjoint.\n"
      "market-annotation-{split}.csv: name:keypoints_y:keypoints_x, 18 OpenPose joints, -1 = missing.\n"
      "market-pairs-{split}.csv: from,to pairs of one identity. info.json: parameters, written last.\n")
  _atomic_write(os.path.join(out_dir, "README.txt"), readme)
  # The timing is not part of info.json, so that equal arguments give byte-identical folders.
  info = {k: v for k, v in summary.items() if k != "seconds"}
  _atomic_write(info_path, json.dumps(info, indent=2, sort_keys=True) + "\n")
  return summary


def is_complete(out_dir: str, height: Optional[int] = None, width: Optional[int] = None) -> bool:
  """True if `out_dir` holds a finished synthetic set (info.json present, CSVs and image counts match).

  With `height`/`width` given, the set must also have that image size.
  """
  try:
    with open(os.path.join(out_dir, INFO_FILE)) as f:
      info = json.load(f)
    if info.get("format_version") != FORMAT_VERSION:
      return False
    p = info["params"]
    if (height is not None and p["height"] != height) or (width is not None and p["width"] != width):
      return False
    for split in ("train", "test"):
      for name in (f"market-annotation-{split}.csv", f"market-pairs-{split}.csv"):
        if not os.path.isfile(os.path.join(out_dir, name)):
          return False
      pngs = [n for n in os.listdir(os.path.join(out_dir, split)) if n.endswith(".png")]
      if len(pngs) != info["images"][split]:
        return False
    return True
  except (OSError, ValueError, KeyError, TypeError):
    return False


# -------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.data.synthetic", description=__doc__.split(
      "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="output data root")
  parser.add_argument("--height", type=int, default=128)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--train-ids", type=int, default=200)
  parser.add_argument("--test-ids", type=int, default=20)
  parser.add_argument("--views-per-id", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  summary = generate(args.out, args.height, args.width, args.train_ids, args.test_ids, args.views_per_id,
                     args.seed, verbose=True)
  n = sum(summary["images"].values())
  print(f"Wrote {n} images ({summary['images']}) to {args.out} in {summary['seconds']:.1f} s "
        f"({n / max(summary['seconds'], 1e-9):.0f} images/s); missing a shoulder or hip: "
        f"{summary['missing_shoulder_or_hip']}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
