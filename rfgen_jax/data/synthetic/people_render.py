"""Paints one synthetic person: torso faces, limb capsules, head sprite, backpack, over a camera background.

Pillow polygons on a supersampled canvas (about 256 px high), box-reduced for anti-aliasing; numpy
textures for the torso (front and back differ: stripes, checks, dots, a logo, a band, a number) and the
head. Every camera has its own colour cast and `BACKGROUNDS_PER_CAMERA` backgrounds. Used by
`rfgen_jax/data/synthetic/people.py`; bodies and keypoints come from `people_body.py`.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw

from rfgen_jax.data.synthetic.people_body import (  # pylint: disable=g-multiple-import
    BACKGROUNDS_PER_CAMERA, NUM_CAMERAS, Garment, Identity, View, _Frame, _colour, _frame, _rotate,
    body_points, view_keypoints, _NOSE, _NECK, _RSH, _REL, _RWR, _LSH, _LEL, _LWR, _RHIP, _RKNE, _RANK,
    _LHIP, _LKNE, _LANK, _REYE, _LEYE, _REAR, _LEAR)

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
  if tuple(view.colour) != (1.0, 1.0, 1.0):   # the per-camera misalignment's cast (misalign.py)
    gain = gain * np.asarray(view.colour, np.float64)
  img = np.clip(np.asarray(small, np.float32) * gain.astype(np.float32), 0, 255).astype(np.uint8)
  return img, keypoints
