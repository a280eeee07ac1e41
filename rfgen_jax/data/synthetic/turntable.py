"""A synthetic turntable data set in the M2N HDF5 format: the camera-pose path without a download.

Every object is a composite of boxes and upright cylinders (chair-, table-, crate- and tower-like
shapes with random proportions). Every face of every part gets its own colour pair and pattern (solid,
stripes, checker or dots at a random frequency and angle); cylinder sides have four differently
coloured sectors. So a view shows at most half of an object's surface: the far side, which the target
view may show, is only visible in other sources, and the task is a real multi-view one.

Rendering (numpy only): an orthographic camera on a sphere around the object looks at its centre from
azimuth `a * 360 / num_azimuths` degrees and elevation `e` degrees; rays are cast analytically (slab
test for boxes, quadratic + caps for cylinders), the nearest hit is flat-shaded with a Lambert term
from a light fixed to the camera (above, left, behind the viewer), on a white background, with 2 x 2
supersampling. Camera direction towards the viewer: (cos e sin phi, sin e, cos e cos phi), y up.

Output (the M2N object layout of `rfgen_jax/data/m2n_format.py`, kind "turntable"):
    OUT/data_turntable.hdf5                 groups obj0000_{azimuth index}_{elevation}: image, pose
    OUT/id_turntable_train.txt, OUT/id_turntable_test.txt
`pose` = [azimuth index, elevation in degrees] (int32), as M2N's chairs. Train and test objects are
disjoint (as M2N splits ShapeNet by model). The same seed gives the same bytes of images.

    python -m rfgen_jax.data.synthetic.turntable --out DIR [--size 64 --train-objects 24 --test-objects 6 --seed 0]
"""
from __future__ import annotations

import argparse
import colorsys
import os
import time

import numpy as np

from rfgen_jax.data import m2n_format as m2n

KIND = "turntable"
DEFAULT_ELEVATIONS = (0, 10, 20)
SHAPES = ("chair", "table", "crate", "tower")
_EXTENT = 1.08          # half-width of the orthographic view, object radius <= 1
_OTHER_AXES = np.array([[1, 2], [0, 2], [0, 1]])


# ------------------------------------------------------------------------------------------ objects
def _colour(rng) -> np.ndarray:
  h, s, v = rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.35, 0.95)
  return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32)


def _materials(rng, n: int) -> dict:
  """n faces: base and alternate colours, pattern kind (0 solid, 1 stripes, 2 checker, 3 dots), freq, angle."""
  base = np.stack([_colour(rng) for _ in range(n)])
  alt = np.stack([_colour(rng) for _ in range(n)])
  return {"base": base, "alt": alt, "kind": rng.integers(0, 4, size=n),
          "freq": rng.uniform(2.0, 5.0, size=n).astype(np.float32),
          "angle": rng.uniform(0, np.pi, size=n).astype(np.float32)}


def _box(center, size, rng) -> dict:
  c, s = np.asarray(center, np.float32), np.asarray(size, np.float32)
  return {"type": "box", "lo": c - s / 2, "hi": c + s / 2, "mat": _materials(rng, 6)}


def _cylinder(center, radius, height, rng) -> dict:
  # Materials: 4 side sectors then the bottom and top caps.
  return {"type": "cyl", "c": np.asarray(center, np.float32), "r": np.float32(radius),
          "hh": np.float32(height / 2), "mat": _materials(rng, 6)}


def make_object(rng: np.random.Generator, shape: str | None = None) -> list[dict]:
  """A random composite object (list of parts), scaled to fit in the unit sphere around the origin."""
  shape = shape or SHAPES[rng.integers(len(SHAPES))]
  u = rng.uniform
  parts = []
  if shape in ("chair", "table"):
    w, d = u(0.9, 1.3), u(0.8, 1.2)
    leg_h, top_t, leg_t = u(0.6, 0.9), u(0.1, 0.18), u(0.08, 0.14)
    parts.append(_box((0, 0, 0), (w, top_t, d), rng))
    for sx in (-1, 1):
      for sz in (-1, 1):
        parts.append(_box((sx * (w - leg_t) / 2, -(top_t + leg_h) / 2, sz * (d - leg_t) / 2),
                          (leg_t, leg_h, leg_t), rng))
    if shape == "chair":
      back_h = u(0.6, 1.0)
      parts.append(_box((0, (top_t + back_h) / 2, -(d - 0.12) / 2), (w, back_h, 0.12), rng))
      if rng.random() < 0.5:
        for sx in (-1, 1):
          parts.append(_box((sx * (w - 0.1) / 2, top_t / 2 + 0.2, 0.05), (0.1, 0.08, d * 0.8), rng))
  elif shape == "crate":
    w, h, d = u(0.8, 1.3), u(0.6, 1.0), u(0.8, 1.3)
    parts.append(_box((0, 0, 0), (w, h, d), rng))
    parts.append(_box((u(-0.2, 0.2), u(-0.1, 0.2), d / 2 + 0.1), (u(0.2, 0.5), u(0.2, 0.4), 0.2), rng))
    parts.append(_cylinder((u(-0.2, 0.2), h / 2 + 0.2, u(-0.2, 0.2)), u(0.15, 0.3), 0.4, rng))
  else:  # tower
    r, h = u(0.35, 0.55), u(0.9, 1.4)
    parts.append(_cylinder((0, 0, 0), r, h, rng))
    parts.append(_box((0, h / 2 + 0.15, 0), (u(0.5, 0.9), 0.3, u(0.5, 0.9)), rng))
    side = rng.choice([-1, 1])
    parts.append(_box((side * (r + 0.2), u(-0.3, 0.3), 0), (0.4, u(0.3, 0.6), 0.3), rng))
  # Centre the bounding box at the origin and scale into the unit sphere.
  corners = []
  for p in parts:
    if p["type"] == "box":
      corners += [p["lo"], p["hi"]]
    else:
      corners += [p["c"] - [p["r"], p["hh"], p["r"]], p["c"] + [p["r"], p["hh"], p["r"]]]
  corners = np.stack(corners)
  centre = (corners.min(0) + corners.max(0)) / 2
  half = (corners.max(0) - corners.min(0)) / 2
  scale = np.float32(0.97 / np.linalg.norm(half))
  for p in parts:
    if p["type"] == "box":
      p["lo"], p["hi"] = (p["lo"] - centre) * scale, (p["hi"] - centre) * scale
    else:
      p["c"], p["r"], p["hh"] = (p["c"] - centre) * scale, p["r"] * scale, p["hh"] * scale
  return parts


# ------------------------------------------------------------------------------------------ rendering
def camera_frames(azimuths_deg, elevation_deg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(back, right, up), each (V, 3): unit vectors towards the viewer, image right, image up."""
  phi = np.radians(np.asarray(azimuths_deg, np.float64))
  e = np.radians(np.broadcast_to(np.asarray(elevation_deg, np.float64), phi.shape))
  back = np.stack([np.cos(e) * np.sin(phi), np.sin(e), np.cos(e) * np.cos(phi)], -1)
  right = np.stack([np.cos(phi), np.zeros_like(phi), -np.sin(phi)], -1)
  up = np.cross(back, right)
  return back.astype(np.float32), right.astype(np.float32), up.astype(np.float32)


def _pattern(mat, face, u, v):
  kind, f, a = mat["kind"][face], mat["freq"][face], mat["angle"][face]
  s = u * np.cos(a) + v * np.sin(a)
  t = -u * np.sin(a) + v * np.cos(a)
  fs, ft = s * f, t * f
  m = np.where(kind == 1, (fs - np.floor(fs)) < 0.5, False)
  m |= (kind == 2) & ((np.floor(fs) + np.floor(ft)) % 2 == 1)
  m |= (kind == 3) & (np.square(fs - np.floor(fs) - 0.5) + np.square(ft - np.floor(ft) - 0.5) < 0.08)
  return np.where(m[..., None], mat["alt"][face], mat["base"][face])


def _hit_box(p, o, d):
  inv = 1.0 / np.where(np.abs(d) < 1e-9, 1e-9, d)
  t0, t1 = (p["lo"] - o) * inv, (p["hi"] - o) * inv
  tnear, tfar = np.minimum(t0, t1), np.maximum(t0, t1)
  # Reductions over the last axis of 3 written out (numpy's are slow on such short rows).
  n0, n1, n2 = tnear[:, 0], tnear[:, 1], tnear[:, 2]
  tn = np.maximum(np.maximum(n0, n1), n2)
  tf = np.minimum(np.minimum(tfar[:, 0], tfar[:, 1]), tfar[:, 2])
  hit = (tn <= tf) & (tn > 0)
  axis = np.where((n0 >= n1) & (n0 >= n2), 0, np.where(n1 >= n2, 1, 2))
  d_axis = np.take_along_axis(np.broadcast_to(d, o.shape), axis[..., None], -1)[..., 0]
  positive = d_axis < 0                     # the face we enter through points towards the viewer
  normal = np.zeros(o.shape, np.float32)
  np.put_along_axis(normal, axis[..., None], np.where(positive, 1.0, -1.0)[..., None].astype(np.float32), -1)
  pt = o + tn[..., None] * d
  rel = (pt - p["lo"]) / (p["hi"] - p["lo"])
  others = _OTHER_AXES[axis]
  u = np.take_along_axis(rel, others[..., :1], -1)[..., 0]
  v = np.take_along_axis(rel, others[..., 1:], -1)[..., 0]
  face = axis * 2 + positive
  return np.where(hit, tn, np.inf), normal, _pattern(p["mat"], face, u, v)


def _hit_cylinder(p, o, d):
  c, r, hh = p["c"], p["r"], p["hh"]
  ox, oy, oz = o[..., 0] - c[0], o[..., 1] - c[1], o[..., 2] - c[2]
  dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
  a = np.maximum(dx * dx + dz * dz, 1e-12)
  b = 2 * (ox * dx + oz * dz)
  cc = ox * ox + oz * oz - r * r
  disc = b * b - 4 * a * cc
  ts = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
  ys = oy + ts * dy
  side_ok = (disc >= 0) & (ts > 0) & (np.abs(ys) <= hh)
  dy_safe = np.where(np.abs(dy) < 1e-9, 1e-9, dy)
  cap_y = np.where(dy < 0, hh, -hh)                      # the cap facing the viewer
  tc = (cap_y - oy) / dy_safe
  cx, cz = ox + tc * dx, oz + tc * dz
  cap_ok = (tc > 0) & (cx * cx + cz * cz <= r * r) & (np.abs(dy) > 1e-6)
  t_side = np.where(side_ok, ts, np.inf)
  t_cap = np.where(cap_ok, tc, np.inf)
  use_side = t_side <= t_cap
  t = np.minimum(t_side, t_cap)
  px, pz = ox + ts * dx, oz + ts * dz
  theta = np.arctan2(pz, px)
  sector = (np.floor((theta + np.pi) / (np.pi / 2)).astype(np.int64)) % 4
  top = np.broadcast_to(cap_y > 0, t.shape)
  face = np.where(use_side, sector, 4 + top)
  u = np.where(use_side, (theta + np.pi) / (2 * np.pi) * 4 % 1.0, cx / (2 * r) + 0.5)
  v = np.where(use_side, (ys + hh) / (2 * hh), cz / (2 * r) + 0.5)
  side_n = np.stack([px / r, np.zeros_like(px), pz / r], -1)
  cap_n = np.zeros_like(side_n)
  cap_n[..., 1] = np.where(top, 1.0, -1.0)
  normal = np.where(use_side[..., None], side_n, cap_n).astype(np.float32)
  return t, normal, _pattern(p["mat"], face, u.astype(np.float32), v.astype(np.float32))


def _bounding_sphere(p) -> tuple[np.ndarray, np.float32]:
  if p["type"] == "box":
    return (p["lo"] + p["hi"]) / 2, np.float32(np.linalg.norm(p["hi"] - p["lo"]) / 2 + 1e-4)
  return p["c"], np.float32(np.hypot(p["r"], p["hh"]) + 1e-4)


def render_views(parts: list[dict], azimuths_deg, elevation_deg: float, size: int,
                 supersample: int = 2) -> np.ndarray:
  """Renders an object from several azimuths at one elevation.

  Args:
    parts: `make_object` output.
    azimuths_deg: (V,) azimuths in degrees.
    elevation_deg: elevation in degrees.
    size: output height = width in pixels.
    supersample: rays per pixel along each axis (box-filtered).

  Returns:
    (V, size, size, 3) uint8 images, white background.
  """
  back, right, up = camera_frames(azimuths_deg, elevation_deg)
  num_views, n = back.shape[0], size * supersample
  coords = ((np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1) * _EXTENT
  # Flat ray arrays: view index, image-plane coordinates (x right, y up); a ray starts at
  # x * right + y * up + 4 * back and runs along -back.
  vid = np.repeat(np.arange(num_views), n * n)
  xs = np.tile(np.tile(coords, n), num_views)
  ys = np.tile(np.repeat(-coords, n), num_views)
  best_t = np.full(vid.shape, np.inf, np.float32)
  normal = np.zeros(vid.shape + (3,), np.float32)
  colour = np.ones(vid.shape + (3,), np.float32)
  for p in parts:
    # Only rays passing within the part's bounding sphere (a disc in the image plane) are intersected.
    centre, radius = _bounding_sphere(p)
    cx, cy = right @ centre, up @ centre
    near = np.nonzero(np.square(xs - cx[vid]) + np.square(ys - cy[vid]) <= radius * radius)[0]
    if not len(near):
      continue
    v = vid[near]
    o = xs[near, None] * right[v] + ys[near, None] * up[v] + 4.0 * back[v]
    t, nrm, col = (_hit_box if p["type"] == "box" else _hit_cylinder)(p, o, -back[v])
    closer = t < best_t[near]
    sel = near[closer]
    best_t[sel], normal[sel], colour[sel] = t[closer], nrm[closer], col[closer]
  shape = (num_views, n, n)
  best_t, normal, colour = best_t.reshape(shape), normal.reshape(shape + (3,)), colour.reshape(shape + (3,))
  light = 0.75 * back + 0.55 * up - 0.35 * right
  light /= np.linalg.norm(light, axis=-1, keepdims=True)
  lambert = np.clip(np.einsum("vhwc,vc->vhw", normal, light), 0, 1)
  shaded = colour * (0.35 + 0.65 * lambert)[..., None]
  image = np.where(np.isfinite(best_t)[..., None], shaded, 1.0)
  if supersample > 1:
    v = image.shape[0]
    image = image.reshape(v, size, supersample, size, supersample, 3).mean(axis=(2, 4))
  return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ data set
def object_name(index: int) -> str:
  return f"obj{index:04d}"


def generate(out: str, size: int = 64, train_objects: int = 24, test_objects: int = 6, seed: int = 0,
             num_azimuths: int = 36, elevations=DEFAULT_ELEVATIONS, supersample: int = 2) -> None:
  """Writes the turntable set (module docstring) into `out`. Deterministic for a seed."""
  if train_objects < 1 or test_objects < 1:
    raise ValueError("Need at least one train and one test object.")
  azimuths = np.arange(num_azimuths) * (360.0 / num_azimuths)
  splits = {"train": [], "test": []}
  for i in range(train_objects + test_objects):
    parts = make_object(np.random.default_rng([seed, i]))
    split = "train" if i < train_objects else "test"
    for elev in elevations:
      images = render_views(parts, azimuths, elev, size, supersample)
      for a in range(num_azimuths):
        splits[split].append((f"{object_name(i)}_{a}_{int(elev)}", images[a],
                              np.array([a, int(elev)], np.int32)))
  m2n.write_m2n(out, KIND, splits)


def is_complete(out: str) -> bool:
  """True when the HDF5 file and both id lists exist."""
  return all(os.path.isfile(os.path.join(out, n)) for n in
             (m2n.file_names(KIND, "all")[0], m2n.file_names(KIND, "train")[1],
              m2n.file_names(KIND, "test")[1]))


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--train-objects", type=int, default=24)
  parser.add_argument("--test-objects", type=int, default=6)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--azimuths", type=int, default=36)
  parser.add_argument("--elevations", default=",".join(map(str, DEFAULT_ELEVATIONS)),
                      help="comma-separated degrees")
  parser.add_argument("--supersample", type=int, default=2)
  args = parser.parse_args(argv)
  start = time.time()
  elevations = tuple(int(e) for e in args.elevations.split(","))
  generate(args.out, args.size, args.train_objects, args.test_objects, args.seed, args.azimuths,
           elevations, args.supersample)
  n = (args.train_objects + args.test_objects) * args.azimuths * len(elevations)
  print(f"Wrote {n} views of {args.train_objects}+{args.test_objects} objects to {args.out} "
        f"in {time.time() - start:.1f} s.")


if __name__ == "__main__":
  main()
