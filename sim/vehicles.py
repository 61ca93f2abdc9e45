"""Vehicle bodies whose lidar returns look like real ones, and their sizes.

Body types and sizes. Each class draws a body type (``BODY_TYPES``): cars are hatchbacks,
sedans or SUVs, vans, trucks (rigid box trucks with a cab-over cab) and buses (city buses).
Length, width and height of a body type follow a truncated normal (``SIZE_STATS``: mean, standard
deviation, bounds) with a shared size factor (larger cars are longer and wider):
``d = mean + sd * (rho * s + sqrt(1 - rho^2) * e_d)``, ``s, e_d ~ N(0, 1)``, redrawn when out of
bounds. Sources: class means of KITTI (car 3.88 x 1.63 x 1.53 m, van 5.07 x 1.90 x 2.21 m, truck
10.14 x 2.59 x 3.25 m; the type means of Frustum PointNets, Qi et al. 2018) and nuScenes (car
4.61 x 1.95 x 1.72 m, truck 6.74 x 2.46 x 2.73 m, bus 11.19 x 2.94 x 3.47 m; the anchor sizes of
mmdetection3d's nuScenes configs, which include mirrors); per body type, the spread of the
manufacturers' published dimensions of common models (hatchback: VW Polo/Golf, Toyota Yaris,
Honda Fit, 3.9-4.3 m; sedan: Toyota Corolla/Camry, Honda Civic, BMW 3 series, 4.6-4.9 m; SUV:
Toyota RAV4, Honda CR-V, Nissan Qashqai, Ford Explorer, 4.4-5.1 m; van: VW Transporter, Ford
Transit Custom, Mercedes Sprinter, 4.9-6.0 m) and the EU limits for trucks and buses (width
2.55 m, height 4 m, Directive 96/53/EC). The car mixture's mean length is 4.44 m, between KITTI's
and nuScenes' means; every length lies in 3.55-5.1 m.

Mesh. A body is lofted along its length: at stations x the cross-section (y, z) is an
11-vertex convex polygon, symmetric in y: bottom edge at the ground clearance (raised into a
wheel arch around each axle), sill, beltline, glass top and roof edge at half-widths ``wb(x)``
(the body, rounded in plan view near the ends) and ``wg(x)`` (the greenhouse, narrower:
tumblehome), roof crown. The top line ``z_top(x)`` follows the body type's side profile
(``_PROFILES``: hood, windshield, roof, rear window, trunk or tailgate; a truck's cab and cargo
box; a bus's flat roof). Quads between the belt and the glass top of cabin stations are side
windows (except the pillars), the top quads of the windshield and rear-window stretches are
glass, the upper bands of the end caps of vans, trucks and buses are their windshields. Wheels
are 12-sided cylinders of tyre rubber inside the arches, with an axle block between them;
licence plates and rear reflex reflectors are thin retroreflective boxes. Everything stays inside
the box ``[-L/2, L/2] x [-W/2, W/2] x [-H/2, H/2]`` (x forward, centre of the box at the origin),
so the scene object's box is the body's bounding box.
"""

from __future__ import annotations

import math
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from sim.materials import MATERIAL_NAMES

# Class -> ((body type, weight), ...).
BODY_TYPES = MappingProxyType(
    {
        "car": (("hatchback", 0.35), ("sedan", 0.35), ("suv", 0.30)),
        "van": (("van", 1.0),),
        "truck": (("truck", 1.0),),
        "bus": (("bus", 1.0),),
    }
)
# Body type -> ((mean, sd, lo, hi) for length, width, height in metres), module docstring.
SIZE_STATS = MappingProxyType(
    {
        "hatchback": ((4.05, 0.22, 3.55, 4.45), (1.74, 0.05, 1.62, 1.84), (1.48, 0.05, 1.40, 1.62)),
        "sedan": ((4.70, 0.18, 4.30, 5.05), (1.81, 0.04, 1.72, 1.90), (1.45, 0.04, 1.38, 1.52)),
        "suv": ((4.60, 0.25, 4.15, 5.10), (1.86, 0.06, 1.76, 2.02), (1.70, 0.07, 1.58, 1.88)),
        "van": ((5.30, 0.45, 4.60, 6.40), (1.98, 0.06, 1.85, 2.06), (2.20, 0.25, 1.85, 2.75)),
        "truck": ((8.00, 1.30, 5.80, 11.0), (2.45, 0.06, 2.30, 2.55), (3.30, 0.25, 2.80, 3.80)),
        "bus": ((11.6, 0.90, 9.00, 12.8), (2.52, 0.03, 2.45, 2.55), (3.15, 0.12, 2.95, 3.45)),
    }
)
_SIZE_CORRELATION = (0.8, 0.6, 0.3)  # rho of length, width, height with the size factor


def sample_body(rng: np.random.Generator, kind: str) -> tuple[str, float, float, float]:
    """(body type, length, width, height) of a vehicle of class ``kind`` (module docstring)."""
    bodies = BODY_TYPES[kind]
    weights = np.array([w for _, w in bodies])
    body = bodies[int(rng.choice(len(bodies), p=weights / weights.sum()))][0]
    size = rng.standard_normal()
    dims = []
    for (mean, sd, lo, hi), rho in zip(SIZE_STATS[body], _SIZE_CORRELATION, strict=True):
        for _ in range(20):
            d = mean + sd * (rho * size + math.sqrt(1.0 - rho * rho) * rng.standard_normal())
            if lo <= d <= hi:
                break
        dims.append(float(min(max(d, lo), hi)))
    return body, dims[0], dims[1], dims[2]


# Side profiles: top line z_top(x) as (x / L from the rear, z / H) knots; cabin stretch
# (greenhouse present) and its belt height (z / H); glass stretches of the top (windshield,
# rear window) and of the sides; which end caps carry a windshield band (z / H from which the
# cap is glass: front, rear; None for none); per-type constants.
_PROFILES = MappingProxyType(
    {
        "sedan": {
            "top": ((0, .55), (.03, .68), (.20, .70), (.30, .93), (.35, 1), (.58, 1),
                    (.72, .70), (.95, .60), (1, .45)),
            "cabin": (.20, .72), "belt": .66, "top_glass": ((.20, .35), (.58, .72)),
            "side_glass": (.27, .66), "cap_glass": (None, None),
            "tumble": .78, "overhang_m": (.90, 1.05), "wheel_m": (.31, .21), "clear_m": .14,
        },
        "hatchback": {
            "top": ((0, .45), (.02, .70), (.08, .95), (.12, 1), (.55, 1), (.72, .66),
                    (.95, .58), (1, .42)),
            "cabin": (.02, .72), "belt": .64, "top_glass": ((.02, .12), (.55, .72)),
            "side_glass": (.10, .66), "cap_glass": (None, None),
            "tumble": .80, "overhang_m": (.80, .62), "wheel_m": (.30, .20), "clear_m": .14,
        },
        "suv": {
            "top": ((0, .45), (.02, .68), (.05, .95), (.08, 1), (.62, 1), (.74, .70),
                    (.96, .66), (1, .50)),
            "cabin": (.02, .74), "belt": .62, "top_glass": ((.02, .08), (.62, .74)),
            "side_glass": (.08, .70), "cap_glass": (None, .70),
            "tumble": .85, "overhang_m": (.90, .95), "wheel_m": (.36, .24), "clear_m": .20,
        },
        "van": {
            "top": ((0, .97), (.02, 1), (.80, 1), (.90, .62), (.98, .52), (1, .40)),
            "cabin": (0, .90), "belt": .55, "top_glass": ((.80, .90),),
            "side_glass": (.68, .80), "cap_glass": (None, .62),
            "tumble": .93, "overhang_m": (.95, 1.0), "wheel_m": (.34, .22), "clear_m": .17,
        },
        "truck": {
            "top": ((0, 1), (.735, 1), (.74, .36), (.775, .36), (.78, .82), (.995, .82),
                    (1, .78)),
            "cabin": (.78, 1), "belt": .55, "top_glass": (),
            "side_glass": (.86, .97), "cap_glass": (.50, None),
            "tumble": .96, "overhang_m": (1.35, -1.0), "wheel_m": (.48, .28), "clear_m": .30,
        },
        "bus": {
            "top": ((0, .93), (.01, 1), (.99, 1), (1, .95)),
            "cabin": (0, 1), "belt": .38, "top_glass": (),
            "side_glass": (.04, .96), "cap_glass": (.30, .60),
            "tumble": 1.0, "overhang_m": (2.6, 3.3), "wheel_m": (.50, .30), "clear_m": .30,
        },
    }
)  # fmt: skip
_MAT = {name: i for i, name in enumerate(MATERIAL_NAMES)}
OWN = -1  # material index meaning "the object's own material" (paint)
_PILLAR_EVERY_M = {"bus": 1.25}  # bus windows are separated by pillars; cars have B/C pillars
_ENDS_INSET_M = 0.015  # loft ends this far inside the box: room for plates and reflectors


def _lerp_profile(knots: tuple[tuple[float, float], ...], x: np.ndarray) -> np.ndarray:
    kx, kz = np.array(knots, dtype=np.float64).T
    return np.interp(x, kx, kz)


def _in(x: np.ndarray, stretch: tuple[float, float]) -> np.ndarray:
    return (x >= stretch[0] - 1e-9) & (x <= stretch[1] + 1e-9)


def _axles(body: str, length: float) -> list[float]:
    """Axle positions (m from the rear end)."""
    front, rear = _PROFILES[body]["overhang_m"]
    if body == "truck":
        wheelbase = 0.58 * length
        front_x = length - front
        axles = [front_x, front_x - wheelbase]
        if length > 9.0:  # tandem rear axle
            axles.append(front_x - wheelbase - 1.35)
        return axles
    if body == "bus":
        front, rear = front * length / 12.0, rear * length / 12.0
    return [length - front, rear]


def _stations(body: str, length: float, axles: list[float], arch_r: float) -> np.ndarray:
    """Loft stations (m from the rear): uniform, profile knots, and dense around the arches."""
    lo, hi = _ENDS_INSET_M, length - _ENDS_INSET_M
    xs = [np.linspace(lo, hi, 48)]
    xs.append(np.clip(np.array([k[0] for k in _PROFILES[body]["top"]]) * length, lo, hi))
    for a in axles:
        xs.append(a + arch_r * np.cos(np.linspace(np.pi, 0.0, 13)))
    x = np.unique(np.round(np.clip(np.concatenate(xs), lo, hi), 4))
    return x


def _half_width(body: str, xn: np.ndarray, half_w: float) -> np.ndarray:
    """Body half-width along the length, rounded in plan view near both ends."""
    edge = np.clip((np.abs(2.0 * xn - 1.0) - 0.8) / 0.2, 0.0, 1.0)
    amount = 0.03 if body in ("truck", "bus", "van") else 0.10
    return half_w * (1.0 - amount * edge**2)


def _sections(body: str, length: float, width: float, height: float):
    """Stations x [S], section vertices [S, 11, 3] (x, y, z from the ground), per-station
    flags (cabin, top glass, side glass) and the wheel geometry."""
    prof = _PROFILES[body]
    wheel_r, tire_w = prof["wheel_m"]
    wheel_r = min(wheel_r, 0.2 * height)
    axles = _axles(body, length)
    arch_r = wheel_r + 0.06
    x = _stations(body, length, axles, arch_r)
    xn = x / length
    crown = 0.02 * min(width, 2.0)
    z_top = _lerp_profile(prof["top"], xn) * (height - crown)
    cabin = _in(xn, prof["cabin"])
    wb = _half_width(body, xn, 0.5 * width)
    clear = np.full(len(x), prof["clear_m"])
    for a in axles:
        dx = np.clip(np.abs(x - a) / arch_r, 0.0, 1.0)
        arch = wheel_r + arch_r * np.sqrt(1.0 - dx**2)
        clear = np.where(np.abs(x - a) < arch_r, np.maximum(clear, arch), clear)
    belt = np.where(cabin, prof["belt"] * height, z_top - 0.04 * height)
    belt = np.minimum(belt, z_top - 0.02)
    clear = np.minimum(clear, belt - 0.05)
    roof_band = 0.05 * height if body != "bus" else 0.12 * height
    z3 = np.where(cabin, np.maximum(z_top - roof_band, belt + 0.01), z_top - 0.02)
    w3 = np.where(cabin, prof["tumble"] * wb, 0.97 * wb)
    w4 = np.where(cabin & (body != "bus"), 0.93 * w3, 0.95 * wb)
    half = [  # right half, bottom to top: (y, z)
        (0.94 * wb, clear),
        (wb, clear + 0.25 * (belt - clear)),
        (wb, belt),
        (w3, z3),
        (w4, z_top),
    ]
    ring = half + [(np.zeros_like(wb), z_top + crown)] + [(-y, z) for y, z in reversed(half)]
    verts = np.stack([np.stack([x, y, z], axis=1) for y, z in ring], axis=1)  # [S, 11, 3]
    top_glass = np.zeros(len(x), dtype=bool)
    for stretch in prof["top_glass"]:
        top_glass |= _in(xn, stretch)
    side_glass = _in(xn, prof["side_glass"]) & cabin
    return x, verts, top_glass, side_glass, (axles, wheel_r, tire_w, arch_r)


def _pillar(body: str, length: float, x_mid: float) -> bool:
    """Whether a side quad centred at ``x_mid`` (m from the rear) is a pillar between windows:
    a car's B pillar (12 cm) or a bus's window posts (every 1.25 m, 15 cm)."""
    every = _PILLAR_EVERY_M.get(body)
    if every is not None:
        return x_mid % every < 0.15
    if body in ("sedan", "hatchback", "suv"):
        stretch = _PROFILES[body]["side_glass"]
        return abs(x_mid - 0.5 * (stretch[0] + stretch[1]) * length) < 0.06
    return False


def _cylinder_y(center: np.ndarray, radius: float, width: float, sides: int = 12):
    """Vertices [2 * sides + 2, 3] and outward triangles [4 * sides, 3] of a cylinder whose
    axis is y."""
    a = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = np.stack([radius * np.cos(a), np.zeros(sides), radius * np.sin(a)], axis=1)
    half = np.array([0.0, 0.5 * width, 0.0])
    left, right = ring + half, ring - half
    v = np.concatenate([left, right, [[0, 0.5 * width, 0], [0, -0.5 * width, 0]]]) + center
    i = np.arange(sides)
    j = (i + 1) % sides
    cl, cr = 2 * sides, 2 * sides + 1
    tris = np.concatenate(
        [
            np.stack([i, j, sides + j], 1),
            np.stack([i, sides + j, sides + i], 1),
            np.stack([np.full(sides, cl), j, i], 1),
            np.stack([np.full(sides, cr), sides + i, sides + j], 1),
        ]
    )
    return v, tris


def box_mesh(lo: tuple[float, ...], hi: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box from ``lo`` to ``hi`` (3 each): vertices [8, 3], triangles [12, 3]."""
    c = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
    v = np.asarray(lo) + c * (np.asarray(hi) - np.asarray(lo))
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [(a, b, c_) for a, b, c_, _ in quads] + [(a, c_, d) for a, _, c_, d in quads]
    return v, np.array(tris, dtype=np.int64)


def _cap(ring: np.ndarray, glass_from_z: float | None):
    """Triangles of an end cap (convex ring [11, 3] at one x): a fan, split at
    ``glass_from_z`` into a body part and a glass part above it. Returns vertices, triangles,
    materials."""
    if glass_from_z is None or not ring[:, 2].min() < glass_from_z < ring[:, 2].max():
        parts = [(ring, OWN)]
    else:
        below, above = _split(ring, glass_from_z)
        parts = [(below, OWN), (above, _MAT["glass"])]
    verts, tris, mats = [], [], []
    n = 0
    for poly, mat in parts:
        centre = poly.mean(axis=0)
        k = len(poly)
        verts += [poly, centre[None]]
        idx = np.arange(k)
        tris.append(np.stack([np.full(k, n + k), n + idx, n + (idx + 1) % k], axis=1))
        mats.append(np.full(k, mat))
        n += k + 1
    return np.concatenate(verts), np.concatenate(tris), np.concatenate(mats)


def _split(ring: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A convex polygon [K, 3] cut by the plane at height z: (part below, part above)."""
    below, above = [], []
    k = len(ring)
    for i in range(k):
        p, q = ring[i], ring[(i + 1) % k]
        (below if p[2] <= z else above).append(p)
        if (p[2] - z) * (q[2] - z) < 0.0:
            t = (z - p[2]) / (q[2] - p[2])
            cut = p + t * (q - p)
            below.append(cut)
            above.append(cut)
    return np.array(below), np.array(above)


def _orient(v: np.ndarray, tris: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Triangles [T, 3] flipped where needed so that normals point away from ``inside`` [T, 3]."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    n = np.cross(b - a, c - a)
    flip = np.einsum("ij,ij->i", n, (a + b + c) / 3.0 - inside) < 0.0
    out = tris.copy()
    out[flip] = out[flip][:, ::-1]
    return out


@lru_cache(maxsize=1024)
def _body_mesh_cached(body: str, dims: tuple[float, float, float]):
    length, width, height = dims
    x, sec, top_glass, side_glass, (axles, wheel_r, tire_w, arch_r) = _sections(
        body, length, width, height
    )
    s, k = sec.shape[:2]
    verts = [sec.reshape(-1, 3)]
    # The ring runs counter-clockwise in (y, z) seen from the front and stations go forward, so
    # (a, b, c), (a, c, d) face outward everywhere on the loft; caps and parts get _orient.
    tris, mats, insides = [], [], []
    glass = _MAT["glass"]
    for i in range(s - 1):
        for e in range(k):  # edge e joins ring vertices e and e + 1 (k - 1 joins back to 0)
            a, b = i * k + e, i * k + (e + 1) % k
            c, d = (i + 1) * k + (e + 1) % k, (i + 1) * k + e
            mat = OWN
            both = slice(i, i + 2)
            side = (
                e in (2, k - 4)  # belt -> glass top, each side
                and side_glass[both].all()
                and not _pillar(body, length, 0.5 * (x[i] + x[i + 1]))
            )
            top = 3 <= e <= k - 5 and top_glass[both].all()  # across the top
            if side or top:
                mat = glass
            tris += [(a, b, c), (a, c, d)]
            mats += [mat, mat]
    loft = len(tris)
    n = len(verts[0])
    prof = _PROFILES[body]
    for ring, glass_z, sign in (
        (sec[-1], prof["cap_glass"][0], 1),
        (sec[0], prof["cap_glass"][1], -1),
    ):
        cv, ct, cm = _cap(ring, None if glass_z is None else glass_z * height)
        verts.append(cv)
        tris += [tuple(t) for t in (ct + n)]
        mats += cm.tolist()
        insides += [ring.mean(axis=0) - [sign * 1.0, 0.0, 0.0]] * len(ct)
        n += len(cv)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    y_wheel = 0.5 * width - 0.5 * tire_w - 0.01
    for a in axles:
        for side in (-1.0, 1.0):
            parts.append(
                (
                    *_cylinder_y(np.array([a, side * y_wheel, wheel_r]), wheel_r, tire_w),
                    _MAT["tire_rubber"],
                )
            )
        inner = 0.5 * width - tire_w - 0.05
        parts.append(
            (
                *box_mesh(
                    (a - 0.7 * arch_r, -inner, 0.6 * wheel_r),
                    (a + 0.7 * arch_r, inner, wheel_r + 0.8 * arch_r),
                ),
                _MAT["metal"],
            )
        )
    plate_z = (0.30 if body in ("truck", "bus") else 0.42) * height
    for xa, xb, zc in (
        (length - _ENDS_INSET_M, length, plate_z * 0.8),
        (0.0, _ENDS_INSET_M, plate_z),
    ):
        parts.append(
            (*box_mesh((xa, -0.26, zc - 0.055), (xb, 0.26, zc + 0.055)), _MAT["retroreflector"])
        )
    for side in (-1.0, 1.0):  # rear reflex reflectors
        y = side * (0.5 * width - 0.2)
        parts.append(
            (
                *box_mesh(
                    (0.0, y - 0.08, 0.45 * height - 0.03),
                    (_ENDS_INSET_M, y + 0.08, 0.45 * height + 0.03),
                ),
                _MAT["retroreflector"],
            )
        )
    for pv, pt, mat in parts:
        centre = pv.mean(axis=0)
        verts.append(pv)
        tris += [tuple(t) for t in (pt + n)]
        mats += [mat] * len(pt)
        insides += [centre] * len(pt)
        n += len(pv)
    v = np.concatenate(verts)
    t = np.array(tris, dtype=np.int64)
    t[loft:] = _orient(v, t[loft:], np.array(insides))
    v = v - [0.5 * length, 0.0, 0.5 * height]  # box centre at the origin
    return v, t, np.array(mats, dtype=np.int16)


def body_mesh(
    body: str, length: float, width: float, height: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh of a vehicle body in its box frame (centre at the origin, x forward): vertices
    float64 [V, 3], outward triangles int64 [T, 3] and per-triangle materials int16 [T]
    (index into ``MATERIAL_NAMES``, ``OWN`` = -1 for the object's own paint).

    Raises:
        KeyError: unknown body type.
    """
    _PROFILES[body]
    dims = (round(float(length), 4), round(float(width), 4), round(float(height), 4))
    return _body_mesh_cached(body, dims)
