"""Declared node parameters: type, default, description and bounds, validated at start-up.

A node declares its parameters as a frozen dataclass whose fields are made with :func:`param`
(the generate_parameter_library idea in plain Python); both backends fill it from launch
overrides and ``ros__parameters`` files and reject out-of-bounds values with a clear error.

A node reads its parameters once, at start (the dataclass is frozen), so parameters are
read-only by default: on ROS 2, ``ros2 param set`` is then refused ("Trying to set a read-only
parameter", rclpy ``Node._apply_descriptor``) instead of reporting a change that has no effect.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

ParamValue = bool | int | float | str | list

T = TypeVar("T")


class ParameterError(ValueError):
    """A parameter value has the wrong type, is out of bounds, or is not declared."""


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter.

    Attributes:
        name: parameter name as seen by ``ros2 param``.
        default: default value; its Python type is the parameter's type.
        description: one line shown by ``ros2 param describe`` and ``--help`` listings.
        min_value: inclusive lower bound for numbers, or None.
        max_value: inclusive upper bound for numbers, or None.
        choices: allowed values for strings, or None.
        read_only: may not be changed after start-up (``ros2 param set`` is refused); true
            unless the node applies changes at run time.
    """

    name: str
    default: ParamValue
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True

    @property
    def type_name(self) -> str:
        return type(self.default).__name__

    def validate(self, value: Any, node_name: str = "") -> ParamValue:
        """The value coerced to the declared type.

        Raises:
            ParameterError: wrong type, out of [min_value, max_value], or not in choices.
        """
        where = f"{node_name}: parameter {self.name!r}" if node_name else f"parameter {self.name!r}"
        value = _coerce(self.default, value, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            bounded = self.min_value is not None or self.max_value is not None
            if bounded and value != value:  # rclpy's range check (lo <= v <= hi) rejects NaN
                raise ParameterError(
                    f"{where} = nan is not in [{self.min_value}, {self.max_value}]"
                )
            if self.min_value is not None and value < self.min_value:
                raise ParameterError(f"{where} = {value} is below its minimum {self.min_value}")
            if self.max_value is not None and value > self.max_value:
                raise ParameterError(f"{where} = {value} is above its maximum {self.max_value}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{where} = {value!r} is not one of {list(self.choices)}")
        return value


def _coerce(default: ParamValue, value: Any, where: str) -> ParamValue:
    expected = type(default)
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is str:
        if isinstance(value, str):
            return value
    elif expected is list and isinstance(value, (list, tuple)):
        if default and value:
            item_default = default[0]
            return [_coerce(item_default, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(value)
    raise ParameterError(
        f"{where} expects {expected.__name__}, got {type(value).__name__} {value!r}"
    )


def param(
    default: ParamValue,
    description: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    read_only: bool = True,
) -> Any:
    """A dataclass field that is also a declared ROS parameter (see :func:`specs_of`)."""
    spec = {
        "description": description,
        "min_value": min_value,
        "max_value": max_value,
        "choices": choices,
        "read_only": read_only,
    }
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"param": spec})
    return dataclasses.field(default=default, metadata={"param": spec})


def specs_of(params_cls: type) -> list[ParameterSpec]:
    """The parameter specs of a dataclass whose fields were made with :func:`param`."""
    if not dataclasses.is_dataclass(params_cls):
        raise ParameterError(f"{params_cls!r} is not a dataclass")
    specs = []
    for f in dataclasses.fields(params_cls):
        meta = f.metadata.get("param")
        if meta is None:
            raise ParameterError(f"{params_cls.__name__}.{f.name} was not declared with param()")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        specs.append(ParameterSpec(name=f.name, default=default, **meta))
    return specs


def build_params(params_cls: type[T], values: dict[str, ParamValue]) -> T:
    """An instance of ``params_cls`` from already-validated values (missing -> defaults)."""
    names = {f.name for f in dataclasses.fields(params_cls)}
    return params_cls(**{k: v for k, v in values.items() if k in names})


def descriptor_fields(spec: ParameterSpec) -> dict[str, Any]:
    """The rcl_interfaces/ParameterDescriptor fields of a spec, free of rclpy.

    Keys: ``description``, ``additional_constraints`` (the choices of a string),
    ``read_only``, ``dynamic_typing`` (true for floats, so that an
    integer in YAML, ``rate: 10``, is accepted and coerced as on the embedded backend), and
    ``floating_point_range`` / ``integer_range`` as ``(from, to)`` when the spec has bounds
    (an open side gets the type's limit, since a descriptor range has both ends).
    """
    fields: dict[str, Any] = {
        "description": spec.description,
        "additional_constraints": f"one of {list(spec.choices)}" if spec.choices else "",
        "read_only": spec.read_only,
        "dynamic_typing": isinstance(spec.default, float),
    }
    if spec.min_value is None and spec.max_value is None:
        return fields
    if isinstance(spec.default, float):
        lo = float(spec.min_value) if spec.min_value is not None else -1e308
        hi = float(spec.max_value) if spec.max_value is not None else 1e308
        fields["floating_point_range"] = (lo, hi)
    elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
        lo = int(spec.min_value) if spec.min_value is not None else -(2**63)
        hi = int(spec.max_value) if spec.max_value is not None else 2**63 - 1
        fields["integer_range"] = (lo, hi)
    return fields


@dataclass(frozen=True)
class ParamOverride:
    """A value for a node parameter from a launch file or parameter file.

    Attributes:
        value: the value as written (validated against the node's declaration later).
        source: where it came from, e.g. ``config/robomr.yaml: lidar_detector``, for errors.
        wildcard: set by a ``/**``-style section: nodes that do not declare it ignore it.
    """

    value: Any
    source: str
    wildcard: bool = False
