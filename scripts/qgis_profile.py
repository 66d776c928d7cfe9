"""Create or update an isolated QGIS profile that loads the plugin from a given folder.

Used by ``make desktop`` (scripts/desktop.sh) and the desktop/package tests, so a user's own
profile is never touched. Settings are written with QSettings, in the format QGIS reads.

    python scripts/qgis_profile.py PROFILES_DIR PROFILE_NAME PLUGIN_SOURCE [--copy] [--set KEY=VALUE ...]

PLUGIN_SOURCE is a plugin folder (``sinr_qgis``); it is symlinked into the profile's
``python/plugins`` (or copied with ``--copy``) and enabled under ``[PythonPlugins]``.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

PLUGIN_NAME = "sinr_qgis"

# Settings that keep a fresh profile quiet and deterministic: no first-run dialogs, no news feed,
# no network look-ups, a known window layout.
QUIET_SETTINGS = {
    "PythonPlugins/sinr_qgis": True,
    "qgis/checkVersion": False,
    "qgis/showTips": False,
    "qgis/showTips322": False,
    "app/news-feed/disabled": True,
    "core/NewsFeed/httpsfeedqgisorg/disabled": True,
    "qgis/allowVersionCheck": False,
    "plugins/automatically-check-for-updates": False,
    "app/plugin_installer/checkOnStart": False,
    "qgis/enable_render_caching": True,
    "qgis/askToSaveProjectChanges": False,
    "qgis/askToDeleteLayers": False,
    "qgis/warnOldProjectVersion": False,
    "Processing/Configuration/SHOW_DEBUG_IN_DIALOG": False,
    "migration/settings": True,
    "UI/UITheme": "default",
}


def profile_dir(profiles: Path, name: str) -> Path:
    """The folder QGIS uses for profile ``name`` under ``--profiles-path profiles``."""
    return profiles / "profiles" / name


def install_plugin(profiles: Path, name: str, source: Path, copy: bool = False) -> Path:
    """Put the plugin folder into the profile (symlink or copy) and return its installed path."""
    plugins = profile_dir(profiles, name) / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / PLUGIN_NAME
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    if copy:
        shutil.copytree(source, target, symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        target.symlink_to(source.resolve(), target_is_directory=True)
    return target


def write_settings(profiles: Path, name: str, values: dict) -> Path:
    """Write ``values`` into the profile's QGIS3.ini with QSettings and return the ini path."""
    from qgis.PyQt.QtCore import QSettings

    ini = profile_dir(profiles, name) / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    settings = QSettings(str(ini), QSettings.IniFormat)
    for key, value in values.items():
        settings.setValue(key, value)
    settings.sync()
    return ini


def prepare_profile(profiles: Path, name: str, source: Path, copy: bool = False,
                    extra: dict | None = None) -> Path:
    """Install and enable the plugin in an isolated profile; return the profile folder."""
    install_plugin(profiles, name, source, copy=copy)
    write_settings(profiles, name, {**QUIET_SETTINGS, **(extra or {})})
    return profile_dir(profiles, name)


def _parse_value(text: str):
    return {"true": True, "false": False}.get(text.lower(), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", type=Path)
    parser.add_argument("name")
    parser.add_argument("plugin", type=Path)
    parser.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = _parse_value(value)
    print(prepare_profile(args.profiles, args.name, args.plugin, copy=args.copy, extra=extra))


if __name__ == "__main__":
    main()
