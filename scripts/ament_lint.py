"""The ament linters of `colcon test`, run here with plain flake8 and pydocstyle (`make lint`).

colcon test runs ament_flake8, ament_pep257 and ament_xmllint (test/robomr_nodes/test_ament_lint.py,
skipped where ROS 2 is absent). This script checks the same configuration without ROS 2:
- flake8 with .flake8 and ament_flake8's plugins (flake8-quotes, -docstrings, -import-order,
  -builtins, -comprehensions, -blind-except, -class-newline, -deprecated);
- pydocstyle with ament_pep257's Jazzy default (the pep257 convention without D100-D107, D203,
  D212, D404) plus the docstring codes .flake8 ignores, on every .py file outside dot-dirs;
- package.xml is well-formed, format 3, and passes `xmllint --noout` where xmllint is installed
  (ament_xmllint also validates against the package_format3.xsd it downloads).
Usage: python scripts/ament_lint.py   (exit 1 on any problem)
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AMENT_PEP257_IGNORE = ["D100", "D101", "D102", "D103", "D104", "D105", "D106", "D107",
                       "D203", "D212", "D404"]  # fmt: skip


def pep257_extra_ignores() -> list[str]:
    """The docstring codes .flake8 ignores beyond ament's defaults (shared with ament_pep257)."""
    config = configparser.ConfigParser()
    config.read(REPO / ".flake8")
    codes = [c.strip() for c in config["flake8"]["extend-ignore"].replace("\n", ",").split(",")]
    return [c for c in codes if c.startswith("D") and c not in AMENT_PEP257_IGNORE]


def main() -> int:
    bin_dir = Path(sys.executable).parent
    failed = 0
    steps = [
        ("flake8", [str(bin_dir / "flake8"), "--config", str(REPO / ".flake8"), str(REPO)]),
        (
            "pep257",
            [
                str(bin_dir / "pydocstyle"),
                "--convention=pep257",
                "--add-ignore=" + ",".join(AMENT_PEP257_IGNORE + pep257_extra_ignores()),
                r"--match=.*\.py",
                r"--match-dir=[^\._].*",
                str(REPO),
            ],
        ),
    ]
    if shutil.which("xmllint"):
        steps.append(("xmllint", ["xmllint", "--noout", str(REPO / "package.xml")]))
    for name, cmd in steps:
        result = subprocess.run(cmd, cwd=REPO, check=False)
        print(f"ament_lint: {name}: {'ok' if result.returncode == 0 else 'FAILED'}")
        failed += result.returncode != 0
    root = ET.parse(REPO / "package.xml").getroot()  # raises on malformed XML
    if root.get("format") != "3":
        print("ament_lint: package.xml: format must be 3")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
