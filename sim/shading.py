"""Surface shading shared by the camera and the Gaussian-splatting samples.

The colour of a surface point ``p`` with outward normal ``n`` on an object of albedo ``a`` is

    c(p) = a * (ambient + (1 - ambient) * max(0, n . s) * lit(p))

with ``s`` the unit direction toward the sun and ``lit(p) = 1`` unless the ray from ``p`` toward
the sun hits geometry (a hard shadow). It does not depend on the viewing direction, so the
coloured samples of ``surface_samples`` are exactly what the camera shows at those points: the
Gaussian-splatting model built from them (GSRMR, arXiv 2504.13697) can match the camera up to
sampling and rasterisation error. Rays that miss everything see the sky, a vertical gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.scene import Scene, SceneObject
from sim.terrain import Terrain
from sim.world import SURFACE_KINDS, World, object_mesh_materials

SHADOW_OFFSET_M = 0.02  # shadow rays start this far off the surface, above float32 ray noise
# The ground box covers the whole scene with its top at z = -0.01 (sim/street.py): surface
# lower than this is under it and can never be seen (e.g. the ground's own bottom face).
UNDERGROUND_Z_M = -0.02


class ShadingError(ValueError):
    """Bad lighting or sampling settings (the message names the field and the limit)."""


@dataclass(frozen=True)
class Lighting:
    """Sun, ambient light and sky.

    Attributes:
        sun_azimuth_deg: azimuth of the sun from +x toward +y (deg), in [-360, 360].
        sun_elevation_deg: elevation of the sun above the horizon (deg), in (0, 90].
        ambient: fraction of the albedo seen without direct sun, in [0, 1].
        shadows: cast hard sun shadows.
        sky_zenith_rgb: sky colour straight up, RGB in [0, 1].
        sky_horizon_rgb: sky colour at the horizon, RGB in [0, 1].
    """

    sun_azimuth_deg: float = 130.0
    sun_elevation_deg: float = 55.0
    ambient: float = 0.4
    shadows: bool = True
    sky_zenith_rgb: tuple[float, float, float] = (0.38, 0.56, 0.85)
    sky_horizon_rgb: tuple[float, float, float] = (0.80, 0.86, 0.93)

    def __post_init__(self) -> None:
        checks = (
            ("sun_azimuth_deg", -360.0, 360.0),
            ("sun_elevation_deg", 1e-3, 90.0),
            ("ambient", 0.0, 1.0),
        )
        for name, lo, hi in checks:
            value = getattr(self, name)
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ShadingError(f"{name}={value!r}: must be in [{lo}, {hi}]")
        for name in ("sky_zenith_rgb", "sky_horizon_rgb"):
            rgb = getattr(self, name)
            if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
                raise ShadingError(f"{name}={rgb!r}: must be 3 values in [0, 1]")

    @property
    def sun_direction(self) -> np.ndarray:
        """Unit vector [3] toward the sun, world frame."""
        az, el = np.deg2rad(self.sun_azimuth_deg), np.deg2rad(self.sun_elevation_deg)
        return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def shade(
    world: World,
    points: np.ndarray,  # [N, 3] world frame
    normals: np.ndarray,  # [N, 3] unit, outward (facing the viewer)
    object_index: np.ndarray,  # [N] index into world.scene.objects
    lighting: Lighting,
    material: np.ndarray | None = None,  # [N] material of the part hit (World.albedo)
) -> np.ndarray:
    """Colour float64 [N, 3] in [0, 1] of surface points (module docstring formula)."""
    sun = lighting.sun_direction
    direct = np.clip(np.einsum("nj,j->n", normals, sun), 0.0, None)  # [N]
    if lighting.shadows and len(points):
        lit_side = np.flatnonzero(direct > 0.0)
        origins = points[lit_side] + SHADOW_OFFSET_M * normals[lit_side]
        t_hit, _ = world.cast(origins, np.broadcast_to(sun, origins.shape))
        direct[lit_side[np.isfinite(t_hit)]] = 0.0
    factor = lighting.ambient + (1.0 - lighting.ambient) * direct
    return np.clip(world.albedo(object_index, material) * factor[:, None], 0.0, 1.0)


def sky_color(directions: np.ndarray, lighting: Lighting) -> np.ndarray:
    """Sky colour [N, 3] seen along unit world directions [N, 3]."""
    up = np.clip(directions[:, 2], 0.0, 1.0)[:, None] ** 0.5
    return (1.0 - up) * np.asarray(lighting.sky_horizon_rgb) + up * np.asarray(
        lighting.sky_zenith_rgb
    )


@dataclass(frozen=True)
class SurfaceSamples:
    """Coloured points on the visible surfaces of a scene.

    Attributes:
        points: float32 [N, 3] world frame (m).
        normals: float32 [N, 3] unit outward normals.
        colors: float32 [N, 3] shaded colour in [0, 1] (``shade``), the camera's colour there.
        object_index: int32 [N] index into ``scene.objects``.
    """

    points: np.ndarray  # [N, 3]
    normals: np.ndarray  # [N, 3]
    colors: np.ndarray  # [N, 3]
    object_index: np.ndarray  # [N]


def _inside(obj: SceneObject, points: np.ndarray, terrain: Terrain) -> np.ndarray:
    """Bool [N]: points [N, 3] inside (or on) an object's primitive shape (composite shapes
    bury nothing: most of their box is air), undoing the terrain drape (``sim/world.py``)."""
    obj_box, shape = obj.box_array, obj.shape
    if shape not in ("box", "cylinder", "ellipsoid", "cone"):
        return np.zeros(len(points), dtype=bool)
    c, s = np.cos(obj_box[6]), np.sin(obj_box[6])
    rel = points - obj_box[:3]
    if not terrain.is_flat:
        rel[:, 2] -= terrain.height(points[:, 0], points[:, 1])
        if obj.kind not in SURFACE_KINDS:
            rel[:, 2] += terrain.height(obj_box[0], obj_box[1])
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
    u = local / (0.5 * obj_box[3:6])  # [N, 3] in the unit cube [-1, 1]^3
    if shape == "box":
        return np.all(np.abs(u) <= 1.0, axis=1)
    if shape in ("cylinder", "cone"):
        return (u[:, 0] ** 2 + u[:, 1] ** 2 <= 1.0) & (np.abs(u[:, 2]) <= 1.0)
    return np.sum(u**2, axis=1) <= 1.0


def _sample_mesh(
    obj: SceneObject, spacing_m: float, rng: np.random.Generator, scene: Scene
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform random points [S, 3], outward normals [S, 3] and part materials [S] on an
    object's mesh, about one per ``spacing_m``^2 (each triangle gets
    floor(area / spacing^2 + U[0, 1)) points)."""
    vertices, triangles, materials = object_mesh_materials(obj, scene.terrain)
    tri = vertices[triangles]  # [T, 3, 3]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # [T, 3]
    area = 0.5 * np.linalg.norm(cross, axis=1)
    count = np.floor(area / spacing_m**2 + rng.random(len(area))).astype(np.int64)
    which = np.repeat(np.arange(len(tri)), count)
    a, b = rng.random((2, len(which)))
    fold = a + b > 1.0  # reflect into the triangle for uniform barycentric samples
    a[fold], b[fold] = 1.0 - a[fold], 1.0 - b[fold]
    t = tri[which]
    points = t[:, 0] + a[:, None] * (t[:, 1] - t[:, 0]) + b[:, None] * (t[:, 2] - t[:, 0])
    normals = cross[which] / np.maximum(2.0 * area[which], 1e-12)[:, None]
    return points, normals, materials[which]


def surface_samples(
    scene: Scene,
    spacing_m: float = 0.2,
    lighting: Lighting | None = None,
    include_moving: bool = False,
    region_xy_m: tuple[float, float, float, float] | None = None,
    seed: int = 0,
) -> SurfaceSamples:
    """Random points, about one per ``spacing_m``^2 of surface, on every object of the scene
    (moving vehicles only if ``include_moving``), inside ``region_xy_m`` = (x_min, x_max,
    y_min, y_max) if given, leaving out surface buried in other objects (e.g. the bottom of a
    car resting on the road). Deterministic for a given ``seed``.

    Raises:
        ShadingError: ``spacing_m`` outside [0.01, 10] or an empty region.
    """
    if not 0.01 <= spacing_m <= 10.0:
        raise ShadingError(f"spacing_m={spacing_m}: must be in [0.01, 10]")
    x0, x1, y0, y1 = region_xy_m or (-np.inf, np.inf, -np.inf, np.inf)
    if not (x0 < x1 and y0 < y1):
        raise ShadingError(f"region_xy_m={region_xy_m}: needs x_min < x_max and y_min < y_max")
    lighting = lighting or Lighting()
    sampled = scene if include_moving else scene.static()
    original = [i for i, o in enumerate(scene.objects) if include_moving or o.speed_mps == 0.0]
    rng = np.random.default_rng(seed)
    boxes = sampled.boxes()
    reach = 0.5 * np.linalg.norm(boxes[:, 3:5], axis=1)  # xy radius bounding each object
    points, normals, owners, parts = [], [], [], []
    for i, obj in enumerate(sampled.objects):
        p, n, m = _sample_mesh(obj, spacing_m, rng, sampled)
        keep = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
        keep &= p[:, 2] >= UNDERGROUND_Z_M + scene.terrain.height(p[:, 0], p[:, 1])
        p, n, m = p[keep], n[keep], m[keep]
        probe = p + 1e-3 * n  # just outside the surface
        order = np.argsort(probe[:, 0], kind="stable")
        sorted_x = probe[order, 0]
        buried = np.zeros(len(p), dtype=bool)
        near = np.flatnonzero(
            np.max(np.abs(boxes[:, :2] - boxes[i, :2]), axis=1) <= reach + reach[i]
        )
        for j in near[near != i]:
            lo, hi = np.searchsorted(sorted_x, [boxes[j, 0] - reach[j], boxes[j, 0] + reach[j]])
            cand = order[lo:hi]
            buried[cand] |= _inside(sampled.objects[j], probe[cand], scene.terrain)
        points.append(p[~buried])
        normals.append(n[~buried])
        parts.append(m[~buried])
        owners.append(np.full(int(np.sum(~buried)), original[i], dtype=np.int32))
    p, n, owner = np.concatenate(points), np.concatenate(normals), np.concatenate(owners)
    local = np.searchsorted(np.asarray(original), owner)  # scene index -> sampled index
    colors = shade(World(sampled), p, n, local, lighting, np.concatenate(parts))
    return SurfaceSamples(
        p.astype(np.float32), n.astype(np.float32), colors.astype(np.float32), owner
    )
