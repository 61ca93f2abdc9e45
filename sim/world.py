"""The raycasting world of a scene: every object as a triangle mesh in an open3d
``RaycastingScene`` (Embree BVH), queried by the lidar, the camera, the ground truth and planners.

Object ``i`` of ``scene.objects`` is geometry ``i``: a box (12 triangles), a z-aligned elliptic
cylinder, an ellipsoid or a cone filling the object's box, or a composite mesh inside it (vehicle
bodies, ``sim/vehicles.py``; pedestrians, cyclists, fences, benches, ``sim/actors.py``) whose
triangles carry their own materials (glass, tyres, plates). ``cast`` returns, per ray, the
distance to the first hit along the normalised direction (metres, ``inf`` for a miss) and the
index of the object hit (-1 for a miss); ``cast_hits`` adds the surface normal and the material
hit. Meshes are double-sided for the ray test, so a ray starting inside an object hits its inside
face. On a sloped scene (``scene.terrain``) the ground, road, sidewalks and markings are
tessellated into cells of at most ``SURFACE_CELL_M`` and draped over the surface, and every other
mesh is sheared by ``h(vertex) - h(box centre)`` (its box already sits on the surface).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import open3d as o3d

from geometry.transforms import rotation_z
from sim.actors import actor_mesh
from sim.materials import (
    ACTOR_SHAPES,
    BODY_SHAPES,
    MATERIAL_NAMES,
    PART_COLORS,
    REFLECTIVITY,
    RETURN_PROBABILITY,
)
from sim.scene import Scene, SceneObject
from sim.terrain import Terrain
from sim.vehicles import body_mesh

CYLINDER_RESOLUTION = 16  # facets around a pole or trunk
SPHERE_RESOLUTION = 10  # open3d sphere resolution for tree crowns
SURFACE_KINDS = frozenset({"ground", "road", "sidewalk", "marking"})  # draped over a terrain
SURFACE_CELL_M = 2.0


class WorldError(ValueError):
    """Rays or transforms given to the world are malformed (wrong shape, NaN)."""


@dataclass(frozen=True)
class RayHits:
    """First hits of N rays.

    Attributes:
        t_hit: float64 [N] distance along the unit direction (m), inf for a miss.
        object_index: int32 [N] index into ``scene.objects``, -1 for a miss.
        normals: float64 [N, 3] unit normal of the surface hit, facing the ray origin
            (zero for a miss).
        material: int16 [N] index into ``sim.materials.MATERIAL_NAMES`` of the surface hit
            (the object's own material or that of the part hit), -1 for a miss.
    """

    t_hit: np.ndarray  # [N]
    object_index: np.ndarray  # [N]
    normals: np.ndarray  # [N, 3]
    material: np.ndarray | None = None  # [N]


@cache
def _unit_mesh(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] (inside the unit cube centred at 0) and triangles [T, 3] of a shape."""
    if shape == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        mesh.translate((-0.5, -0.5, -0.5))
    elif shape == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(0.5, 1.0, CYLINDER_RESOLUTION, 1)
    elif shape == "cone":
        mesh = o3d.geometry.TriangleMesh.create_cone(0.5, 1.0, CYLINDER_RESOLUTION, 1)
        mesh.translate((0.0, 0.0, -0.5))
    else:
        mesh = o3d.geometry.TriangleMesh.create_sphere(0.5, SPHERE_RESOLUTION)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.uint32)


def _grid_box(size: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A box of ``size`` [3] centred at 0 with every face cut into cells of at most
    ``cell_m`` in x and y (so it can be draped over a terrain)."""
    nx, ny = (max(1, int(np.ceil(s / cell_m))) for s in size[:2])
    xs, ys = np.linspace(-0.5, 0.5, nx + 1) * size[0], np.linspace(-0.5, 0.5, ny + 1) * size[1]
    verts, tris = [], []

    def grid(points: np.ndarray, flip: bool) -> None:  # points [A, B, 3]
        a, b = points.shape[:2]
        base = sum(len(v) for v in verts)
        verts.append(points.reshape(-1, 3))
        i, j = np.meshgrid(np.arange(a - 1), np.arange(b - 1), indexing="ij")
        p00, p01 = base + i * b + j, base + i * b + j + 1
        p10, p11 = p00 + b, p01 + b
        t = np.concatenate([np.stack([p00, p10, p11], -1), np.stack([p00, p11, p01], -1)])
        tris.append(t.reshape(-1, 3)[:, ::-1] if flip else t.reshape(-1, 3))

    hz = 0.5 * size[2]
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    for z, flip in ((hz, False), (-hz, True)):
        grid(np.stack([gx, gy, np.full(gx.shape, z)], -1), flip)
    zz = np.array([-hz, hz])
    for y, flip in ((ys[0], False), (ys[-1], True)):
        g1, g2 = np.meshgrid(xs, zz, indexing="ij")
        grid(np.stack([g1, np.full(g1.shape, y), g2], -1), flip)
    for x, flip in ((xs[0], True), (xs[-1], False)):
        g1, g2 = np.meshgrid(ys, zz, indexing="ij")
        grid(np.stack([np.full(g1.shape, x), g1, g2], -1), flip)
    return np.concatenate(verts), np.concatenate(tris).astype(np.uint32)


def object_mesh_materials(
    obj: SceneObject, terrain: Terrain | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World-frame vertices float64 [V, 3], triangles uint32 [T, 3] and per-triangle material
    indices int16 [T] (into ``MATERIAL_NAMES``; the object's own material where the shape has
    no part of its own) of one object, draped over ``terrain`` (module docstring)."""
    b = obj.box_array
    own = MATERIAL_NAMES.index(obj.material)
    sloped = terrain is not None and not terrain.is_flat
    if obj.shape in BODY_SHAPES or obj.shape in ACTOR_SHAPES:
        build = body_mesh if obj.shape in BODY_SHAPES else actor_mesh
        local, triangles, parts = build(obj.shape, *b[3:6])
        materials = np.where(parts < 0, own, parts).astype(np.int16)
    elif sloped and obj.kind in SURFACE_KINDS and obj.shape == "box":
        local, triangles = _grid_box(b[3:6], SURFACE_CELL_M)
        materials = np.full(len(triangles), own, dtype=np.int16)
    else:
        unit_vertices, triangles = _unit_mesh(obj.shape)
        local = unit_vertices * b[3:6]
        materials = np.full(len(triangles), own, dtype=np.int16)
    vertices = rotate(rotation_z(b[6]), local) + b[:3]
    if sloped and terrain is not None:
        lift = terrain.height(vertices[:, 0], vertices[:, 1])
        if obj.kind not in SURFACE_KINDS:
            lift = lift - terrain.height(b[0], b[1])
        vertices[:, 2] += lift
    return vertices, np.asarray(triangles, dtype=np.uint32), materials


def object_mesh(obj: SceneObject, terrain: Terrain | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World-frame vertices float64 [V, 3] and triangles uint32 [T, 3] of one object."""
    vertices, triangles, _ = object_mesh_materials(obj, terrain)
    return vertices, triangles


def rotate(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` [N, 3] rotated by ``rotation`` [3, 3] (``v @ R.T``).

    einsum rather than a BLAS matmul: for tall [N, 3] x [3, 3] products a threaded BLAS spends
    more on waking threads than on the work, 10-50x slower on a loaded 2-core machine.
    """
    return np.einsum("ij,nj->ni", rotation, vectors)


def check_transform(t: np.ndarray, name: str, error: type[ValueError]) -> np.ndarray:
    """Returns ``t`` as float64 [4, 4] or raises ``error`` naming ``name`` (shape, NaN, rows)."""
    arr = np.asarray(t, dtype=np.float64)
    if arr.shape != (4, 4):
        raise error(f"{name} must be a 4x4 transform, got shape {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise error(f"{name} contains NaN or Inf")
    if not np.allclose(arr[3], [0.0, 0.0, 0.0, 1.0]) or not np.allclose(
        arr[:3, :3] @ arr[:3, :3].T, np.eye(3), atol=1e-6
    ):
        raise error(f"{name} is not a rigid transform (rotation not orthonormal or bad last row)")
    return arr


def check_rays(origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 origins [N, 3] (broadcast from [3]) and unit directions [N, 3].

    Raises:
        WorldError: wrong shapes, NaN/Inf, or a zero direction.
    """
    d = np.asarray(directions, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise WorldError(f"directions must have shape [N, 3], got {list(d.shape)}")
    o = np.broadcast_to(np.asarray(origins, dtype=np.float64), d.shape)
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(d))):
        raise WorldError("ray origins/directions contain NaN or Inf")
    norm = np.linalg.norm(d, axis=1, keepdims=True)  # [N, 1]
    if np.any(norm < 1e-12):
        raise WorldError("ray directions must be non-zero")
    return o, d / norm


class World:
    """The open3d raycasting scene of ``scene`` (built once; rebuild for a moved scene).

    Attributes:
        scene: the scene the world was built from.
        colors: float64 [M, 3] albedo of each object (camera colour).
        own_material: int16 [M] index into ``MATERIAL_NAMES`` of each object's material.
        part_colors: float64 [K, 3] fixed albedo of parts made of each material (NaN: none).
        reflectivity: float64 [M] lidar reflectivity of each object's material.
        material_reflectivity: float64 [K] reflectivity of each of ``MATERIAL_NAMES``.
        material_return_probability: float64 [K] chance that a beam returns from each material
            (``sim.materials.RETURN_PROBABILITY``).
    """

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._raycaster = o3d.t.geometry.RaycastingScene()
        ids, materials = [], []
        for obj in scene.objects:
            vertices, triangles, tri_material = object_mesh_materials(obj, scene.terrain)
            materials.append(tri_material)
            ids.append(
                self._raycaster.add_triangles(
                    o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles)
                )
            )
        self._tri_material = np.concatenate(materials or [np.zeros(0, np.int16)])  # [T total]
        self._tri_offset = np.cumsum([0] + [len(m) for m in materials])[:-1]  # [M]
        # Geometry id -> object index (ids are 0..M-1 today; the table keeps that an
        # implementation detail of open3d rather than an assumption).
        self._id_to_index = np.full(max(ids, default=-1) + 2, -1, dtype=np.int32)
        self._id_to_index[np.asarray(ids, dtype=np.int64)] = np.arange(len(ids), dtype=np.int32)
        self.colors = np.array([o.color for o in scene.objects], dtype=np.float64).reshape(-1, 3)
        self.reflectivity = np.array(
            [REFLECTIVITY[o.material] for o in scene.objects], dtype=np.float64
        )
        self.own_material = np.array(
            [MATERIAL_NAMES.index(o.material) for o in scene.objects], dtype=np.int16
        )
        # Colour of the parts of composite shapes (glass, tyres, ...); NaN: the object's colour.
        self.part_colors = np.array(
            [PART_COLORS.get(m, (np.nan,) * 3) for m in MATERIAL_NAMES], dtype=np.float64
        )
        self.material_reflectivity = np.array([REFLECTIVITY[m] for m in MATERIAL_NAMES])
        self.material_return_probability = np.array([RETURN_PROBABILITY[m] for m in MATERIAL_NAMES])

    def cast_hits(self, origins: np.ndarray, directions: np.ndarray) -> RayHits:
        """First hits of rays ``origins`` [N, 3] or [3] along ``directions`` [N, 3].

        Raises:
            WorldError: malformed rays (see ``check_rays``).
        """
        o, d = check_rays(origins, directions)
        rays = np.concatenate([o, d], axis=1).astype(np.float32)  # [N, 6]
        out = self._raycaster.cast_rays(o3d.core.Tensor(rays))
        t_hit = out["t_hit"].numpy().astype(np.float64)  # [N]
        gid = out["geometry_ids"].numpy().astype(np.int64)  # [N]
        hit = np.isfinite(t_hit)
        index = np.full(len(d), -1, dtype=np.int32)
        index[hit] = self._id_to_index[np.minimum(gid[hit], len(self._id_to_index) - 1)]
        normals = out["primitive_normals"].numpy().astype(np.float64)  # [N, 3]
        flip = np.sum(normals * d, axis=1) > 0.0  # make normals face the ray origin
        normals[flip] *= -1.0
        normals[~hit] = 0.0
        material = np.full(len(d), -1, dtype=np.int16)
        if np.any(hit):
            prim = out["primitive_ids"].numpy().astype(np.int64)[hit]
            material[hit] = self._tri_material[self._tri_offset[index[hit]] + prim]
        return RayHits(t_hit, index, normals, material)

    def albedo(
        self,
        object_index: np.ndarray,  # [N] >= 0
        material: np.ndarray | None = None,  # [N] material hit, or None
    ) -> np.ndarray:
        """Albedo [N, 3]: the object's colour, or the part's (glass, tyre, ...) where the
        material hit is not the object's own and has a fixed colour."""
        color = self.colors[object_index]
        if material is None or len(color) == 0:
            return color
        part = self.part_colors[material]
        use = (material != self.own_material[object_index]) & np.isfinite(part[:, 0])
        color = color.copy()
        color[use] = part[use]
        return color

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t_hit [N] float64 metres or inf, object_index [N] int32 or -1)`` of the rays."""
        hits = self.cast_hits(origins, directions)
        return hits.t_hit, hits.object_index
