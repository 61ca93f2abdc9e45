"""The detector node: stamps and frames, any field layout, malformed clouds, bag replay.

The network is a small untrained one saved to a temp file: these tests check the node's
plumbing and robustness, not detection quality (that is `robomr bench detector`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perception.checkpoint import save_detector
from perception.config import DetectorConfig, ModelConfig, VoxelConfig
from perception.model import Detector
from robomr_nodes.bag import digest, read_bag
from robomr_nodes.convert.detections import detections_to_boxes
from robomr_nodes.convert.pointcloud import array_to_cloud, xyz_to_structured
from robomr_nodes.launch_yaml import LaunchPlan, NodeSpec
from robomr_nodes.messages import header
from robomr_nodes.nodes.lidar_detector import LidarDetectorNode, crop_range
from robomr_nodes.params import ParameterError, ParamOverride
from robomr_nodes.replay import replay
from robomr_nodes.runner import RunOptions, run_plan
from robomr_nodes.runtime.executor import EmbeddedExecutor

TINY = DetectorConfig(
    voxel=VoxelConfig(point_range_m=(-12.8, -12.8, -3.0, 12.8, 12.8, 2.0)),
    model=ModelConfig(backbone_channels=(8, 8, 8), bev_channels=8, head_channels=8),
)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    return save_detector(Detector(TINY), tmp_path_factory.mktemp("model") / "tiny.pt")


def _node(model_path: Path, **params: Any) -> tuple[EmbeddedExecutor, dict[str, list]]:
    ex = EmbeddedExecutor()
    got: dict[str, list] = {}
    ex.add_tap(lambda t, _ty, _s, m, _q: got.setdefault(t, []).append(m))
    overrides = {"model_path": str(model_path), "score_threshold": 0.0, **params}
    ex.add_node(
        LidarDetectorNode, params={k: ParamOverride(v, "test") for k, v in overrides.items()}
    )
    return ex, got


def _feed(ex: EmbeddedExecutor, clouds: list[Any]) -> None:
    pub = ex.create_injector("sensor_msgs/msg/PointCloud2", "/points", "sensor_data")
    for i, cloud in enumerate(clouds):
        ex.schedule(ex.now_ns() + i * 100_000_000, lambda c=cloud: pub.publish(c))
    ex.spin()


def _cloud(
    points: np.ndarray, stamp: int = 7_000_000_000, names: tuple = ("x", "y", "z", "intensity")
) -> Any:
    return array_to_cloud(xyz_to_structured(points, names), header(stamp, "lidar_top"))


def test_detections_keep_the_cloud_stamp_and_frame(model_path: Path) -> None:
    ex, got = _node(model_path)
    pts = np.random.default_rng(0).uniform(-10, 10, (3000, 4)).astype(np.float32)
    _feed(ex, [_cloud(pts)])
    (det,) = got["/detections"]
    assert det.header.stamp.sec == 7 and det.header.frame_id == "lidar_top"
    boxes = detections_to_boxes(det)
    assert np.all(np.isfinite(boxes.boxes)) and set(boxes.labels) <= {"car", "van", "truck", "bus"}
    assert len(got["/detections/markers"]) == 1 and len(got["/diagnostics"]) == 1


def test_field_order_and_extra_fields_do_not_matter(model_path: Path) -> None:
    pts = np.random.default_rng(1).uniform(-10, 10, (2000, 4)).astype(np.float32)
    ex, got = _node(model_path)
    swapped = np.zeros(
        len(pts), dtype=[("intensity", "f4"), ("t", "f8"), ("z", "f4"), ("y", "f4"), ("x", "f4")]
    )
    for i, name in enumerate(("x", "y", "z", "intensity")):
        swapped[name] = pts[:, i]
    _feed(ex, [_cloud(pts), array_to_cloud(swapped, header(7_000_000_000, "lidar_top"))])
    first, second = (detections_to_boxes(m) for m in got["/detections"])
    np.testing.assert_array_equal(first.boxes, second.boxes)


@pytest.mark.parametrize(
    "points",
    [
        np.zeros((0, 4), np.float32),  # empty
        np.full((100, 4), np.nan, np.float32),  # all NaN
        np.full((100, 4), 1000.0, np.float32),  # all out of range
    ],
)
def test_degenerate_clouds_give_empty_detections(model_path: Path, points: np.ndarray) -> None:
    ex, got = _node(model_path)
    _feed(ex, [_cloud(points)])
    assert ex.errors == []
    assert len(got["/detections"][0].detections) == 0


def test_cloud_without_xyz_is_skipped_with_an_error(
    model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ex, got = _node(model_path)
    no_xyz = array_to_cloud(np.zeros(10, dtype=[("range", "f4")]), header(1, "lidar"))
    _feed(ex, [no_xyz])
    assert ex.errors == [] and "/detections" not in got
    assert "no ['x', 'y', 'z'] field" in caplog.text


def test_sensor_height_parameter_moves_points_into_the_model_frame(model_path: Path) -> None:
    """The same scene seen from a lidar mounted 0.5 m higher: the cloud is 0.5 m lower in the
    lidar frame, and with ``sensor_height_m`` raised to match, the boxes are the same, 0.5 m
    lower."""
    pts = np.random.default_rng(2).uniform(-10, 10, (3000, 4)).astype(np.float32)
    pts[:, 2] = np.abs(pts[:, 2]) * 0.2 - 1.8  # near the ground of a lidar at 1.8 m
    low, got_low = _node(model_path)
    _feed(low, [_cloud(pts)])
    high, got_high = _node(model_path, sensor_height_m=2.3)
    raised = pts.copy()
    raised[:, 2] -= 0.5
    _feed(high, [_cloud(raised)])
    a = detections_to_boxes(got_low["/detections"][0]).boxes
    b = detections_to_boxes(got_high["/detections"][0]).boxes
    assert len(a) == len(b) > 0
    expected = a.copy()
    expected[:, 2] -= 0.5
    # float32 points shifted by 0.5 m: voxel means round at ~1e-7 m; boxes agree to 1e-4 m.
    np.testing.assert_allclose(b, expected, atol=1e-4)


def _deskew_run(model_path: Path, odom_stamp: int, **params: Any) -> tuple[np.ndarray, dict]:
    """Boxes and diagnostics of one cloud stamped 7 s after odometry stamped ``odom_stamp``
    (8 m/s forward, 0.3 rad/s) with deskewing on."""
    from robomr_nodes.convert.tf import odometry

    ex, got = _node(model_path, deskew=True, **params)
    odom = ex.create_injector("nav_msgs/msg/Odometry", "/odom")
    points = ex.create_injector("sensor_msgs/msg/PointCloud2", "/points", "sensor_data")
    now = ex.now_ns()
    ex.schedule(now, lambda: odom.publish(odometry(0, 0, 0, 8.0, 0.0, 0.3, odom_stamp)))
    ex.schedule(now + 10_000_000, lambda: points.publish(_cloud(_SCENE)))
    ex.spin()
    status = got["/diagnostics"][0].status[0]
    values = {kv.key: kv.value for kv in status.values}
    return detections_to_boxes(got["/detections"][0]).boxes, values


def _clusters() -> np.ndarray:
    """Four car-sized clusters of returns (an untrained network's peaks follow occupancy)."""
    rng = np.random.default_rng(3)
    parts = [
        np.column_stack(
            [c + rng.normal(0, 0.8, (300, 2)), rng.uniform(-1.8, -0.3, 300), rng.uniform(0, 1, 300)]
        )
        for c in ((8, 3), (-6, 5), (4, -8), (-3, -9))
    ]
    return np.concatenate(parts).astype(np.float32)


_SCENE = _clusters()


def test_deskew_uses_the_odometry_at_the_clouds_stamp(model_path: Path) -> None:
    from perception.checkpoint import load_detector
    from perception.deskew import ScanMotion, deskew
    from perception.detect import detect
    from perception.sensor_input import SensorSetup

    # float32: this untrained model's outputs are too flat for bfloat16 to tell the two apart
    boxes, values = _deskew_run(model_path, 7_000_000_000, dense_precision="float32")
    assert values["deskewed"] == "1"
    model = load_detector(model_path, "cpu")
    setup = SensorSetup(1.8, min_range_m=2.5)
    moved = deskew(_SCENE, ScanMotion((8.0, 0.0, 0.0), 0.3))
    (want,) = detect(model, [moved], setup, precision="float32")
    (raw,) = detect(model, [_SCENE], setup, precision="float32")
    assert len(want) > 0
    assert want.boxes.shape != raw.boxes.shape or not np.allclose(want.boxes, raw.boxes)
    np.testing.assert_allclose(boxes, want.boxes, atol=1e-4)


def test_stale_odometry_leaves_the_cloud_as_reported(model_path: Path) -> None:
    stale, values = _deskew_run(model_path, 6_000_000_000, odom_max_age_s=0.5)
    assert values["deskewed"] == "0"
    ex, got = _node(model_path)
    _feed(ex, [_cloud(_SCENE)])
    np.testing.assert_allclose(stale, detections_to_boxes(got["/detections"][0]).boxes)


def test_deskew_turns_the_body_twist_into_the_lidar_frame(model_path: Path) -> None:
    from robomr_nodes.convert.tf import odometry

    ex, _ = _node(model_path, deskew=True, sensor_yaw_rad=math.pi / 2, scan_direction="cw")
    (node,) = ex.nodes.values()
    node.odometry.on_odom(odometry(0, 0, 0, 8.0, 0.0, 0.3, 7_000_000_000))
    motion = node.odometry.motion(7_000_000_000)
    # nuScenes-like mounting, x to the right: driving forward is -y in the lidar frame.
    np.testing.assert_allclose(motion.velocity_mps, (0.0, -8.0, 0.0), atol=1e-9)
    assert motion.yaw_rate_radps == pytest.approx(0.3) and motion.direction == -1
    assert node.odometry.motion(9_000_000_000) is None  # 2 s away from the odometry
    node.odometry.on_odom(odometry(0, 0, 0, math.nan, 0.0, 0.3, 7_100_000_000))  # skipped, logged
    assert node.odometry.motion(7_000_000_000).velocity_mps == motion.velocity_mps


def test_crop_range() -> None:
    pts = np.array([[1.0, 0, 0], [0, 30.0, 0], [100.0, 0, 0]])
    assert len(crop_range(pts, 50.0)) == 2 and len(crop_range(pts, 0.0)) == 3


def test_replay_of_simulated_frames_is_byte_identical(model_path: Path, tmp_path: Path) -> None:
    small = {"camera_width_px": 32, "camera_height_px": 24, "lidar_beams": 16}
    plan = LaunchPlan(
        [
            NodeSpec(
                "robomr",
                "robomr_sim",
                "sim",
                "/robomr",
                {k: ParamOverride(v, "test") for k, v in small.items()},
            ),
            NodeSpec(
                "robomr",
                "lidar_detector",
                "lidar_detector",
                "/robomr",
                {"model_path": ParamOverride(str(model_path), "test")},
            ),
        ],
        {},
        [],
    )
    result = run_plan(plan, RunOptions(duration_s=0.5, record=tmp_path / "bag"))
    assert result.executor.errors == []
    first = replay(tmp_path / "bag", ["lidar_detector"], tmp_path / "r1")
    second = replay(tmp_path / "bag", ["lidar_detector"], tmp_path / "r2")
    assert first.inputs == ["/robomr/points"] and first.messages_in == 5
    assert "/diagnostics" in first.outputs  # recorded, not digested (wall-clock ms)
    assert first.digest == second.digest
    original = [
        m
        for m in read_bag(tmp_path / "bag")
        if m.topic in ("/robomr/detections", "/robomr/detections/markers")
    ]
    assert digest(original) == first.digest


def test_a_precision_the_device_cannot_run_is_refused_at_start(model_path: Path, monkeypatch):
    import torch

    import perception.dense_layers as dense

    real = dense.resolve_precision

    def on_a_gpu(precision: str, device: Any) -> Any:  # the answer for a model on CUDA
        return real(precision, torch.device("cuda"))

    monkeypatch.setattr(dense, "resolve_precision", on_a_gpu)
    with pytest.raises(ParameterError, match=r"dense_precision: .*bfloat16 is for CPUs"):
        _node(model_path, dense_precision="bfloat16")
    _node(model_path, dense_precision="float32")  # what a GPU can run starts
