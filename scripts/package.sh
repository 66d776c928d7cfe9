#!/usr/bin/env bash
# `make package`: build the installable plugin zip with pb_tool -> build/sinr_qgis.<version>.zip
#
# It needs neither `make setup` nor the training stack (torch): pb_tool runs from its own small venv,
# build/package-venv (SINR_PACKAGE_VENV), made once with any Python 3 from requirements-package.txt.
#
# pb_tool copies what pb_tool.cfg lists, relative to its working folder. Running it inside
# sinr_qgis/ would also copy __pycache__ folders and leave zip_build/ in the package, so we stage a
# clean copy of the package first (symlinked metadata.txt, LICENSE and resources/ resolved to real
# files, no compiled files) and run `pb_tool zip` there. The zip holds one folder, sinr_qgis/, with a
# copy of the repository's training/ package (without benchmarks/) as sinr_qgis/training/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT_DIR=${SINR_PACKAGE_DIR:-$ROOT/build}
STAGE="$OUT_DIR/package-stage"
VERSION=$(sed -n 's/^version=//p' metadata.txt | tr -d '[:space:]')
ZIP="$OUT_DIR/sinr_qgis.$VERSION.zip"

command -v zip >/dev/null || { echo "package: the 'zip' program is missing (apt-get install zip)" >&2; exit 1; }
PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || { echo "package: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
VENV=${SINR_PACKAGE_VENV:-$ROOT/build/package-venv}
WANT=$(sha256sum requirements-package.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/pb_tool" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$WANT" ]; then
  echo "package: installing pb_tool into $VENV (once)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || { echo "package: could not create a venv (apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q -r requirements-package.txt || {
    echo "package: could not install pb_tool from requirements-package.txt" >&2; exit 1; }
  echo "$WANT" > "$VENV/.requirements.sha256"
fi
[ "${1:-}" = "--venv-only" ] && exit 0  # `make setup` prepares the venv, so tests build the zip offline
rm -rf "$STAGE"
mkdir -p "$OUT_DIR"
"$PYTHON" - "$ROOT/sinr_qgis" "$STAGE" "$ROOT/training" <<'PY'
import shutil, sys
# symlinks=False copies the targets of the links; nothing compiled or editor-made goes in.
junk = ("__pycache__", "*.pyc", "*.pyo", "*~", "*.orig", "*.rej", ".DS_Store", "*.part.*", "zip_build")
shutil.copytree(sys.argv[1], sys.argv[2], symlinks=False, ignore=shutil.ignore_patterns(*junk))
# The training code rides along as sinr_qgis/training (pure Python; the plugin runs it in the
# training process as `python -m sinr_qgis.training`): not its benchmarks, results or configs.
shutil.copytree(sys.argv[3], sys.argv[2] + "/training", symlinks=False,
                ignore=shutil.ignore_patterns(*junk, "benchmarks"))
PY
(cd "$STAGE" && "$VENV/bin/pb_tool" zip --config_file "$ROOT/pb_tool.cfg" > pb_tool.log 2>&1) || {
  cat "$STAGE/pb_tool.log" >&2; echo "package: pb_tool zip failed" >&2; exit 1; }
if grep -q "ERROR" "$STAGE/pb_tool.log"; then
  cat "$STAGE/pb_tool.log" >&2; echo "package: pb_tool could not copy a listed file" >&2; exit 1
fi
mv -f "$STAGE/zip_build/sinr_qgis.zip" "$ZIP"
rm -rf "$STAGE"
size=$(stat -c %s "$ZIP")
echo "$ZIP ($((size / 1024)) KiB)"
if [ "$size" -ge $((25 * 1024 * 1024)) ]; then
  echo "package: the zip is over the plugin repository's 25 MB limit" >&2; exit 1
fi
