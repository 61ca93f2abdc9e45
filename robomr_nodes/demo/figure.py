"""summary.png: a bird's-eye view of the run over a strip of real vs operator-view frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from geometry.boxes import bev_corners, points_in_box_mask
from geometry.transforms import make_transform, pose_to_transform, transform_points
from robomr_nodes.convert.detections import detections_to_boxes
from robomr_nodes.convert.image import image_to_array
from robomr_nodes.convert.path import path_to_poses
from robomr_nodes.convert.pointcloud import cloud_to_xyz
from robomr_nodes.convert.tf import odometry_to_pose
from robomr_nodes.demo.record import RunRecord
from robomr_nodes.diagnostics import diagnostic_values
from robomr_nodes.messages import stamp_ns
from sim.truth import boxes_to_frame

STRIP_FRAMES = 6


def _odom_at(record: RunRecord, stamp: int) -> tuple[float, float, float] | None:
    best = None
    for t, msg in record.messages.get("odom", []):
        if t <= stamp:
            best = msg
    return None if best is None else odometry_to_pose(best)[:3]


def _T_world_lidar(pose: tuple[float, float, float], lidar_xz_m: tuple[float, float]) -> np.ndarray:
    return pose_to_transform(pose[0], pose[1], 0.0, pose[2]) @ make_transform(
        np.eye(3), np.array([lidar_xz_m[0], 0.0, lidar_xz_m[1]])
    )


def _draw_boxes(ax: Any, boxes: np.ndarray, **style: Any) -> None:
    for c in bev_corners(boxes) if len(boxes) else []:
        ax.fill(*np.vstack([c, c[:1]]).T, **style)


def _bev(ax: Any, record: RunRecord, target: str, lidar_xz_m: tuple[float, float]) -> None:
    static = record.first("map/obstacles")
    if static is not None:
        _draw_boxes(ax, detections_to_boxes(static).boxes, color="0.75", lw=0)
    odom = np.array([odometry_to_pose(m)[:2] for _, m in record.messages.get("odom", [])])
    last_truth = record.last("ground_truth")
    pose = _odom_at(record, stamp_ns(last_truth.header.stamp)) if last_truth else None
    if last_truth is not None and pose is not None:
        T = _T_world_lidar(pose, lidar_xz_m)
        truth = detections_to_boxes(last_truth)
        world = boxes_to_frame(T, truth.boxes)
        is_target = np.array([i == target for i in truth.ids])
        _draw_boxes(ax, world[~is_target], color="tab:blue", alpha=0.35, lw=0)
        _draw_boxes(ax, world[is_target], facecolor="none", edgecolor="red", lw=2.0)
        if record.last_cloud is not None and is_target.any():
            pts = cloud_to_xyz(record.last_cloud[1], extra=())
            lidar_target = truth.boxes[is_target][0]
            seen = transform_points(T, pts[points_in_box_mask(pts, lidar_target, 0.1)])
            ax.scatter(
                seen[:, 0],
                seen[:, 1],
                s=3,
                color="red",
                zorder=5,
                label=f"lidar points on the target ({len(seen)})",
            )
        det = record.last("detections")
        if det is not None and len(det.detections):
            boxes = boxes_to_frame(T, detections_to_boxes(det).boxes)
            _draw_boxes(ax, boxes, facecolor="none", edgecolor="green", lw=1.0, ls="--")
    for i, (_, msg) in enumerate(record.messages.get("croa/path", [])):
        poses, _ = path_to_poses(msg)
        if len(poses):
            ax.plot(
                poses[:, 0],
                poses[:, 1],
                color="orange",
                lw=0.8,
                label="planned paths" if i == 0 else None,
            )
    if len(odom):
        ax.plot(odom[:, 0], odom[:, 1], color="magenta", lw=2.0, label="robot (odometry)")
        ax.plot(*odom[0], "o", color="magenta")
        ax.plot(*odom[-1], "s", color="magenta")
    if len(odom):
        cx, cy = odom[:, 0].mean(), odom[:, 1].mean()
        ax.set_xlim(cx - 30, cx + 40)
        ax.set_ylim(cy - 18, cy + 18)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(
        "bird's-eye view: static map (grey), vehicles (blue), target (red), "
        "detections (green dashed)",
        fontsize=9,
    )


def _strip(fig: Any, grid: Any, record: RunRecord, start_ns: int) -> None:
    decisions = record.messages.get("gsclo/decision", [])
    real = {stamp_ns(m.header.stamp): m for _, m in record.messages.get("camera/image", [])}
    render = {stamp_ns(m.header.stamp): m for _, m in record.messages.get("gs/image", [])}
    if not decisions:
        return
    picks = np.linspace(0, len(decisions) - 1, min(STRIP_FRAMES, len(decisions))).astype(int)
    for col, k in enumerate(picks):
        d = diagnostic_values(decisions[k][1])["gsclo"]
        stamp = int(d["stamp_ns"])
        upload = d["upload"] == "True"
        shown = real[stamp] if upload else render[stamp]
        for row, (msg, label) in enumerate(((real[stamp], "camera"), (shown, "operator view"))):
            ax = fig.add_subplot(grid[row + 1, col])
            ax.imshow(image_to_array(msg))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t = {(stamp - start_ns) / 1e9:.1f} s", fontsize=8)
            else:
                ssim = 1.0 - float(d["discrepancy"])
                title = "UPLOADED" if upload else f"pose only, render SSIM {ssim:.2f}"
                ax.set_title(title, fontsize=8, color="red" if upload else "black")
            if col == 0:
                ax.set_ylabel(label, fontsize=8)


def draw_summary(
    record: RunRecord, target: str, lidar_xz_m: tuple[float, float], start_ns: int, png: Path
) -> None:
    """Writes the summary picture of a run."""
    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(3, STRIP_FRAMES, height_ratios=[2.6, 1, 1])
    _bev(fig.add_subplot(grid[0, :]), record, target, lidar_xz_m)
    _strip(fig, grid, record, start_ns)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
