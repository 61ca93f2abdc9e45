"""ament linters (flake8, pep257, xmllint), as colcon test runs them on ROS 2.

The package configures them the way ament_python packages do, by the arguments its linter tests
pass: ament_flake8 gets the repository's .flake8 (ament's Jazzy defaults adjusted to ruff's
format, see that file), ament_pep257 ignores the same docstring codes. Without ROS 2 the tests
skip; `make lint` (scripts/ament_lint.py, run by .ci/run) checks the same configuration with
flake8 and pydocstyle here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from ament_lint import pep257_extra_ignores  # noqa: E402

ARGV = {
    "ament_flake8": ["--config", str(REPO / ".flake8"), str(REPO)],
    "ament_pep257": ["--add-ignore", *pep257_extra_ignores(), "--", str(REPO)],
    "ament_xmllint": [str(REPO / "package.xml")],
}


@pytest.mark.parametrize("linter", sorted(ARGV))
def test_ament_linter(linter: str) -> None:
    module = pytest.importorskip(
        f"{linter}.main", reason=f"{linter} (ROS 2 ament) is not installed here"
    )
    assert module.main(argv=ARGV[linter]) == 0, f"{linter} found problems"
