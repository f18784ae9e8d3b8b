#!/usr/bin/env bash
# Set up vitlib on a fresh machine: Debian data and browser (when root), then a venv in .venv with
# the package and every extra. Offline-safe: torch and torchvision are pinned to builds on local disk.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # dataset-fashion-mnist: 70k real images, offline. chromium: kaleido's PNG export of plotly figures, and the
  # browser that tests/test_jupyterlab.py drives.
  if ! dpkg -s dataset-fashion-mnist chromium >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist chromium
  fi
else
  echo "setup.sh: not root: install Debian's dataset-fashion-mnist and chromium yourself for the data and PNG figures" >&2
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# constraints.txt: the versions CI tests with (make constraints refreshes it)
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "setup.sh: ready; activate with: source .venv/bin/activate"
