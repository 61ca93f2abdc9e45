"""The box tracker: identities, velocities, static tracks, dropping, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from perception.tracking import BoxTracker, TrackerConfig, TrackingError

CAR = np.array([0.0, 0.0, 0.75, 4.5, 1.9, 1.5, 0.0])
S = 1_000_000_000  # ns per second


def _at(x: float, y: float, yaw: float = 0.0) -> np.ndarray:
    box = CAR.copy()
    box[0], box[1], box[6] = x, y, yaw
    return box


@pytest.mark.parametrize("speed", [4.0, 11.0])
def test_a_moving_vehicle_keeps_its_id_and_gets_its_velocity(speed: float) -> None:
    rng = np.random.default_rng(0)
    tracker = BoxTracker()
    ids = []
    for k in range(8):  # 1 Hz frames, 0.1 m of centre noise
        noisy = _at(speed * k + rng.normal(0, 0.1), 3.5 + rng.normal(0, 0.1))
        ids.append(tracker.update(k * S, noisy[None], np.array([0.9]), np.array([0]))[0])
    assert len(set(ids)) == 1
    track = tracker.tracks[0]
    # alpha-beta filter after 8 frames of 0.1 m noise: within 0.5 m/s of the truth
    assert tracker.velocity(track) == pytest.approx([speed, 0.0], abs=0.5)
    assert track.predicted_box(8 * S)[0] == pytest.approx(speed * 8, abs=1.0)


def test_a_parked_car_is_static_despite_noisy_centres() -> None:
    rng = np.random.default_rng(1)
    tracker = BoxTracker()
    for k in range(6):
        tracker.update(k * S // 2, _at(rng.normal(0, 0.15), rng.normal(0, 0.15))[None],
                       np.array([0.8]), np.array([0]))  # fmt: skip
    assert not tracker.is_moving(tracker.tracks[0])
    assert np.all(tracker.velocity(tracker.tracks[0]) == 0.0)


def test_two_cars_keep_their_ids_and_new_ones_start_tracks() -> None:
    tracker = BoxTracker()
    first = tracker.update(0, np.stack([_at(0, 0), _at(10, 0)]), np.array([0.9, 0.8]),
                           np.array([0, 0]))  # fmt: skip
    again = tracker.update(S, np.stack([_at(10.2, 0), _at(0.1, 0), _at(30, 0)]),
                           np.array([0.9, 0.9, 0.9]), np.zeros(3, int))  # fmt: skip
    assert again[0] == first[1] and again[1] == first[0] and again[2] not in first
    low = tracker.update(2 * S, _at(50, 0)[None], np.array([0.1]), np.array([0]))
    assert low[0] == -1  # below min_score: no track


def test_unseen_moving_tracks_are_dropped_and_static_ones_kept() -> None:
    config = TrackerConfig(keep_moving_s=1.0, keep_static_s=10.0)
    tracker = BoxTracker(config)
    for k in range(3):  # one mover at 8 m/s, one parked car
        tracker.update(k * S, np.stack([_at(8.0 * k, 3.5), _at(20, -3)]), np.array([0.9, 0.9]),
                       np.array([0, 0]))  # fmt: skip
    tracker.update(5 * S, np.zeros((0, 7)), np.zeros(0), np.zeros(0, int))
    assert len(tracker.tracks) == 1 and not tracker.is_moving(tracker.tracks[0])
    tracker.update(13 * S, np.zeros((0, 7)), np.zeros(0), np.zeros(0, int))
    assert tracker.tracks == []


def test_yaw_is_folded_to_the_tracks_heading() -> None:
    tracker = BoxTracker()
    tracker.update(0, _at(0, 0, 0.05)[None], np.array([0.9]), np.array([0]))
    tracker.update(S, _at(0, 0, 0.05 + np.pi)[None], np.array([0.9]), np.array([0]))
    assert tracker.tracks[0].box[6] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("stamp", "boxes", "scores", "match"),
    [
        (0, CAR[None], np.array([0.9, 0.8]), "must match"),
        (0, np.full((1, 7), np.nan), np.array([0.9]), "NaN"),
        (-1, CAR[None], np.array([0.9]), "before the last update"),
    ],
)
def test_bad_updates_raise_a_named_error(stamp: int, boxes, scores, match: str) -> None:
    tracker = BoxTracker()
    tracker.update(0, np.zeros((0, 7)), np.zeros(0), np.zeros(0, int))
    with pytest.raises(TrackingError, match=match):
        tracker.update(stamp, boxes, scores, np.zeros(len(boxes), int))


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(TrackingError, match="alpha"):
        TrackerConfig(alpha=0.0)


def test_a_hidden_parked_car_keeps_its_track_when_a_car_drives_past() -> None:
    tracker = BoxTracker()
    for k in range(3):  # the parked car, seen
        tracker.update(k * S, _at(20.0, -8.0)[None], np.array([0.9]), np.array([0]))
    parked = tracker.tracks[0].track_id
    # hidden for a second while a car passes 4 m from it: a new track, not the parked one
    ids = tracker.update(4 * S, _at(22.0, -4.5)[None], np.array([0.9]), np.array([0]))
    assert ids[0] != parked
    assert tracker.tracks[0].box[:2] == pytest.approx([20.0, -8.0])


def test_a_pair_beyond_its_own_gate_does_not_end_the_association() -> None:
    # A parked car (static track: gate 2.5 m) and a fast car seen once (gate 2.5 + 15 m/s x dt).
    # The nearest pair of the next frame lies beyond the parked track's gate; the fast car's
    # pair, farther but within its own gate, must still match (it once ended the search).
    tracker = BoxTracker()
    for k in range(3):
        tracker.update(k * S, _at(0, 0)[None], np.array([0.9]), np.array([0]))
    (fast,) = tracker.update(3 * S, _at(20, 0)[None], np.array([0.9]), np.array([0]))
    ids = tracker.update(
        3 * S + S // 2, np.stack([_at(3, 0), _at(24, 0)]), np.array([0.9, 0.9]), np.zeros(2, int)
    )
    assert ids[1] == fast
    assert ids[0] not in (fast, tracker.tracks[0].track_id)
