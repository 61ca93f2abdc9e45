"""Declared parameters: defaults, overrides, bounds, unknown names."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from robomr_nodes.api import NodeHandle, RobomrNode
from robomr_nodes.params import ParameterError, ParameterSpec, ParamOverride, param
from robomr_nodes.runtime.executor import EmbeddedExecutor


@dataclass(frozen=True)
class DemoParams:
    rate_hz: float = param(10.0, "rate", min_value=0.1, max_value=100.0)
    count: int = param(3, "count", min_value=1)
    mode: str = param("fast", "mode", choices=("fast", "slow"))
    enabled: bool = param(True, "switch")
    weights: list = param([1.0, 2.0], "weights")


class ParamNode(RobomrNode):
    NAME = "param_node"

    def __init__(self, handle: NodeHandle) -> None:
        super().__init__(handle)
        self.params = handle.declare_params(DemoParams)


def _node(**overrides: object) -> ParamNode:
    params = {k: ParamOverride(v, "test.yaml: param_node") for k, v in overrides.items()}
    return EmbeddedExecutor().add_node(ParamNode, params=params)


def test_defaults_apply_without_overrides() -> None:
    assert _node().params == DemoParams()


def test_overrides_are_validated_and_int_becomes_float() -> None:
    p = _node(rate_hz=20, count=5, mode="slow", enabled=False, weights=[3, 4]).params
    assert (p.rate_hz, p.count, p.mode, p.enabled, p.weights) == (
        20.0,
        5,
        "slow",
        False,
        [3.0, 4.0],
    )
    assert isinstance(p.rate_hz, float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate_hz": 1000.0}, r"rate_hz' = 1000.0 is above its maximum 100.0 \(set in test.yaml"),
        ({"rate_hz": 0.0}, "is below its minimum 0.1"),
        ({"count": 2.5}, "expects int, got float"),
        ({"enabled": "yes"}, "expects bool, got str"),
        ({"mode": "warp"}, r"is not one of \['fast', 'slow'\]"),
        ({"weights": ["a"]}, "weights'\\[0\\] expects float"),
    ],
)
def test_bad_values_are_rejected_naming_the_parameter(overrides: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _node(**overrides)


def test_unknown_parameter_names_its_source_and_the_declared_ones() -> None:
    with pytest.raises(ParameterError, match=r"test.yaml: param_node: \['rat_hz'\] not declared"):
        _node(rat_hz=5.0)


def test_wildcard_and_standard_parameters_are_ignored_by_nodes_that_lack_them() -> None:
    params = {"use_sim_time": ParamOverride(True, "f"), "other": ParamOverride(1, "f", True)}
    node = EmbeddedExecutor().add_node(ParamNode, params=params)
    assert node.params == DemoParams()


def test_spec_validate_without_bounds_accepts_any_number() -> None:
    spec = ParameterSpec("x", 1.0, "free")
    assert spec.validate(-1e9) == -1e9
