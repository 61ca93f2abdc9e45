"""run_episode: the MAD loop around a planner with a caller-supplied occlusion measurement."""

from __future__ import annotations

import numpy as np
import pytest

from planning.croa.evaluate import EvaluateError, geometric_occlusion, run_episode
from planning.croa.mad import MadAction, MadConfig, MadController
from planning.croa.scenes import Scene
from planning.croa.types import RobotState


@pytest.mark.parametrize("seed", [0, 3])
def test_croa_episode_reveals_the_target(croa, scenes: dict[int, Scene], seed: int) -> None:
    scene = scenes[seed]
    result = run_episode(croa, scene, geometric_occlusion(scene), max_cycles=4)
    # Measured: these scenes end detected (occlusion <= 0.3) within 3 cycles from 0.8 - 0.95.
    assert result.done is MadAction.DONE_DETECTED
    assert result.occlusion[-1] <= 0.3 < result.occlusion[0]
    assert result.min_clearance_m >= croa.config.min_clearance_m - 1e-9
    assert result.states.shape[1] == 4 and result.path_length_m > 0.0


def test_stay_episode_ends_on_the_cycle_budget(planners, scenes: dict[int, Scene]) -> None:
    scene = scenes[1]
    mad = MadController(MadConfig(max_cycles=2))
    result = run_episode(planners["stay"], scene, geometric_occlusion(scene), mad=mad)
    assert result.done is MadAction.DONE_BUDGET
    assert len(result.statuses) == 2 and np.allclose(result.occlusion, result.occlusion[0])


def test_missing_detection_plans_toward_the_prior(planners, scenes: dict[int, Scene]) -> None:
    scene = scenes[0]
    seen: list[RobotState] = []

    def detect(robot: RobotState) -> None:
        seen.append(robot)
        return None  # never detected: the scene's target box serves as the prior

    result = run_episode(planners["stay"], scene, geometric_occlusion(scene), detect=detect,
                         max_cycles=1)  # fmt: skip
    assert "missing" in result.decisions[0] and len(seen) == 2


def test_measurement_outside_unit_interval_raises(planners, scenes: dict[int, Scene]) -> None:
    with pytest.raises(EvaluateError, match="measure_occlusion"):
        run_episode(planners["stay"], scenes[0], lambda robot: 1.5)


def test_bad_episode_settings_raise(planners, scenes: dict[int, Scene]) -> None:
    with pytest.raises(EvaluateError, match="execute_steps"):
        run_episode(planners["stay"], scenes[0], lambda robot: 0.0, execute_steps=0)
