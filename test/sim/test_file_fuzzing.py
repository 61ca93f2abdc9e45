"""Property-based fuzzing of scenario and scene files: any edit of a valid file loads or
raises the module's error (ScenarioError, SceneError) with a one-line message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.generator import generate_scene
from sim.scenarios import ScenarioConfig, ScenarioError, load_scenario
from sim.scene import Scene, SceneError

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same examples on every run; robomr bench reliability --seed explores
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**66), 2**66) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=2)
    ),
    max_leaves=6,
)
FIELDS = st.sampled_from([*ScenarioConfig().to_dict(), "wheels"])


@FUZZ
@given(
    config=st.dictionaries(FIELDS, VALUES, max_size=4) | VALUES,
    seed=VALUES,
    name=VALUES,
)
def test_scenario_file(tmp_path: Path, config, seed, name) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": name, "default_seed": seed, "config": config}))
    try:
        load_scenario(path)
    except ScenarioError as err:
        assert "\n" not in str(err).strip()


@pytest.fixture(scope="module")
def scene_dict() -> dict:
    return generate_scene("open-road", None).to_dict()


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for k, v in items:
        out += _paths(v, (*prefix, k))
    return out


@FUZZ
@given(data=st.data(), value=VALUES)
def test_scene_file(tmp_path: Path, scene_dict: dict, data: st.DataObject, value) -> None:
    doc = json.loads(json.dumps(scene_dict))  # JSON: a full scene in YAML is slow to parse
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    file = tmp_path / "scene.json"
    file.write_text(json.dumps(doc))
    try:
        Scene.load(file)
    except SceneError as err:
        assert "\n" not in str(err).strip()
