"""Bird's-eye-view picture of a scene (matplotlib, Agg canvas; no display needed).

Objects are drawn as footprints in their own colours (tree crowns translucent), the target with
a red outline, the ego as its footprint and heading arrow, and lidar points (optional) coloured
by the object they hit: grey for drivable surfaces, a categorical colour per other object, red
for the target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon

from sim.lidar import LidarScan
from sim.materials import NON_OBSTACLE_KINDS
from sim.placement import footprint
from sim.scene import Scene
from sim.world import rotate

_DRAW_ORDER = (
    "ground",
    "road",
    "sidewalk",
    "marking",
    "building",
    "bin",
    "barrier",
    "scooter",
    "fence",
    "hedge",
    "bush",
    "bench",
    "bollard",
    "cone",
    "bicycle",
    "sign",
    "pedestrian",
    "cyclist",
    "pole",
    "tree_trunk",
    "car",
    "van",
    "truck",
    "bus",
    "tree_crown",
)


class ShowError(ValueError):
    """Bad arguments for the picture (scan without pose, bad window, bad output path)."""


def _window(scene: Scene, ego_xy: np.ndarray) -> tuple[float, float, float, float]:
    lanes_y = [abs(ln.center_y_m) + 0.5 * ln.width_m for ln in scene.lanes]
    half_y = max(lanes_y, default=10.0) + 8.0
    x0, x1 = scene.street_x_range_m
    return max(x0, ego_xy[0] - 20.0), min(x1, ego_xy[0] + 60.0), -half_y, half_y


def draw_scene(
    scene: Scene,
    out_path: str | Path,
    ego_pose: tuple[float, float, float] | None = None,
    scan: LidarScan | None = None,
    T_world_lidar: np.ndarray | None = None,  # [4, 4], required with scan
    robot_size_m: tuple[float, float] = (4.5, 1.9),
    window_m: tuple[float, float, float, float] | None = None,
    title: str | None = None,
) -> Path:
    """Writes a PNG of the scene around the ego (default: ``scene.ego_start``); returns its path.

    Raises:
        ShowError: ``scan`` without ``T_world_lidar``, an empty window, or an unwritable path.
    """
    if scan is not None and T_world_lidar is None:
        raise ShowError("a scan needs its T_world_lidar to be drawn in the map frame")
    ego = np.asarray(ego_pose if ego_pose is not None else scene.ego_start, dtype=np.float64)
    x0, x1, y0, y1 = window_m or _window(scene, ego[:2])
    if not (x1 > x0 and y1 > y0):
        raise ShowError(f"window_m={(x0, x1, y0, y1)}: needs x_min < x_max and y_min < y_max")
    fig = Figure(figsize=(12.0, 12.0 * (y1 - y0) / (x1 - x0) + 0.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    order = sorted(
        range(len(scene.objects)), key=lambda i: _DRAW_ORDER.index(scene.objects[i].kind)
    )
    for i in order:
        obj = scene.objects[i]
        is_target = obj.name == scene.target_name
        style = {
            "facecolor": obj.color,
            "alpha": 0.45 if obj.kind == "tree_crown" else 1.0,
            "edgecolor": "red" if is_target else "black",
            "linewidth": 2.5 if is_target else 0.3 if obj.is_vehicle else 0.0,
        }
        if obj.shape not in ("cylinder", "cone", "ellipsoid"):
            ax.add_patch(Polygon(footprint(obj.box_array), closed=True, **style))
        else:
            ax.add_patch(
                Ellipse(
                    obj.box[:2],
                    obj.box[3],
                    obj.box[4],
                    angle=float(np.degrees(obj.box[6])),
                    **style,
                )
            )
        if is_target:
            ax.annotate(
                "target",
                obj.box[:2],
                xytext=(0, 18),
                textcoords="offset points",
                color="red",
                ha="center",
                weight="bold",
            )
    robot = np.array([ego[0], ego[1], 0.8, *robot_size_m, 1.6, ego[2]])
    ax.add_patch(
        Polygon(footprint(robot), closed=True, facecolor="none", edgecolor="magenta", linewidth=2.0)
    )
    ax.arrow(
        ego[0],
        ego[1],
        3.0 * np.cos(ego[2]),
        3.0 * np.sin(ego[2]),
        width=0.25,
        color="magenta",
        length_includes_head=True,
    )
    if scan is not None and T_world_lidar is not None:
        pts = rotate(T_world_lidar[:3, :3], scan.points[:, :3].astype(np.float64))
        pts += T_world_lidar[:3, 3]
        cmap = colormaps["tab20"]
        palette = np.array([cmap(i % 20) for i in range(len(scene.objects))])  # [M, 4]
        drivable = {*NON_OBSTACLE_KINDS, "sidewalk"}
        palette[[o.kind in drivable for o in scene.objects]] = (0.45, 0.45, 0.45, 0.5)
        colors = palette[scan.object_index]  # [N, 4]
        colors[scan.object_index == scene.target_index] = (1.0, 0.0, 0.0, 1.0)
        ax.scatter(pts[:, 0], pts[:, 1], s=0.6, c=colors, linewidths=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or f"{scene.name} (seed {scene.seed})")
    fig.tight_layout()
    out = Path(out_path)
    try:
        fig.savefig(out)
    except OSError as err:
        raise ShowError(f"cannot write {out}: {err.strerror or err}") from err
    return out
