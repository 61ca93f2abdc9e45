#!/usr/bin/env bash
# Creates .venv with the pinned requirements and installs robomr into it (editable).
# Installs the Debian packages the stack needs when they are missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# open3d-cpu links libusb-1.0.so.0; test/sim/test_sdf.py builds scripts/sdf_check.cc against
# the real SDFormat parser (libsdformat 12, SDF 1.9) with g++ and pkg-config; wordnet-base is
# the language model's corpus (offload/models/lm/corpus.py); lightgbm (the CPI predictor,
# offload/cluster) links the OpenMP runtime libgomp.so.1; the autoscaling tests start a
# redis-server (the node-local artifact cache)
DEBIAN_PACKAGES=(libusb-1.0-0 libsdformat-dev g++ pkg-config wordnet-base libgomp1 redis-server)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-venv: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, alone and pinned: it must come from the local CPU wheel, never a CUDA build.
.venv/bin/python -m pip install --quiet "$(grep -E '^torch==' requirements.txt)"
.venv/bin/python -m pip install --quiet -c constraints.txt -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "setup-venv: .venv ready"
