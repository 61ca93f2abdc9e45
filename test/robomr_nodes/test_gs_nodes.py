"""gs_render and gsclo_scheduler on the embedded backend, fed by the simulator node."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from robomr_nodes.convert.image import array_to_image, image_to_array
from robomr_nodes.diagnostics import diagnostic_values
from robomr_nodes.messages import header, stamp_ns
from robomr_nodes.nodes.gs_render import GsRenderNode
from robomr_nodes.nodes.gsclo_scheduler import GscloSchedulerNode
from robomr_nodes.nodes.sim_node import SimNode
from robomr_nodes.params import ParamOverride
from robomr_nodes.runtime.executor import EmbeddedExecutor

SMALL_SIM = {
    "camera_width_px": 48,
    "camera_height_px": 36,
    "lidar_beams": 16,
    "camera_rate_hz": 10.0,
}
COARSE_MAP = {"spacing_m": 1.0, "map_source": "surface"}  # ~20k ground-truth Gaussians
LEARNED_MAP = {"voxel_m": 0.5, "scan_every": 1, "refine_iterations": 1, "forecast_frames": 2}


def _p(values: dict[str, Any]) -> dict[str, ParamOverride]:
    return {k: ParamOverride(v, "test") for k, v in values.items()}


def _graph(
    budget: float, duration_s: float = 1.0, gs: dict[str, Any] = COARSE_MAP
) -> tuple[EmbeddedExecutor, dict[str, list]]:
    ex = EmbeddedExecutor()
    got: dict[str, list] = {}
    ex.add_tap(lambda t, _ty, _s, m, _q: got.setdefault(t, []).append(m))
    ex.add_node(SimNode, namespace="robomr", params=_p(SMALL_SIM))
    ex.add_node(GsRenderNode, namespace="robomr", params=_p(gs))
    ex.add_node(
        GscloSchedulerNode,
        namespace="robomr",
        params=_p({"fidelity_budget": budget, "window_frames": 5}),
    )
    ex.spin(duration_s)
    assert ex.errors == []
    return ex, got


@pytest.fixture(scope="module")
def loose() -> tuple[EmbeddedExecutor, dict[str, list]]:
    return _graph(budget=1.0)


def test_renders_pair_with_camera_frames_by_stamp(loose: tuple) -> None:
    _, got = loose
    cams = got["/robomr/camera/image"]
    renders = got["/robomr/gs/image"]
    assert [stamp_ns(m.header.stamp) for m in renders] == [stamp_ns(m.header.stamp) for m in cams]
    real, render = image_to_array(cams[0]), image_to_array(renders[0])
    assert render.shape == real.shape == (36, 48, 3)
    # a coarse map still shows the street: the render is far closer than a blank image
    assert np.abs(render.astype(int) - real).mean() < np.abs(real.astype(int)).mean() / 2


def test_learned_map_improves_as_frames_are_uploaded() -> None:
    # budget 0: every frame is uploaded, so the edge learns colours and sky from each one
    _, got = _graph(budget=0.0, duration_s=1.5, gs=LEARNED_MAP)
    cams, renders = got["/robomr/camera/image"], got["/robomr/gs/image"]
    assert [stamp_ns(m.header.stamp) for m in renders] == [stamp_ns(m.header.stamp) for m in cams]
    error = [
        np.abs(image_to_array(r).astype(int) - image_to_array(c)).mean()
        for r, c in zip(renders, cams, strict=True)
    ]
    # the first render has no colours yet (only lidar geometry, default grey and sky); after
    # a dozen uploaded frames the map must be clearly closer to the camera (measured ~2x)
    assert np.mean(error[-3:]) < 0.8 * error[0]
    forecast = diagnostic_values(got["/robomr/gs/forecast"][-1])["gs_forecast"]
    assert {"coverage_0", "coverage_2", "x_2", "y_2"} <= set(forecast)
    assert 0.0 < float(forecast["coverage_0"]) <= 1.0
    decision = diagnostic_values(got["/robomr/gsclo/decision"][-1])["gsclo"]
    assert decision["horizon_frames"] == "3"


def test_loose_budget_sends_only_poses(loose: tuple) -> None:
    _, got = loose
    last = diagnostic_values(got["/robomr/gsclo/decision"][-1])["gsclo"]
    assert int(last["total_frames"]) == len(got["/robomr/camera/image"]) == 10
    assert last["total_uploads"] == "0" and "/robomr/gsclo/uploaded" not in got
    assert float(last["total_energy_j"]) < float(last["total_robomr_energy_j"])
    assert len(got["/robomr/gsclo/operator_view"]) == 10


def test_zero_budget_uploads_every_frame_at_robomr_energy() -> None:
    _, got = _graph(budget=0.0)
    last = diagnostic_values(got["/robomr/gsclo/decision"][-1])["gsclo"]
    assert int(last["total_uploads"]) == int(last["total_frames"]) == 10
    assert float(last["total_energy_j"]) == pytest.approx(
        float(last["total_robomr_energy_j"]), rel=1e-9
    )
    assert len(got["/robomr/gsclo/uploaded"]) == 10


def test_unpaired_and_mismatched_frames_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ex = EmbeddedExecutor()
    node = ex.add_node(GscloSchedulerNode, params=_p({"pair_timeout_s": 0.5}))
    real = ex.create_injector("sensor_msgs/msg/Image", "/camera/image", "sensor_data")
    render = ex.create_injector("sensor_msgs/msg/Image", "/gs/image", "sensor_data")
    odom = ex.create_injector("nav_msgs/msg/Odometry", "/odom")
    from robomr_nodes.convert.tf import odometry

    t0 = ex.now_ns()
    ex.schedule(t0, lambda: odom.publish(odometry(0, 0, 0, 0, 0, 0, t0, "map")))
    small, big = np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    # frame 1: no render ever; frame 2: sizes differ; frame 3 arrives 1 s later
    ex.schedule(t0 + 1, lambda: real.publish(array_to_image(small, header(t0 + 1, "cam"))))
    ex.schedule(t0 + 2, lambda: real.publish(array_to_image(small, header(t0 + 2, "cam"))))
    ex.schedule(t0 + 3, lambda: render.publish(array_to_image(big, header(t0 + 2, "cam"))))
    late = t0 + 1_000_000_000
    ex.schedule(late, lambda: real.publish(array_to_image(small, header(late, "cam"))))
    ex.spin()
    assert ex.errors == [] and node.totals["frames"] == 0
    assert node.totals["dropped"] == 1  # frame 1 timed out; frame 2 was rejected, not pending
    assert "differ in size" in caplog.text
