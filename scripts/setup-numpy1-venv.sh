#!/usr/bin/env bash
# Creates .venv-numpy1: the main .venv seen through an overlay that holds numpy 1.x and the
# versions it needs (scripts/requirements_ros.py --overrides), as a ROS 2 Jazzy machine has them.
# The overlay's own site-packages come first on sys.path and the main venv's follow (a .pth
# line), so only the overridden packages are installed: a few seconds, not a second full venv.
set -euo pipefail
cd "$(dirname "$0")/.."
OVERLAY="${NUMPY1_VENV:-.venv-numpy1}"
[ -x .venv/bin/python ] || { echo "setup-numpy1-venv: .venv is missing: run make venv" >&2; exit 1; }
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
MAIN_SITE="$(purelib .venv/bin/python)"
rm -rf "$OVERLAY"
.venv/bin/python -m venv --without-pip "$OVERLAY"
SITE="$(purelib "$OVERLAY/bin/python")"
echo "import site; site.addsitedir('$MAIN_SITE')" > "$SITE/_robomr_main_venv.pth"
mapfile -t PINS < <(.venv/bin/python scripts/requirements_ros.py --overrides)
.venv/bin/python -m pip install --quiet --no-deps --target "$SITE" "${PINS[@]}"
"$OVERLAY/bin/python" -c 'import numpy; print("setup-numpy1-venv: numpy", numpy.__version__)'
