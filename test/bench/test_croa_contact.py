"""bench/croa_contact.py: the record of a first collision says what was hit and whether the
planner's last observation held an obstacle there."""

from __future__ import annotations

import numpy as np
import pytest

from bench.croa_contact import describe_contact
from planning.croa.robot import RobotModel
from planning.croa.types import PlanObservation, Polytope, RobotState

BUS = np.array([6.0, 2.5, 1.5, 12.0, 2.5, 3.0, 0.0])
POLE = np.array([-8.0, -4.0, 2.0, 0.3, 0.3, 4.0, 0.0])
TRUTH = [("pole_0", "pole", 0.0, POLE), ("bus_0", "bus", 0.0, BUS)]
POSE = np.array([2.0, 0.9, 0.0])  # the robot's left side 0.6 m into the bus


def _obs(obstacles: tuple[Polytope, ...]) -> PlanObservation:
    target = np.array([30.0, -4.0, 0.75, 4.5, 1.9, 1.5, 0.0])
    return PlanObservation(0, RobotState(0.0, 0.0, 0.0), target, obstacles)


@pytest.mark.parametrize(
    ("obstacles", "known"),
    [((), False), ((Polytope.from_box(POLE),), False), ((Polytope.from_box(BUS),), True)],
)
def test_the_contact_names_the_object_and_whether_the_planner_saw_it(obstacles, known) -> None:
    track = {"id": 3, "x": 6.5, "y": 2.4, "speed_mps": 0.0, "score": 0.45, "hits": 2,
             "unseen_s": 0.0}  # fmt: skip
    far = track | {"id": 4, "x": 30.0}
    rec = describe_contact(POSE, RobotModel(), TRUTH, {"pole_0"}, _obs(obstacles), 1.2,
                           [track, far])  # fmt: skip
    assert rec["object"] == "bus_0" and rec["kind"] == "bus" and not rec["in_map"]
    assert rec["depth_m"] == pytest.approx(0.6, abs=1e-6)  # 0.9 + 1.9 / 2 - (2.5 - 2.5 / 2)
    assert [t["id"] for t in rec["tracks"]] == [3]  # only tracks near the bus
    if obstacles == ():
        assert rec["perceived_gap_m"] is None
    elif known:
        assert rec["perceived_gap_m"] < 0.0  # the bus itself: overlapping
    else:
        assert rec["perceived_gap_m"] > 5.0  # only the pole: the planner did not know


def test_a_moving_obstacle_is_compared_where_it_was_predicted_at_contact() -> None:
    moving = Polytope.from_box(BUS - np.array([5.0, 0, 0, 0, 0, 0, 0]), (2.5, 0.0))
    rec = describe_contact(POSE, RobotModel(), TRUTH, set(), _obs((moving,)), 2.0, [])
    assert rec["perceived_gap_m"] == pytest.approx(-2.5)  # 5 m behind, 2.5 m/s x 2 s: overlap
