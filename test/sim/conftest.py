"""Shared fixtures for the simulator tests: hand-built scenes with known geometry, and one
generated scenario scene (generated once per session: it is deterministic)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from sim.generator import generate_scene
from sim.scene import Lane, Scene, SceneObject
from sim.world import World

SceneFactory = Callable[..., Scene]


@pytest.fixture
def make_scene() -> SceneFactory:
    """``make_scene([(name, kind, box), ...] or SceneObjects, target_name=None)``: a scene with
    one driving lane, the given objects (grey concrete boxes unless SceneObjects are given)."""

    def factory(objects: Sequence[Any], target_name: str | None = None, **kw: Any) -> Scene:
        objs = [
            o
            if isinstance(o, SceneObject)
            else SceneObject(
                o[0], o[1], tuple(o[2]), (0.5, 0.5, 0.5), "concrete", o[3] if len(o) > 3 else "box"
            )
            for o in objects
        ]
        return Scene(
            name="test",
            seed=0,
            objects=tuple(objs),
            lanes=(Lane(0.0, 3.5, 1, "driving"),),
            street_x_range_m=(0.0, 100.0),
            ego_start=(0.0, 0.0, 0.0),
            target_name=target_name,
            **kw,
        )

    return factory


@pytest.fixture(scope="session")
def occluded_scene() -> Scene:
    return generate_scene("occluded-target", 0)


@pytest.fixture(scope="session")
def occluded_world(occluded_scene: Scene) -> World:
    return World(occluded_scene)
