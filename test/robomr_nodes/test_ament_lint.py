"""ament linters (copyright, flake8, pep257, xmllint), as colcon test runs them on ROS 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("linter", ["ament_flake8", "ament_pep257", "ament_xmllint"])
def test_ament_linter(linter: str) -> None:
    module = pytest.importorskip(
        f"{linter}.main", reason=f"{linter} (ROS 2 ament) is not installed here"
    )
    assert module.main(argv=[]) == 0, f"{linter} found problems"
