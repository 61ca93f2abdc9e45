"""The perceived world: target association with the request, obstacles from the static map and
the tracks, predicted motion (yielding vehicles), and moving obstacles in the collision model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.croa.collision import ObstacleSet, footprints
from planning.croa.polygons import rectangle_vertices
from planning.croa.robot import RobotModel
from planning.croa.types import Polytope, RobotState
from planning.croa.world_model import PerceivedWorld, _inside_any

S = 1_000_000_000
CAR = np.array([0.0, 0.0, 0.75, 4.5, 1.9, 1.5, 0.0])
WALL = np.array([[0.0, -9.0, 4.0, 40.0, 2.0, 8.0, 0.0]])  # the static map: one building
ROBOT = RobotState(0.0, 0.0, 0.0)


def _car(x: float, y: float) -> np.ndarray:
    box = CAR.copy()
    box[:2] = x, y
    return box


def _world() -> PerceivedWorld:
    return PerceivedWorld(WALL, (20.5, -3.0, 0.0))  # the request: 1 m off the true target


def test_the_detection_nearest_the_request_becomes_the_target() -> None:
    world = _world()
    target, other = _car(20.0, -3.5), _car(14.0, -3.5)  # the other is 6.5 m from the request
    est = world.update(0, np.stack([other, target]), np.array([0.7, 0.6]), np.array([0, 0]))
    assert est.score == pytest.approx(0.6) and est.box[:2] == pytest.approx(target[:2])
    missed = world.update(S, other[None], np.array([0.7]), np.array([0]))
    assert missed.score is None and missed.track_id == est.track_id  # the track stays


def test_no_detection_near_the_request_keeps_the_prior() -> None:
    world = _world()
    est = world.update(0, _car(10.0, 3.5)[None], np.array([0.9]), np.array([0]))
    assert est.score is None and est.track_id is None
    assert est.box[:2] == pytest.approx([20.5, -3.0]) and est.box[3] == 4.5  # the prior box


def test_observation_has_the_map_and_the_other_tracks_not_the_target() -> None:
    world = _world()
    world.update(0, np.stack([_car(20.0, -3.5), _car(14.0, -3.5), _car(19.8, -3.6)]),
                 np.array([0.9, 0.9, 0.4]), np.zeros(3, int))  # fmt: skip
    # 2 s after their only detection: no longer grown as possibly driving (tested below)
    obs = world.observation(2 * S, ROBOT, RobotModel())
    centres = sorted(tuple(np.round(o.vertices.mean(axis=0), 1)) for o in obs.obstacles)
    # the wall and the car at 14 m; the target and its duplicate (inside it) are left out
    assert centres == [(0.0, -9.0), (14.0, -3.5)]
    assert obs.target_box[:2] == pytest.approx([20.0, -3.5])


def test_a_track_overlapping_the_robot_is_cut_back_from_the_robots_side() -> None:
    """A box on the robot's footprint is wrong where it meets the robot (a detection's centre
    off along the vehicle's heading, a yielded vehicle's extrapolated track), not at its far
    end: the part beyond the robot stays an obstacle (urban-clutter 3: a van whose box reached
    1.2 m onto the robot was left out whole and driven into)."""
    world = _world()
    world.update(0, _car(1.0, 0.5)[None], np.array([0.9]), np.array([0]))
    obs = world.observation(0, ROBOT, RobotModel())
    assert len(obs.obstacles) == 2  # the wall and what is left of the car
    car = obs.obstacles[1].vertices
    # the robot's front is at x = 2.25: the car from there to its far end (3.25), within 1 cm
    assert car[:, 0].min() == pytest.approx(2.25, abs=0.011) and car[:, 0].min() > 2.25
    assert car[:, 0].max() == pytest.approx(3.25)
    assert car[:, 1].min() == pytest.approx(0.5 - 0.95) and car[:, 1].max() == pytest.approx(1.45)
    foot = footprints(np.array([[-1.35, 0.0, 0.0, 0.0]]), RobotModel())  # rear axle -> base 0
    assert ObstacleSet([obs.obstacles[1]], 4).signed_distances(foot, 1.0)[0].min() > 0.0


def test_a_track_on_the_robot_that_cannot_be_cut_clear_is_left_out() -> None:
    world = _world()
    world.update(0, _car(0.2, 0.1)[None], np.array([0.9]), np.array([0]))
    assert len(world.observation(0, ROBOT, RobotModel()).obstacles) == 1  # the wall only


def _mover(world: PerceivedWorld, y: float, speed: float) -> Polytope:
    for k in range(3):  # seen 1 s apart: the tracker estimates the velocity
        world.update(k * S, _car(-30.0 + speed * k, y)[None], np.array([0.9]), np.array([0]))
    obs = world.observation(2 * S, ROBOT, RobotModel())
    return next(o for o in obs.obstacles if o.is_moving)


def test_a_vehicle_behind_in_the_robots_lane_is_predicted_to_yield() -> None:
    mover = _mover(_world(), 0.0, 8.0)  # at x = -14 after 2 s, driving at the robot
    # its front bumper is 14 - 2.25 - 2.25 = 9.5 m from the robot's rear: it stops 5 m short
    assert mover.stop_after_s == pytest.approx((9.5 - 5.0) / 8.0, abs=0.15)
    assert mover.at_time(10.0).vertices.max(axis=0)[0] < -2.25  # never reaches the robot


def test_a_vehicle_in_another_lane_drives_on() -> None:
    mover = _mover(_world(), 3.5, 8.0)
    assert math.isinf(mover.stop_after_s)
    assert mover.at_time(5.0).vertices.mean(axis=0)[0] == pytest.approx(-14.0 + 40.0, abs=1.5)


@settings(max_examples=60, deadline=None)
@given(st.floats(-8, 8), st.floats(-8, 8), st.floats(-10, 10), st.floats(-10, 10),
       st.floats(0, 3), st.floats(0, 5))  # fmt: skip
def test_moving_obstacle_distance_is_the_distance_to_where_it_will_be(
    x: float, y: float, vx: float, vy: float, t: float, stop: float
) -> None:
    robot = RobotModel()
    box = np.array([x, y, 0.75, 4.5, 1.9, 1.5, 0.3])
    mover = Polytope.from_box(box, (vx, vy), stop)
    foot = footprints(np.array([[0.0, 0.0, 0.0, 0.0]]), robot)
    moving = ObstacleSet([mover], 4).signed_distances(foot, np.inf, np.array([t]))[0]
    there = ObstacleSet([mover.at_time(t)], 4).signed_distances(foot)[0]
    assert moving == pytest.approx(there, abs=1e-9)


def test_a_car_driving_past_the_request_does_not_become_the_target() -> None:
    world = _world()
    for k in range(3):  # a car drives past the request at 8 m/s, the target hidden
        est = world.update(k * S, _car(12.0 + 8.0 * k, -1.0)[None], np.array([0.9]),
                           np.array([0]))  # fmt: skip
    assert est.track_id is None and est.box[:2] == pytest.approx([20.5, -3.0])
    seen = world.update(3 * S, np.stack([_car(36.0, -1.0), _car(20.0, -3.5)]),
                        np.array([0.9, 0.7]), np.array([0, 0]))  # fmt: skip
    assert seen.score == pytest.approx(0.7) and seen.box[:2] == pytest.approx([20.0, -3.5])


def test_lidar_returns_in_front_of_the_target_become_an_occluder() -> None:
    """A pole-like object the detector misses, between the lidar and the target: its points
    become an evidence cell, an obstacle of the planner; points behind, beside or on the
    ground do not."""
    world = _world()
    rng = np.random.default_rng(0)
    pole = np.column_stack([rng.uniform(10.1, 10.4, 20), rng.uniform(-1.9, -1.6, 20),
                            rng.uniform(0.5, 2.5, 20)])  # fmt: skip
    ground = np.column_stack([rng.uniform(5, 15, 50), rng.uniform(-2, 0, 50), np.zeros(50)])
    # beside the line of sight and beyond clutter_radius_m (12 m): neither occluder nor obstacle
    beside = np.column_stack([rng.uniform(5, 15, 20), np.full(20, 14.0), np.full(20, 1.0)])
    behind = np.column_stack([np.full(20, 30.0), np.full(20, -4.5), np.full(20, 1.0)])
    world.update(0, np.zeros((0, 7)), np.zeros(0), np.zeros(0, int),
                 np.vstack([pole, ground, beside, behind]), np.array([0.0, 0.0, 1.8]))  # fmt: skip
    cells = world.evidence_boxes()
    assert len(cells) == 1 and cells[0, :2] == pytest.approx([10.5, -1.5])
    assert cells[0, 5] == pytest.approx(pole[:, 2].max())
    obs = world.observation(0, ROBOT, RobotModel())
    assert len(obs.obstacles) == 2  # the wall and the evidence cell
    later = world.observation(int(3.5 * S), ROBOT, RobotModel())
    world.update(int(3.5 * S), np.zeros((0, 7)), np.zeros(0), np.zeros(0, int),
                 np.zeros((0, 3)), np.array([0.0, 0.0, 1.8]))  # fmt: skip
    assert len(later.obstacles) == 2 and len(world.evidence_boxes()) == 0  # expired


def test_unexplained_returns_near_the_robot_are_obstacles_of_the_latest_frame() -> None:
    """A parked bus the detector misses (or boxes too short), beside the robot and off the line
    of sight to the target, must not be driven into: its returns become obstacles (not target
    occluders). Returns on the map's wall, on a tracked car, above the robot, on the ground, on
    the target or beyond clutter_radius_m do not; the cells last one frame (no trail)."""
    world = _world()
    rng = np.random.default_rng(1)

    def cloud(x: tuple, y: tuple, z: tuple, n: int = 40) -> np.ndarray:
        return np.column_stack([rng.uniform(*x, n), rng.uniform(*y, n), rng.uniform(*z, n)])

    bus = cloud((2.0, 7.9), (3.0, 3.2), (0.4, 1.9))  # its side, 3 m left of the robot
    car = _car(0.0, -5.0)  # detected and tracked
    on_car = cloud((-2.0, 2.0), (-4.2, -4.0), (0.4, 1.4))
    wall = cloud((-5.0, 5.0), (-8.1, -8.0), (0.5, 1.9))
    crown = cloud((3.0, 5.0), (-2.5, -1.5), (2.5, 4.0))  # passes over the robot
    ground = cloud((-5.0, 5.0), (-2.0, 2.0), (0.0, 0.1))
    target = cloud((18.0, 22.0), (-2.6, -2.4), (0.4, 1.4))
    far = cloud((14.0, 16.0), (8.0, 9.0), (0.4, 1.4))  # 16 m away
    origin = np.array([0.0, 0.0, 1.8])
    world.update(0, np.stack([car, _car(20.0, -3.5)]), np.array([0.8, 0.7]), np.array([0, 0]),
                 np.vstack([bus, on_car, wall, crown, ground, target, far]), origin)  # fmt: skip
    cells = world.clutter
    assert len(cells) == 6  # 1 m cells along the bus's 5.9 m side, each with >= 3 points
    # each a box around its cell's points (grown by 0.1 m), not the whole cell: a whole cell
    # would reach 0.8 m closer to the robot than the bus's side does
    lo, hi = cells[:, :2] - 0.5 * cells[:, 3:5], cells[:, :2] + 0.5 * cells[:, 3:5]
    assert np.all(lo[:, 1] >= 2.9 - 1e-9) and np.all(hi[:, 1] <= 3.3 + 1e-9)
    assert lo[:, 0].min() == pytest.approx(bus[:, 0].min() - 0.1)
    assert hi[:, 0].max() == pytest.approx(bus[:, 0].max() + 0.1)
    assert np.all(cells[:, 5] <= 1.9) and len(world.evidence_boxes()) == 0  # not occluders
    obs = world.observation(0, ROBOT, RobotModel())
    assert len(obs.obstacles) == 1 + 1 + 6  # the wall, the tracked car, the bus's cells
    world.update(S, np.zeros((0, 7)), np.zeros(0), np.zeros(0, int), np.zeros((0, 3)), origin)
    assert len(world.clutter) == 0


@pytest.mark.parametrize("speed", [8.0, -3.0])
def test_a_moving_vehicle_is_also_an_obstacle_where_it_is_now(speed) -> None:
    # It may stop any moment (a stopping van's track lagged and drove "away" in the filter):
    # besides its predicted motion, its current (grown) box is a static obstacle.
    world = _world()
    for k in range(3):
        world.update(k * S, _car(-30.0 + speed * k, -6.0)[None], np.array([0.9]), np.array([0]))
    obs = world.observation(2 * S, ROBOT, RobotModel())
    mover = next(o for o in obs.obstacles if o.is_moving)
    still = [o for o in obs.obstacles if not o.is_moving and o is not obs.obstacles[0]]
    assert len(still) == 1
    # the same box at time 0, not moving later
    assert still[0].vertices == pytest.approx(mover.vertices)
    assert still[0].at_time(5.0).vertices == pytest.approx(mover.vertices)


def test_the_target_box_is_the_odds_weighted_mean_of_its_detections() -> None:
    # A doubtful detection 0.6 m off (score 0.5: odds 1) and two confident ones on the car
    # (0.9: odds 9 each): the estimate is 0.6 / 19 = 0.03 m off, not the alpha-beta filter's
    # 0.6 * 0.6 * 0.4^2 ... of the latest boxes weighted alike whatever their scores.
    world = _world()
    frames = [(_car(20.6, -3.5), 0.5), (_car(20.0, -3.5), 0.9), (_car(20.0, -3.5), 0.9)]
    for k, (box, score) in enumerate(frames):
        est = world.update(k * S, box[None], np.array([score]), np.array([0]))
    assert est.box[0] == pytest.approx(20.0 + 0.6 / 19.0, abs=1e-9)
    assert est.box[1] == pytest.approx(-3.5, abs=1e-9)
    # Confident first, then a doubtful one: it moves the estimate by its share only.
    world = _world()
    for k, (box, score) in enumerate(reversed(frames)):
        est = world.update(k * S, box[None], np.array([score]), np.array([0]))
    assert est.box[0] == pytest.approx(20.0 + 0.6 / 19.0, abs=1e-9)


def test_a_target_detection_beyond_the_gate_is_not_fused() -> None:
    world = _world()
    world.update(0, _car(20.0, -3.5)[None], np.array([0.9]), np.array([0]))
    # 1.8 m off 3 s later (0.6 m/s: the track still matches it and stays static), above
    # target_gate_m = 1.5
    est = world.update(3 * S, _car(21.8, -3.5)[None], np.array([0.95]), np.array([0]))
    assert est.score == pytest.approx(0.95)  # the stop decision still reads the score
    assert est.box[0] == pytest.approx(20.0)


def _inside_any_dense(xy: np.ndarray, boxes: np.ndarray, margin_m: float) -> np.ndarray:
    """Reference: every point against every box (the test before the per-box candidates)."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    rel = xy[:, None] - boxes[None, :, :2]
    along = np.abs(rel[..., 0] * c + rel[..., 1] * s)
    across = np.abs(-rel[..., 0] * s + rel[..., 1] * c)
    inside = (along <= 0.5 * boxes[:, 3] + margin_m) & (across <= 0.5 * boxes[:, 4] + margin_m)
    return np.any(inside, axis=1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("margin_m", [0.0, 0.3, 1.5])
def test_point_in_box_test_equals_the_dense_test(seed: int, margin_m: float) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 30))
    boxes = np.column_stack([rng.uniform(-20, 20, (count, 2)), np.zeros(count),
                             rng.uniform(0.2, 12.0, (count, 2)), np.ones(count),
                             rng.uniform(-4.0, 4.0, count)])  # fmt: skip
    # points all over, and points exactly on the grown boxes' corners (the edge case)
    corners = np.stack(
        [
            rectangle_vertices(b[:2], np.array(b[6]), b[3] + 2 * margin_m, b[4] + 2 * margin_m)
            for b in boxes
        ]
    ).reshape(-1, 2)
    xy = np.vstack([rng.uniform(-25, 25, (2000, 2)), corners])  # fmt: skip
    assert np.array_equal(_inside_any(xy, boxes, margin_m), _inside_any_dense(xy, boxes, margin_m))
    assert not _inside_any(np.zeros((0, 2)), boxes).size
    assert not _inside_any(xy, np.zeros((0, 7))).any()


def test_evidence_cells_kept_between_observations_give_the_same_observation() -> None:
    """The evidence cells' prisms are reused by the next observation: the same obstacles as a
    world model asked for the first time, and cells that expire are gone."""
    rng = np.random.default_rng(1)
    pole = np.column_stack([rng.uniform(10.1, 10.4, 20), rng.uniform(-1.9, -1.6, 20),
                            rng.uniform(0.5, 2.5, 20)])  # fmt: skip
    frame = (np.zeros((0, 7)), np.zeros(0), np.zeros(0, int), pole, np.array([0.0, 0.0, 1.8]))
    world, fresh = _world(), _world()
    world.update(0, *frame)
    fresh.update(0, *frame)
    first = world.observation(0, ROBOT, RobotModel())
    again = world.observation(S, RobotState(0.5, 0.0, 0.1), RobotModel())
    other = fresh.observation(S, RobotState(0.5, 0.0, 0.1), RobotModel())
    assert len(first.obstacles) == len(again.obstacles) == 2
    assert again.obstacles[1] is first.obstacles[1]  # the cell's prism, kept
    for a, b in zip(again.obstacles, other.obstacles, strict=True):
        assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.b, b.b)
    world.update(int(3.5 * S), *frame[:3], np.zeros((0, 3)), frame[4])
    assert len(world.observation(int(3.5 * S), ROBOT, RobotModel()).obstacles) == 1


def _covered(obs, xy: tuple[float, float]) -> bool:
    """Whether the point lies in the footprint of an obstacle of the observation (at time 0)."""
    p = np.asarray(xy)
    return any(np.all(o.A @ p <= o.b + 1e-9) for o in obs.obstacles)


def test_a_vehicle_seen_once_is_grown_along_its_heading_until_its_next_detection() -> None:
    """Crossing-traffic 7: a truck seen once (velocity unknown) was planned around as parked and
    hit 1.5 s later. A once-seen track is an obstacle along its heading, both ways, as far as
    young_speed_mps (8) covers in young_horizon_s (1 s); a second detection in place shows it
    parked (no growth), and so does the time passing without one."""
    world = _world()
    world.update(0, _car(10.0, 3.5)[None], np.array([0.4]), np.array([0]))  # another lane
    obs = world.observation(0, ROBOT, RobotModel())
    # the car spans x 7.75..12.25; grown by 8 m each way
    assert _covered(obs, (19.5, 3.5)) and _covered(obs, (0.5, 3.5))
    assert not _covered(obs, (21.0, 3.5)) and not _covered(obs, (-1.0, 3.5))
    assert not _covered(obs, (10.0, 1.5))  # along its heading only
    assert not _covered(world.observation(2 * S, ROBOT, RobotModel()), (19.5, 3.5))
    world.update(S, _car(10.0, 3.5)[None], np.array([0.4]), np.array([0]))  # still there
    obs = world.observation(S, ROBOT, RobotModel())
    assert _covered(obs, (12.0, 3.5)) and not _covered(obs, (13.0, 3.5))


def test_a_once_seen_vehicle_is_not_grown_into_the_target_or_up_to_the_robot() -> None:
    world = _world()  # target prior at (20.5, -3), the robot at the origin facing +x
    world.update(0, np.stack([_car(12.0, -3.5), _car(-14.0, 0.0)]), np.array([0.4, 0.4]),
                 np.array([0, 0]))  # fmt: skip
    obs = world.observation(0, ROBOT, RobotModel())
    # in the target's lane: grown behind by 8 m, ahead only up to the target's rear (18.25 m)
    assert _covered(obs, (18.0, -3.5)) and not _covered(obs, (18.5, -3.5))
    assert _covered(obs, (2.0, -3.5))
    # in the robot's lane behind it: grown ahead only to yield_gap_m (5 m) short of its rear
    assert _covered(obs, (-7.5, 0.0)) and not _covered(obs, (-7.0, 0.0))
    assert _covered(obs, (-23.5, 0.0))


def test_a_return_just_beyond_a_tracked_box_near_the_robot_is_an_obstacle() -> None:
    """Crossing-traffic 6: a car's box was 0.12 m short of its front; lidar returns within 0.3 m
    of a box counted as the box's, so nothing showed the gap, and the robot (0.23 m off its
    plan) touched the car. Near the robot a return more than clutter_explained_m (0.1 m, 5
    sigma of the range noise) beyond a box is an obstacle; one on the box's face is not."""
    world = _world()
    rng = np.random.default_rng(3)
    car = _car(6.0, 3.0)  # x 3.75..8.25

    def face(x: float, n: int = 30) -> np.ndarray:
        return np.column_stack([np.full(n, x), rng.uniform(2.2, 3.8, n), rng.uniform(0.4, 1.4, n)])

    origin = np.array([0.0, 0.0, 1.8])
    world.update(0, car[None], np.array([0.8]), np.array([0]), face(8.25 + 0.05), origin)
    assert len(world.clutter) == 0  # on the face, within the range noise
    world.update(S, car[None], np.array([0.8]), np.array([0]), face(8.25 + 0.2), origin)
    assert len(world.clutter) >= 1
    lo = world.clutter[:, 0] - 0.5 * world.clutter[:, 3]
    assert lo.min() == pytest.approx(8.25 + 0.2 - 0.1)  # the box around them, grown 0.1 m


def test_a_once_seen_vehicle_hides_the_target_only_from_where_it_was_seen() -> None:
    """The growth is where the vehicle might be (collisions); the occlusion model gets the box
    as seen, the other obstacles unchanged."""
    world = _world()
    world.update(0, _car(10.0, 3.5)[None], np.array([0.4]), np.array([0]))
    obs = world.observation(0, ROBOT, RobotModel())
    assert obs.occluders is not None and len(obs.occluders) == len(obs.obstacles)
    grown = [o for o in obs.obstacles if o.vertices[:, 1].min() > 0.0]  # not the wall
    seen = [o for o in obs.occluders if o not in obs.obstacles]
    assert len(grown) == 1 and len(seen) == 1 and np.ptp(grown[0].vertices[:, 0]) > 20.0
    assert np.ptp(seen[0].vertices[:, 0]) == pytest.approx(4.5)
    assert seen[0].vertices.mean(axis=0) == pytest.approx([10.0, 3.5])
    world.update(S, _car(10.0, 3.5)[None], np.array([0.4]), np.array([0]))  # seen twice
    assert world.observation(S, ROBOT, RobotModel()).occluders is None
