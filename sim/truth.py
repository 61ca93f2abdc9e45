"""Per-frame ground truth and the occlusion ratio used by CROA (arXiv 2412.18453).

Occlusion ratio of a box from a sensor origin ``o`` (the exact definition, used everywhere in
robomr: dataset labels, the scenario generator and planners' checks):

1. Sample the faces of the box that face the sensor (outward normal ``n`` with
   ``n . (o - face_centre) > 0``) on a regular grid of cells of side <= ``spacing_m``; the
   sample ``p_i`` is the centre of cell ``i``, of area ``a_i``.
2. Weight each sample by the solid angle its cell subtends at ``o``:
   ``w_i = a_i * n . (o - p_i) / |o - p_i|^3``.
3. Cast the ray from ``o`` toward ``p_i``. It is *blocked* when the world's first hit is closer
   than ``|o - p_i| - 1 cm`` and is not the box's own object (``ignore_index``).
4. ``occlusion = sum_i w_i blocked_i / sum_i w_i`` in [0, 1].

So the ratio is the blocked fraction of the box's apparent solid angle: the fraction of a dense,
angularly uniform lidar's rays toward the box that hit other geometry first. Self-occlusion by
the box's own back faces is not occlusion (back faces are never sampled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.transforms import invert_transform, rotation_z
from sim.lidar import LidarScan
from sim.materials import CLASSES
from sim.world import World, check_transform, rotate

BLOCK_MARGIN_M = 0.01  # a hit this close to the sample point is the sample's own surface


class TruthError(ValueError):
    """Bad input to the ground truth (sensor inside a box, NaN pose, bad spacing)."""


def visible_face_samples(
    origin: np.ndarray,  # [3]
    boxes: np.ndarray,  # [M, 7]
    spacing_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples on the sensor-facing faces of each box: points [S, 3], solid-angle weights [S]
    (steradians) and the index of the box of each sample, int64 [S].

    Raises:
        TruthError: spacing not in (0, 10] m, NaN inputs, or the origin inside a box.
    """
    o = np.asarray(origin, dtype=np.float64).reshape(3)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    if not 0.0 < spacing_m <= 10.0:
        raise TruthError(f"spacing_m={spacing_m}: must be in (0, 10]")
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(b))):
        raise TruthError("sensor origin or boxes contain NaN or Inf")
    points, weights, group = [], [], []
    for k, box in enumerate(b):
        axes = rotation_z(box[6]).T  # rows: the box's x, y, z axes in the world
        half = 0.5 * box[3:6]
        faces = 0
        for axis in range(3):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            nu = max(1, int(np.ceil(2.0 * half[u_axis] / spacing_m)))
            nv = max(1, int(np.ceil(2.0 * half[v_axis] / spacing_m)))
            su = (np.arange(nu) + 0.5) / nu * 2.0 - 1.0  # cell centres in [-1, 1]
            sv = (np.arange(nv) + 0.5) / nv * 2.0 - 1.0
            grid_u, grid_v = (g.ravel() for g in np.meshgrid(su, sv, indexing="ij"))
            area = 4.0 * half[u_axis] * half[v_axis] / (nu * nv)
            for sign in (1.0, -1.0):
                normal = sign * axes[axis]
                centre = box[:3] + half[axis] * normal
                if normal @ (o - centre) <= 0.0:
                    continue
                faces += 1
                p = (
                    centre
                    + np.outer(grid_u * half[u_axis], axes[u_axis])
                    + np.outer(grid_v * half[v_axis], axes[v_axis])
                )
                rel = o - p  # [S_f, 3]
                dist = np.linalg.norm(rel, axis=1)
                points.append(p)
                weights.append(area * np.einsum("nj,j->n", rel, normal) / dist**3)
                group.append(np.full(len(p), k, dtype=np.int64))
        if faces == 0:
            raise TruthError(f"sensor origin {o.tolist()} is inside box {k} ({box.tolist()})")
    if not points:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(points), np.concatenate(weights), np.concatenate(group)


def blocked_rays(
    world: World,
    origin: np.ndarray,  # [3]
    points: np.ndarray,  # [S, 3]
    ignore_index: np.ndarray,  # [S] object index that does not block each ray (-1: none)
) -> np.ndarray:
    """Bool [S]: the ray from ``origin`` to each point hits other geometry first."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    t_hit, index = world.cast(origin, points - origin)
    dist = np.linalg.norm(points - origin, axis=1)
    return (t_hit < dist - BLOCK_MARGIN_M) & (index != ignore_index)


def occlusion_ratios(
    world: World,
    sensor_origin_world: np.ndarray,  # [3]
    boxes: np.ndarray,  # [M, 7] world frame
    ignore_indices: np.ndarray | None = None,  # [M] scene index of each box's own object, or -1
    spacing_m: float = 0.2,
) -> np.ndarray:
    """Occlusion ratio (module docstring) of each box, float64 [M] in [0, 1]."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    ignore = np.full(len(b), -1) if ignore_indices is None else np.asarray(ignore_indices)
    points, weights, group = visible_face_samples(sensor_origin_world, b, spacing_m)
    blocked = blocked_rays(
        world, np.asarray(sensor_origin_world, np.float64), points, ignore[group]
    )
    total = np.bincount(group, weights=weights, minlength=len(b))
    hidden = np.bincount(group, weights=weights * blocked, minlength=len(b))
    return np.clip(hidden / np.maximum(total, 1e-300), 0.0, 1.0)


def occlusion_ratio(
    world: World,
    sensor_origin_world: np.ndarray,  # [3]
    box: np.ndarray,  # [7] world frame
    ignore_index: int = -1,
    spacing_m: float = 0.2,
) -> float:
    """Occlusion ratio of one box from a sensor origin; pass the box's own scene index as
    ``ignore_index`` when the box is an object of the world (e.g. ``scene.target_index``)."""
    return float(
        occlusion_ratios(
            world, sensor_origin_world, np.reshape(box, (1, 7)), np.array([ignore_index]), spacing_m
        )[0]
    )


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one lidar frame; vehicles in scene order.

    Attributes:
        names: [M] scene names of the vehicles.
        object_indices: int64 [M] index of each vehicle in ``scene.objects``.
        boxes: float32 [M, 7] vehicle boxes in the lidar frame.
        labels: int32 [M] index into ``CLASSES``.
        occlusion: float32 [M] occlusion ratio from the lidar origin (module docstring).
        num_points: int32 [M] scan points whose ray hit the vehicle.
        visible: bool [M] ``num_points >= min_visible_points``.
        point_object: int32 [N] vehicle index (into the arrays above) of each scan point, -1
            for ground and static objects.
        target_index: index of the scene's target among the vehicles, -1 if none.
    """

    names: tuple[str, ...]
    object_indices: np.ndarray  # [M]
    boxes: np.ndarray  # [M, 7]
    labels: np.ndarray  # [M]
    occlusion: np.ndarray  # [M]
    num_points: np.ndarray  # [M]
    visible: np.ndarray  # [M]
    point_object: np.ndarray  # [N]
    target_index: int


def boxes_to_frame(T_frame_world: np.ndarray, boxes_world: np.ndarray) -> np.ndarray:
    """Boxes [M, 7] expressed in another frame (yaw of the box x axis projected on its xy)."""
    b = np.asarray(boxes_world, dtype=np.float64).reshape(-1, 7)
    out = b.copy()
    out[:, :3] = rotate(T_frame_world[:3, :3], b[:, :3]) + T_frame_world[:3, 3]
    heading = np.stack([np.cos(b[:, 6]), np.sin(b[:, 6]), np.zeros(len(b))], axis=1)
    heading = rotate(T_frame_world[:3, :3], heading)  # [M, 3]
    out[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    return out


def ground_truth(
    world: World,
    T_world_lidar: np.ndarray,  # [4, 4]
    scan: LidarScan,
    spacing_m: float = 0.2,
    min_visible_points: int = 5,
) -> FrameTruth:
    """Ground truth of the vehicles of ``world.scene`` for a scan taken at ``T_world_lidar``.

    Raises:
        TruthError: malformed pose, bad spacing, or the lidar inside a vehicle.
    """
    T = check_transform(T_world_lidar, "T_world_lidar", TruthError)
    scene = world.scene
    vehicles = scene.vehicle_indices()  # [M]
    boxes_world = scene.boxes()[vehicles]  # [M, 7]
    to_vehicle = np.full(len(scene.objects) + 1, -1, dtype=np.int32)  # scene index -> vehicle
    to_vehicle[vehicles] = np.arange(len(vehicles), dtype=np.int32)
    point_object = to_vehicle[scan.object_index]  # -1 (miss) maps via the extra last slot
    num_points = np.bincount(point_object[point_object >= 0], minlength=len(vehicles))
    occlusion = occlusion_ratios(world, T[:3, 3], boxes_world, vehicles, spacing_m)
    target = scene.target_index
    return FrameTruth(
        names=tuple(scene.objects[i].name for i in vehicles),
        object_indices=vehicles,
        boxes=boxes_to_frame(invert_transform(T), boxes_world).astype(np.float32),
        labels=np.array([CLASSES.index(scene.objects[i].kind) for i in vehicles], dtype=np.int32),
        occlusion=occlusion.astype(np.float32),
        num_points=num_points.astype(np.int32),
        visible=num_points >= min_visible_points,
        point_object=point_object.astype(np.int32),
        target_index=int(to_vehicle[target]) if target >= 0 else -1,
    )
