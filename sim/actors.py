"""Meshes of the detector's negatives: pedestrians, cyclists, parked bicycles, fences, benches.

Each mesh is built inside its object's box ``[-L/2, L/2] x [-W/2, W/2] x [-H/2, H/2]`` (centre at
the origin, x forward) from axis-aligned boxes and y-axis cylinders, with a material per
triangle (index into ``sim.materials.MATERIAL_NAMES``; ``OWN`` = -1 for the object's own
material, e.g. its clothing colour):

- pedestrian (box about 0.5-0.9 x 0.45-0.65 x 1.5-1.95 m, KITTI's mean 0.84 x 0.66 x 1.76 m):
  legs in stride, torso, swinging arms, head (skin);
- cyclist (about 1.6-1.9 x 0.5-0.7 x 1.6-1.9 m, KITTI's mean 1.76 x 0.60 x 1.74 m): a bicycle
  (spoked wheels that let most beams through, frame, handlebar) and a rider leaning forward;
- bicycle (parked, no rider; about 1.7 x 0.6 x 1.05 m);
- fence: a panel (its own material: wire mesh lets most beams through, wood does not) between
  metal posts every 2.5 m;
- bench: seat, backrest and four metal legs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sim.materials import MATERIAL_NAMES
from sim.vehicles import OWN, _cylinder_y, _orient, box_mesh

_MAT = {name: i for i, name in enumerate(MATERIAL_NAMES)}
Part = tuple[np.ndarray, np.ndarray, int]  # vertices [V, 3], triangles [T, 3], material


def _box(lo: tuple[float, ...], hi: tuple[float, ...], mat: int = OWN) -> Part:
    v, t = box_mesh(lo, hi)
    return v, t, mat


def _wheel(x: float, z: float, radius: float, mat: int) -> Part:
    v, t = _cylinder_y(np.array([x, 0.0, z]), radius, 0.04, 16)
    return v, t, mat


def _rider(x0: float, seat_z: float, h: float, w: float, lean: float) -> list[Part]:
    """A seated rider: hips at (x0, seat_z), torso leaning forward by ``lean`` metres."""
    s = h / 1.75
    skin = _MAT["skin"]
    return [
        _box((x0 - 0.12, -0.17, seat_z), (x0 + 0.12 + lean, 0.17, seat_z + 0.55 * s)),
        _box((x0 + 0.05, -0.16, seat_z - 0.50 * s), (x0 + 0.25, -0.05, seat_z)),  # legs
        _box((x0 - 0.05, 0.05, seat_z - 0.45 * s), (x0 + 0.12, 0.16, seat_z)),
        _box((x0 + 0.1 + lean, -0.5 * w + 0.05, seat_z + 0.25 * s),
             (x0 + 0.45 + lean, -0.5 * w + 0.12, seat_z + 0.45 * s)),  # arms to the bar
        _box((x0 + 0.1 + lean, 0.5 * w - 0.12, seat_z + 0.25 * s),
             (x0 + 0.45 + lean, 0.5 * w - 0.05, seat_z + 0.45 * s)),
        _box((x0 + lean - 0.02, -0.09, seat_z + 0.55 * s),
             (x0 + lean + 0.18, 0.09, min(seat_z + 0.80 * s, h - 1e-3)), skin),  # head
    ]  # fmt: skip


def _bicycle(length: float, width: float) -> tuple[list[Part], float]:
    """A bicycle along x filling ``length``; returns its parts and the seat height."""
    r = min(0.34, 0.25 * length)
    spokes, metal = _MAT["wire_mesh"], _MAT["metal"]
    xf, xr = 0.5 * length - r, -0.5 * length + r
    seat = 2.0 * r + 0.25
    parts = [
        _wheel(xf, r, r, spokes),
        _wheel(xr, r, r, spokes),
        _box((xr, -0.02, r - 0.02), (xf - 0.1, 0.02, r + 0.04), metal),  # chain stay/down tube
        _box((xr + 0.25, -0.02, r), (xr + 0.30, 0.02, seat), metal),  # seat tube
        _box((xr + 0.25, -0.02, seat + 0.1), (xf - 0.15, 0.02, seat + 0.14), metal),  # top tube
        _box((xf - 0.15, -0.5 * width, seat + 0.2), (xf - 0.1, 0.5 * width, seat + 0.25), metal),
        _box((xf - 0.15, -0.02, r), (xf - 0.1, 0.02, seat + 0.2), metal),  # fork
        _box((xr + 0.2, -0.09, seat), (xr + 0.42, 0.09, seat + 0.06), metal),  # saddle
    ]
    return parts, seat


def _pedestrian(length: float, width: float, height: float) -> list[Part]:
    h = height
    stride = max(0.0, 0.5 * length - 0.08)
    hip, shoulder = 0.48 * h, 0.82 * h
    half_torso = min(0.19, 0.5 * width - 0.06)
    arm_y = half_torso + 0.05
    return [
        _box((stride - 0.14, -0.16, 0.0), (stride, -0.03, hip)),
        _box((-stride, 0.03, 0.0), (-stride + 0.14, 0.16, hip)),
        _box((-0.12, -half_torso, hip), (0.12, half_torso, shoulder)),
        _box((-0.5 * stride - 0.04, -arm_y - 0.04, 0.52 * h),
             (-0.5 * stride + 0.04, -arm_y + 0.04, shoulder)),
        _box((0.5 * stride - 0.04, arm_y - 0.04, 0.52 * h),
             (0.5 * stride + 0.04, arm_y + 0.04, shoulder)),
        _box((-0.09, -0.08, shoulder + 0.02), (0.09, 0.08, h), _MAT["skin"]),
    ]  # fmt: skip


def _fence(length: float, width: float, height: float) -> list[Part]:
    parts = [_box((-0.5 * length, -0.5 * width, 0.05), (0.5 * length, 0.5 * width, height))]
    posts = max(2, round(length / 2.5) + 1)
    for x in np.linspace(-0.5 * length + 0.03, 0.5 * length - 0.03, posts):
        parts.append(
            _box((x - 0.03, -0.5 * width, 0.0), (x + 0.03, 0.5 * width, height), _MAT["metal"])
        )
    return parts


def _bench(length: float, width: float, height: float) -> list[Part]:
    seat = 0.45 * height / 0.85
    metal = _MAT["metal"]
    parts = [
        _box((-0.5 * length, -0.5 * width + 0.08, seat - 0.05), (0.5 * length, 0.5 * width, seat)),
        _box(
            (-0.5 * length, -0.5 * width, seat + 0.05), (0.5 * length, -0.5 * width + 0.06, height)
        ),
    ]
    for x in (-0.5 * length + 0.05, 0.5 * length - 0.1):
        for y in (-0.5 * width + 0.1, 0.5 * width - 0.15):
            parts.append(_box((x, y, 0.0), (x + 0.05, y + 0.05, seat - 0.05), metal))
    return parts


def actor_mesh(
    shape: str, length: float, width: float, height: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh of an actor shape (module docstring) in its box frame: vertices float64 [V, 3],
    outward triangles int64 [T, 3], materials int16 [T] (shared: do not modify).

    Raises:
        KeyError: unknown shape.
    """
    dims = (round(float(length), 4), round(float(width), 4), round(float(height), 4))
    return _actor_mesh_cached(shape, *dims)


@lru_cache(maxsize=2048)
def _actor_mesh_cached(
    shape: str, length: float, width: float, height: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if shape == "pedestrian":
        parts = _pedestrian(length, width, height)
    elif shape in ("cyclist", "bicycle"):
        parts, seat = _bicycle(length, width)
        if shape == "cyclist":
            parts += _rider(-0.5 * length + 0.6, seat + 0.06, height, width, 0.25)
    elif shape == "fence":
        parts = _fence(length, width, height)
    elif shape == "bench":
        parts = _bench(length, width, height)
    else:
        raise KeyError(shape)
    verts, tris, mats, insides = [], [], [], []
    n = 0
    for v, t, mat in parts:
        verts.append(v)
        tris.append(t + n)
        mats.append(np.full(len(t), mat, dtype=np.int16))
        insides.append(np.repeat(v.mean(axis=0)[None], len(t), axis=0))
        n += len(v)
    v = np.concatenate(verts)
    v = v - [0.0, 0.0, 0.5 * height]
    t = _orient(v, np.concatenate(tris), np.concatenate(insides) - [0.0, 0.0, 0.5 * height])
    # Keep every part inside the box (the rider's head and the bar may touch its faces).
    v = np.clip(
        v, [-0.5 * length, -0.5 * width, -0.5 * height], [0.5 * length, 0.5 * width, 0.5 * height]
    )
    return v, t, np.concatenate(mats)
