"""Bird's-eye figure of CROA plans (arXiv 2412.18453): obstacles, target, robot start, and each
method's path, final footprint and viewpoint. Uses matplotlib's object API (no pyplot state), so
it renders headless with the Agg canvas; ``robomr bench croa --plot`` will call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from planning.croa.kinematics import base_to_rear
from planning.croa.polygons import rectangle_vertices
from planning.croa.robot import RobotModel
from planning.croa.types import PlanObservation, PlanResult

_MARGIN_M = 6.0  # view: robot, target and paths plus this; obstacles beyond are clipped


def plot_plans(
    observation: PlanObservation,
    results: Mapping[str, PlanResult],
    robot: RobotModel | None = None,
    title: str | None = None,
    path: str | Path | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draws the scene and every result; saves a PNG to ``path`` when given.

    Args:
        observation: the planners' input (obstacles, target, robot start).
        results: method name -> its PlanResult.
        robot: footprint to draw (default RobotModel()).
        title: axes title. ax: draw into this axes instead of a new figure.
    """
    model = robot or RobotModel()
    if ax is None:
        fig = Figure(figsize=(9, 6), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    extent = [observation.robot.as_array()[None, :2]]
    for obstacle in observation.obstacles:
        ax.add_patch(Polygon(obstacle.vertices, closed=True, fc="0.6", ec="0.3", lw=0.8))
    box = observation.target_box
    target = rectangle_vertices(box[:2], np.array(box[6]), box[3], box[4])
    ax.add_patch(Polygon(target, closed=True, fc="tab:red", ec="darkred", label="target"))
    extent.append(target)
    _footprint(ax, observation.robot.as_array(), model, "tab:blue", "-", "robot start")
    colors = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan", "tab:olive"]
    for k, (name, result) in enumerate(results.items()):
        color = colors[k % len(colors)]
        xy = result.trajectory.states[:, :2]
        label = f"{name}: occ {result.predicted_occlusion:.2f} ({result.status.value})"
        ax.plot(xy[:, 0], xy[:, 1], "-", color=color, lw=1.6, label=label)
        _footprint(ax, result.trajectory.states[-1], model, color, "--", None)
        ax.plot(*result.viewpoint_xy_m, "x", color=color, ms=9, mew=2)
        extent.append(xy)
    pts = np.vstack(extent)
    lo, hi = pts.min(axis=0) - _MARGIN_M, pts.max(axis=0) + _MARGIN_M
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper left", fontsize=7)
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path)
    return fig


def _footprint(
    ax: Axes, base_state: np.ndarray, model: RobotModel, color: str, style: str, label: str | None
) -> None:
    rear = base_to_rear(np.asarray(base_state, dtype=np.float64), model)
    centre = rear[:2] + model.rear_to_base_m * np.array([np.cos(rear[2]), np.sin(rear[2])])
    verts = rectangle_vertices(centre, np.array(rear[2]), model.length_m, model.width_m)
    ax.add_patch(Polygon(verts, closed=True, fill=False, ec=color, ls=style, lw=1.4, label=label))
