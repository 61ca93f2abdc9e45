"""The raycasting world of a scene: every object as a triangle mesh in an open3d
``RaycastingScene`` (Embree BVH), queried by the lidar, the camera, the ground truth and planners.

Object ``i`` of ``scene.objects`` is geometry ``i``: a box (12 triangles), a z-aligned elliptic
cylinder or an ellipsoid filling the object's box. ``cast`` returns, per ray, the distance to the
first hit along the normalised direction (metres, ``inf`` for a miss) and the index of the object
hit (-1 for a miss). Meshes are double-sided for the ray test, so a ray starting inside an object
hits its inside face.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import open3d as o3d

from geometry.transforms import rotation_z
from sim.materials import REFLECTIVITY
from sim.scene import Scene, SceneObject

CYLINDER_RESOLUTION = 16  # facets around a pole or trunk
SPHERE_RESOLUTION = 10  # open3d sphere resolution for tree crowns


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
    """

    t_hit: np.ndarray  # [N]
    object_index: np.ndarray  # [N]
    normals: np.ndarray  # [N, 3]


@cache
def _unit_mesh(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] (inside the unit cube centred at 0) and triangles [T, 3] of a shape."""
    if shape == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        mesh.translate((-0.5, -0.5, -0.5))
    elif shape == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(0.5, 1.0, CYLINDER_RESOLUTION, 1)
    else:
        mesh = o3d.geometry.TriangleMesh.create_sphere(0.5, SPHERE_RESOLUTION)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.uint32)


def object_mesh(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    """World-frame vertices float64 [V, 3] and triangles uint32 [T, 3] of one object."""
    unit_vertices, triangles = _unit_mesh(obj.shape)
    b = obj.box_array
    vertices = rotate(rotation_z(b[6]), unit_vertices * b[3:6]) + b[:3]
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
        reflectivity: float64 [M] lidar reflectivity of each object's material.
    """

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._raycaster = o3d.t.geometry.RaycastingScene()
        ids = []
        for obj in scene.objects:
            vertices, triangles = object_mesh(obj)
            ids.append(
                self._raycaster.add_triangles(
                    o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles)
                )
            )
        # Geometry id -> object index (ids are 0..M-1 today; the table keeps that an
        # implementation detail of open3d rather than an assumption).
        self._id_to_index = np.full(max(ids, default=-1) + 2, -1, dtype=np.int32)
        self._id_to_index[np.asarray(ids, dtype=np.int64)] = np.arange(len(ids), dtype=np.int32)
        self.colors = np.array([o.color for o in scene.objects], dtype=np.float64).reshape(-1, 3)
        self.reflectivity = np.array(
            [REFLECTIVITY[o.material] for o in scene.objects], dtype=np.float64
        )

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
        return RayHits(t_hit, index, normals)

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t_hit [N] float64 metres or inf, object_index [N] int32 or -1)`` of the rays."""
        hits = self.cast_hits(origins, directions)
        return hits.t_hit, hits.object_index
