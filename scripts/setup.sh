#!/usr/bin/env bash
# One-command, idempotent set-up on a fresh Debian 12 machine:
# QGIS 3.22 + GDAL from apt, a venv that sees them, pinned pip packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# zip: pb_tool (make package). libgslcblas0, python3-scipy, python3-pip come with QGIS here and are
# named for the tests of issue 15: GSL's CBLAS capturing numpy's product, scipy's BLAS avoiding it,
# and the onnxruntime install run by QGIS's own Python with its pip.
APT_PACKAGES="qgis python3-qgis python3-gdal gdal-bin python3-venv xvfb xauth zip libgslcblas0 python3-scipy python3-pip"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "Installing apt packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
# The CPU torch wheel and its companions, kept for the tests that set up a training Python from
# local files (tests/helpers/setup_helpers.local_torch_source), so no test downloads them
if [ ! -f build/torch-wheels/.done ]; then
  mkdir -p build/torch-wheels
  # exactly the venv's torch (the CPU build requirements.txt installed), not the newest CUDA one
  specs=$(.venv/bin/python -c "import torch; from sinr_qgis.toolbelt.training_python import COMPANIONS; print(' '.join(['torch==' + torch.__version__, *COMPANIONS]))")
  echo 'numpy<2' > build/torch-wheels.constraints
  # shellcheck disable=SC2086  # the specifiers are words
  .venv/bin/python -m pip download -q --only-binary=:all: --dest build/torch-wheels \
    --constraint build/torch-wheels.constraints $specs
  touch build/torch-wheels/.done
fi
bash scripts/package.sh --venv-only  # pb_tool's own small venv (make package), so no test downloads it
.venv/bin/python -c "import qgis.core, osgeo.gdal_array, numpy, torch, onnxruntime; print('setup ok: numpy', numpy.__version__, 'torch', torch.__version__)"
