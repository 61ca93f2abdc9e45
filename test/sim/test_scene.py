"""Scene dataclass, files and validation: exact save/load round trip, obstacles, motion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.scene import Lane, Scene, SceneError, SceneObject

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e3, allow_nan=False)
unit = st.floats(0.0, 1.0)
objects = st.builds(
    lambda i, xyz, lwh, yaw, rgb, shape, speed: SceneObject(
        f"o{i}", "car" if speed else "bin", (*xyz, *lwh, yaw), rgb, "plastic", shape, speed
    ),
    st.integers(0, 10**6),
    st.tuples(finite, finite, finite),
    st.tuples(positive, positive, positive),
    finite,
    st.tuples(unit, unit, unit),
    st.sampled_from(["box", "cylinder", "ellipsoid"]),
    st.sampled_from([0.0, 3.5, -1.25]),
)


@given(
    objs=st.lists(objects, min_size=1, max_size=6, unique_by=lambda o: o.name),
    suffix=st.sampled_from([".yaml", ".json"]),
)
@settings(max_examples=40, deadline=None)
def test_save_load_round_trip_is_exact_for_any_valid_scene(tmp_path_factory, objs, suffix) -> None:
    scene = Scene(
        "s",
        3,
        tuple(objs),
        (Lane(-1.75, 3.5, 1, "driving"),),
        (0.0, 50.0),
        (1.0, -2.0, 0.3),
        None,
        {"config": {"k": [1, 2]}},
    )
    path = tmp_path_factory.mktemp("scene") / f"scene{suffix}"
    scene.save(path)
    assert Scene.load(path) == scene


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_generated_scene_round_trips_exactly(occluded_scene, tmp_path, suffix) -> None:
    path = occluded_scene.save(tmp_path / f"scene{suffix}")
    loaded = Scene.load(path)
    assert loaded == occluded_scene
    assert loaded.to_dict() == occluded_scene.to_dict()


def test_obstacle_boxes_leave_out_drivable_surfaces_and_high_objects(occluded_scene) -> None:
    boxes, names = occluded_scene.obstacle_boxes(robot_height_m=2.0)
    kinds = {occluded_scene.objects[occluded_scene.index(n)].kind for n in names}
    assert not kinds & {"ground", "road", "marking", "tree_crown"}
    assert {"target", "sidewalk_0"} <= set(names) and boxes.shape == (len(names), 7)
    assert np.all(boxes[:, 2] - 0.5 * boxes[:, 5] < 2.0)


def test_at_time_moves_only_movers_and_wraps_them_on_the_street(occluded_scene) -> None:
    later = occluded_scene.at_time(7.0)
    x0, x1 = occluded_scene.street_x_range_m
    for before, after in zip(occluded_scene.objects, later.objects, strict=True):
        if before.speed_mps == 0.0:
            assert after == before
        else:
            travelled = before.speed_mps * 7.0 * math.cos(before.box[6])
            expected = x0 + (before.box[0] + travelled - x0) % (x1 - x0)
            # Same float64 formula (modulo of O(100) m values): equal to ~1e-13.
            assert after.box[0] == pytest.approx(expected, abs=1e-9)
            assert x0 <= after.box[0] < x1 and after.box[1:] == pytest.approx(
                before.box[1:], abs=1e-6
            )
    assert later.static() == occluded_scene.static()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "spaceship"}, "kind"),
        ({"box": (0, 0, 0, 1, 0, 1, 0)}, "sizes"),
        ({"box": (0, 0, math.nan, 1, 1, 1, 0)}, "box"),
        ({"color": (0.5, 1.5, 0.0)}, "color"),
        ({"material": "cheese"}, "material"),
        ({"shape": "torus"}, "shape"),
        ({"kind": "bin", "speed_mps": 2.0}, "speed_mps"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_object_fields_raise_scene_error_naming_them(kwargs, message) -> None:
    base = {
        "name": "o",
        "kind": "car",
        "box": (0, 0, 1, 4, 2, 1.5, 0),
        "color": (0.1, 0.2, 0.3),
        "material": "car_paint",
    }
    with pytest.raises(SceneError, match=message):
        SceneObject(**{**base, **kwargs})


def test_duplicate_names_and_non_vehicle_target_are_rejected() -> None:
    obj = SceneObject("a", "bin", (0, 0, 0.5, 1, 1, 1, 0), (0.1, 0.1, 0.1), "plastic")
    lanes = (Lane(0, 3, 1, "driving"),)
    with pytest.raises(SceneError, match="unique"):
        Scene("s", 0, (obj, obj), lanes, (0, 10), (0, 0, 0))
    with pytest.raises(SceneError, match="not a vehicle"):
        Scene("s", 0, (obj,), lanes, (0, 10), (0, 0, 0), "a")
    with pytest.raises(SceneError, match="no object named"):
        Scene("s", 0, (obj,), lanes, (0, 10), (0, 0, 0), "ghost")
    with pytest.raises(SceneError, match="ego_start"):
        Scene("s", 0, (obj,), lanes, (0, 10), (0, math.nan, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2", "not valid JSON"),
        ('{"format": "other"}', "not a scene"),
        ('{"format": "robomr-sim-scene", "version": 9}', "version"),
        ('{"format": "robomr-sim-scene", "version": 1, "name": "x"}', "missing field"),
    ],
)
def test_malformed_scene_files_raise_scene_error(tmp_path, text, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SceneError, match=message):
        Scene.load(path)


def test_scene_file_with_a_bad_object_names_the_object(occluded_scene, tmp_path) -> None:
    data = occluded_scene.to_dict()
    data["objects"][5]["color"] = [2.0, 0.0, 0.0]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SceneError, match=data["objects"][5]["name"]):
        Scene.load(path)


def test_missing_file_and_bad_suffix_raise_scene_error(occluded_scene, tmp_path) -> None:
    with pytest.raises(SceneError, match="cannot read"):
        Scene.load(tmp_path / "nope.yaml")
    with pytest.raises(SceneError, match="suffix"):
        occluded_scene.save(tmp_path / "scene.txt")
