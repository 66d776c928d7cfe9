#!/usr/bin/env bash
# `make desktop`: start the real QGIS desktop with this checkout's plugin, in an isolated profile.
#
# The profile lives under build/qgis-profile (override with SINR_PROFILES / SINR_PROFILE), so a
# user's own QGIS profile is never touched. The plugin folder is symlinked (edits show up after a
# QGIS restart or Plugin Reloader), enabled in the profile's QGIS3.ini, and the project's venv is put
# on PYTHONPATH so QGIS's Python sees onnxruntime. Extra arguments go to qgis (e.g. --code x.py).
# Without a display it runs under Xvfb (useful with --code for scripted checks).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROFILES=${SINR_PROFILES:-$ROOT/build/qgis-profile}
PROFILE=${SINR_PROFILE:-sinr}
VENV_SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

.venv/bin/python scripts/qgis_profile.py "$PROFILES" "$PROFILE" "$ROOT/sinr_qgis" >/dev/null

export PYTHONPATH="$VENV_SITE${PYTHONPATH:+:$PYTHONPATH}"
# The Makefile exports QT_QPA_PLATFORM=offscreen for the headless tests; the desktop needs a screen.
unset QT_QPA_PLATFORM
QGIS_ARGS=(--profiles-path "$PROFILES" --profile "$PROFILE" --nologo --noversioncheck "$@")
echo "QGIS profile: $PROFILES/profiles/$PROFILE (plugin: $ROOT/sinr_qgis)"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No DISPLAY: running QGIS under Xvfb (nothing will be visible)." >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" qgis "${QGIS_ARGS[@]}"
fi
exec qgis "${QGIS_ARGS[@]}"
