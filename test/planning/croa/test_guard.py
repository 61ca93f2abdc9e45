"""safety.path_clearance: the executive's guard while a plan is driven (bench croa brakes when
a new frame puts a perceived obstacle on the rest of the plan)."""

from __future__ import annotations

import numpy as np
import pytest

from planning.croa.config import CroaConfig
from planning.croa.safety import path_clearance
from planning.croa.types import PlanObservation, Polytope, RobotState

TARGET = np.array([40.0, -6.0, 0.75, 4.5, 1.9, 1.5, 0.0])
PATH = np.column_stack([np.linspace(0.0, 8.0, 17), np.zeros(17), np.zeros(17)])  # +x, 8 m
TIMES = np.linspace(0.0, 4.0, 17)  # 2 m/s


def _obs(*obstacles: Polytope) -> PlanObservation:
    return PlanObservation(0, RobotState(0.0, 0.0, 0.0), TARGET, obstacles)


def _box(x: float, y: float, length: float = 1.0, width: float = 1.0) -> np.ndarray:
    return np.array([x, y, 0.75, length, width, 1.5, 0.0])


@pytest.mark.parametrize(
    ("obstacle", "expected"),
    [
        (_box(11.0, 0.0), 11.0 - 0.5 - (8.0 + 2.25)),  # beyond the path's end: clear by 0.25 m
        (_box(6.0, 0.0), -(0.5 + 0.95)),  # on the path: overlap, least depth sideways
        (_box(4.0, 2.5), 2.5 - 0.5 - 0.95),  # beside it: 1.05 m from the robot's side
    ],
)
def test_static_obstacles_give_the_least_distance_along_the_rest(obstacle, expected) -> None:
    got = path_clearance(_obs(Polytope.from_box(obstacle)), PATH, TIMES, CroaConfig())
    assert got == pytest.approx(expected, abs=1e-9)


def test_a_moving_vehicle_counts_where_it_is_predicted_at_each_pose() -> None:
    # a car 6 m left of the path, crossing it at 4 m/s: it is on the path at x = 3 from about
    # t = 1 s, when the robot (2 m/s) is there too
    car = Polytope.from_box(_box(3.0, 6.0, 1.9, 4.5), (0.0, -4.0))
    assert path_clearance(_obs(car), PATH, TIMES, CroaConfig()) < 0.0
    late = Polytope.from_box(_box(3.0, 30.0, 1.9, 4.5), (0.0, -4.0))  # gets there after 7 s
    assert path_clearance(_obs(late), PATH, TIMES, CroaConfig()) > 0.5
    # the same car stopped where it is now is beside the path, clear
    assert path_clearance(_obs(Polytope.from_box(_box(3.0, 6.0, 1.9, 4.5))), PATH, TIMES,
                          CroaConfig()) > 2.0  # fmt: skip


def test_the_target_is_an_obstacle_and_nothing_else_is_clear() -> None:
    assert path_clearance(_obs(), PATH, TIMES, CroaConfig()) > 20.0  # only the far target
    assert path_clearance(_obs(), PATH[:0], TIMES[:0], CroaConfig()) == np.inf
