"""Range checks shared by the CROA settings (planning/croa/config.py, robot.py)."""

from __future__ import annotations

import math


class ConfigError(ValueError):
    """A planner or robot setting is out of range (the message names the field and limit)."""


def check_number(
    owner: object, name: str, lo: float, hi: float, error: type[ValueError] = ConfigError
) -> None:
    """Raises ``error`` unless ``owner.name`` is a finite number in [lo, hi]."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{name}={value!r}: must be a number in [{lo}, {hi}]")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise error(f"{name}={value!r}: must be finite and in [{lo}, {hi}]")


def check_int(
    owner: object, name: str, lo: int, hi: int, error: type[ValueError] = ConfigError
) -> None:
    """Raises ``error`` unless ``owner.name`` is an int (not a bool) in [lo, hi]."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise error(f"{name}={value!r}: must be an integer in [{lo}, {hi}]")
