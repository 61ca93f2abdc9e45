"""Configuration validation: every bad value names its field and limit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from planning.croa.config import (
    BaselineConfig,
    ConfigError,
    CostWeights,
    CroaConfig,
    RobotModel,
    ScpConfig,
    SurrogateConfig,
    ViewpointConfig,
)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RobotModel(wheelbase_m=5.0), "wheelbase_m"),
        (lambda: RobotModel(max_speed_mps=float("nan")), "max_speed_mps"),
        (lambda: CostWeights(occlusion=-1.0), "occlusion"),
        (lambda: ScpConfig(min_trust_m=5.0), "min_trust_m"),
        (lambda: ScpConfig(solver="OSQP"), "solver"),
        (lambda: ScpConfig(line_search=(0.5, 1.0)), "line_search"),
        (lambda: ScpConfig(line_search=[0.5]), "line_search"),
        (lambda: ScpConfig(exact_acceptance=1), "exact_acceptance"),
        (lambda: ScpConfig(monotone_occlusion=None), "monotone_occlusion"),
        (lambda: ScpConfig(exact_spacing_m=0.0), "exact_spacing_m"),
        (lambda: SurrogateConfig(transition_m=0.0), "transition_m"),
        (lambda: SurrogateConfig(depth_gain=1.0, depth_m=0.4), "depth_gain"),  # H not convex
        (lambda: SurrogateConfig(height_samples=0), "height_samples"),
        (lambda: SurrogateConfig(scan_fractions=(0.5,), scan_weights=(1.0,)), "scan_fractions"),
        (lambda: SurrogateConfig(scan_weights=(1.0,)), "scan_weights"),
        (lambda: CroaConfig(starts=("sampled", "sampled")), "starts"),
        (lambda: CroaConfig(starts=("random",)), "starts"),
        (lambda: ViewpointConfig(ring_gaps_m=()), "ring_gaps_m"),
        (lambda: BaselineConfig(clear_view_occlusion=2.0), "clear_view_occlusion"),
        (lambda: CroaConfig(horizon_steps=2), "horizon_steps"),
        (lambda: CroaConfig(horizon_steps=True), "horizon_steps"),
        (lambda: CroaConfig(min_clearance_m=0.1), "min_clearance_m"),  # below the sweep bound
        (lambda: CroaConfig(max_faces=6), "max_shadow_faces"),
    ],
)
def test_bad_values_name_the_field(make, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        make()


def test_sweep_bound_grows_with_speed() -> None:
    slow = CroaConfig()
    fast = CroaConfig(robot=RobotModel(max_speed_mps=5.0), min_clearance_m=0.6)
    assert fast.sweep_bound_m() > slow.sweep_bound_m()
    assert slow.sweep_bound_m() < slow.min_clearance_m


def test_robot_model_copies_same_named_fields_of_another_config() -> None:
    @dataclass
    class SimRobot:  # stands in for sim's RobotConfig: extra fields are ignored
        length_m: float = 5.0
        width_m: float = 2.0
        wheelbase_m: float = 3.0
        height_m: float = 1.6

    model = RobotModel.from_object(SimRobot())
    assert (model.length_m, model.width_m, model.wheelbase_m) == (5.0, 2.0, 3.0)
    assert model.max_speed_mps == RobotModel().max_speed_mps
