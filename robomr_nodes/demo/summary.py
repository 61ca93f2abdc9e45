"""The demo's figures of merit, from the messages of a run (docs/demo section in README)."""

from __future__ import annotations

from typing import Any

import numpy as np

from geometry.boxes import points_in_box_mask
from geometry.transforms import wrap_angle
from robomr_nodes.convert.detections import BoxList, detections_to_boxes
from robomr_nodes.convert.pointcloud import cloud_to_xyz
from robomr_nodes.demo.record import DIAGNOSTICS, RunRecord
from robomr_nodes.diagnostics import diagnostic_values
from robomr_nodes.messages import stamp_ns
from robomr_nodes.runtime.executor import EmbeddedExecutor

MATCH_RADIUS_M = 2.0  # a detection is the target if its centre is this close to the truth


def _truth_at(record: RunRecord, stamp: int) -> BoxList | None:
    for _, msg in record.messages.get("ground_truth", []):
        if stamp_ns(msg.header.stamp) == stamp:
            return detections_to_boxes(msg)
    return None


def _target_box(truth: BoxList, target: str) -> tuple[np.ndarray, float] | None:
    if target not in truth.ids:
        return None
    k = truth.ids.index(target)
    return truth.boxes[k], float(truth.scores[k])  # score = visibility (sim node docstring)


def target_view(record: RunRecord, cloud: tuple[int, Any] | None, target: str) -> dict[str, Any]:
    """Occlusion of the target and lidar points on it for one recorded cloud."""
    if cloud is None:
        return {}
    truth = _truth_at(record, stamp_ns(cloud[1].header.stamp))
    found = _target_box(truth, target) if truth is not None else None
    if found is None:
        return {}
    box, visibility = found
    points = cloud_to_xyz(cloud[1], extra=())
    inside = points_in_box_mask(points, box, margin_m=0.1)
    return {
        "time_s": cloud[0] / 1e9,
        "occlusion": 1.0 - visibility,
        "points_on_target": int(inside.sum()),
    }


def detection_of_target(record: RunRecord, target: str, min_score: float) -> list[dict]:
    """Per scan: whether the detector found the target, and its errors when it did."""
    rows = []
    for _, msg in record.messages.get("detections", []):
        truth = _truth_at(record, stamp_ns(msg.header.stamp))
        found = _target_box(truth, target) if truth is not None else None
        if found is None:
            continue
        box = found[0]
        det = detections_to_boxes(msg)
        keep = det.scores >= min_score
        dist = np.hypot(det.boxes[keep, 0] - box[0], det.boxes[keep, 1] - box[1])
        if len(dist) == 0 or dist.min() > MATCH_RADIUS_M:
            rows.append({"detected": False})
            continue
        k = int(np.argmin(dist))
        yaw_err = abs(float(wrap_angle(2.0 * (det.boxes[keep][k, 6] - box[6])))) / 2.0
        rows.append(
            {
                "detected": True,
                "centre_error_m": float(dist[k]),
                "yaw_error_rad": yaw_err,
                "score": float(det.scores[keep][k]),
            }
        )
    return rows


def _status_values(record: RunRecord, topic: str, name: str) -> list[dict[str, str]]:
    """The values of status ``name`` in each message of ``topic`` that carries it."""
    rows = [diagnostic_values(m) for _, m in record.messages.get(topic, [])]
    return [r[name] for r in rows if name in r]


def communication(record: RunRecord) -> dict[str, Any]:
    """GSCLO's uplink energy against always uploading (RoboMR), and what the operator saw."""
    rows = _status_values(record, "gsclo/decision", "gsclo")
    if not rows:
        return {}
    last = rows[-1]
    energy, robomr = float(last["total_energy_j"]), float(last["total_robomr_energy_j"])
    pose_only = [r for r in rows if r["upload"] == "False"]
    return {
        "frames": int(last["total_frames"]),
        "uploads": int(last["total_uploads"]),
        "energy_j": energy,
        "robomr_energy_j": robomr,
        "energy_ratio_robomr_over_gsclo": robomr / energy if energy > 0 else float("inf"),
        "deadline_misses": int(last["total_deadline_misses"]),
        "operator_view_ssim_mean": float(np.mean([float(r["view_ssim"]) for r in rows])),
        "render_psnr_db_mean": float(np.mean([float(r["render_psnr_db"]) for r in rows])),
        "render_ssim_mean": float(np.mean([float(r["render_ssim"]) for r in rows])),
        "pose_only_psnr_db_mean": float(np.mean([float(r["view_psnr_db"]) for r in pose_only]))
        if pose_only
        else None,
    }


def node_times(executor: EmbeddedExecutor) -> dict[str, dict[str, float]]:
    out = {}
    for node, st in sorted(executor.stats.items()):
        if st.callbacks:
            d = np.asarray(st.durations_s) * 1e3
            out[node] = {
                "callbacks": st.callbacks,
                "mean_ms": float(d.mean()),
                "p90_ms": float(np.percentile(d, 90)),
                "errors": st.errors,
            }
    return out


def summarize(
    record: RunRecord,
    executor: EmbeddedExecutor,
    target: str,
    latencies_ms: dict[str, np.ndarray],
    min_score: float,
) -> dict[str, Any]:
    """Everything ``summary.json`` holds about one run."""
    statuses = _status_values(record, DIAGNOSTICS, "croa_planner")
    sim_diag = _status_values(record, DIAGNOSTICS, "sim")
    detections = detection_of_target(record, target, min_score)
    hits = [d for d in detections if d["detected"]]
    tail = detections[-10:]
    return {
        "target": {
            "name": target,
            "mad_action": statuses[-1].get("action") if statuses else None,
            "found": bool(statuses) and statuses[-1].get("action") == "done_detected",
            "plan_cycles": sum(1 for s in statuses if s.get("action") == "plan"),
            "before": target_view(record, record.first_cloud, target),
            "after": target_view(record, record.last_cloud, target),
            "detection_rate_first_10_scans": _rate(detections[:10]),
            "detection_rate_last_10_scans": _rate(tail),
            "last_detection": hits[-1] if hits else None,
        },
        "robot": {k: float(v) for k, v in sim_diag[-1].items()} if sim_diag else {},
        "communication": communication(record),
        "latency_ms": {
            name: {
                "p50": float(np.percentile(v, 50)),
                "p90": float(np.percentile(v, 90)),
                "frames": len(v),
            }
            for name, v in latencies_ms.items()
            if len(v)
        },
        "nodes": node_times(executor),
        "errors": [{"node": e.node, "where": e.where, "error": e.error} for e in executor.errors],
    }


def _rate(rows: list[dict]) -> float | None:
    return float(np.mean([r["detected"] for r in rows])) if rows else None
