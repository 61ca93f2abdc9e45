"""Bird's-eye picture of the detector on the real sweep: points by height, annotated vehicles
(checked ones thick), detections at or above the score threshold with class and score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_RANGE_M = 42.0


def draw_sweep(path: Path, sweep: Any, det: Any, setup: Any, score_threshold: float) -> Path:
    """Writes the PNG to ``path`` and returns it (frame: the sweep's lidar frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from geometry.boxes import bev_corners
    from perception.real_check import VEHICLE_LABELS

    pts = sweep.points
    near = (np.abs(pts[:, 0]) < _RANGE_M) & (np.abs(pts[:, 1]) < _RANGE_M)
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.scatter(
        pts[near, 0],
        pts[near, 1],
        s=0.4,
        c=pts[near, 2],
        cmap="viridis",
        vmin=-2.5,
        vmax=1.5,
        linewidths=0,
    )
    for box, label, n in zip(sweep.boxes, sweep.labels, sweep.num_points, strict=True):
        if label in VEHICLE_LABELS:
            checked = n >= 10
            style = {"lw": 2.5, "ls": "-"} if checked else {"lw": 0.8, "ls": "--"}
            corners = bev_corners(box[None])[0]
            ax.add_patch(Polygon(corners, fill=False, ec="tab:green", **style))
    keep = det.scores >= score_threshold
    for box, name, score in zip(
        det.boxes[keep], np.array(det.class_names)[keep], det.scores[keep], strict=True
    ):
        corners = bev_corners(box[None])[0]
        ax.add_patch(Polygon(corners, fill=False, ec="red", lw=1.5))
        front = box[:2] + 0.5 * box[3] * np.array([np.cos(box[6]), np.sin(box[6])])
        ax.plot([box[0], front[0]], [box[1], front[1]], color="red", lw=1.2)
        ax.annotate(
            f"{name} {score:.2f}",
            box[:2],
            xytext=(4, 4),
            textcoords="offset points",
            color="red",
            fontsize=7,
        )
    ax.set_xlim(-_RANGE_M, _RANGE_M)
    ax.set_ylim(-_RANGE_M, _RANGE_M)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, right)")
    ax.set_ylabel("y (m, forward)")
    ax.set_title(
        f"nuScenes sweep: detections >= {score_threshold:.2f} (red, line to the front), "
        "annotated vehicles (green; thick: >= 10 points)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
