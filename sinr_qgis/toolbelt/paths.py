"""Where the plugin's shipped resources live (the same in the repository and in the plugin zip)."""
from __future__ import annotations

from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent
RESOURCES = PLUGIN_DIR / "resources"  # a link to ../resources in the repository; a folder in the zip
BUNDLED_MODEL = RESOURCES / "models" / "na_trees_coords_v1.sinr"
LAND_MASK = RESOURCES / "land_mask.tif"
ICONS = RESOURCES / "icons"
STYLES = RESOURCES / "styles"
HELP_PAGE = RESOURCES / "help" / "index.html"


def help_url(section: str = "") -> str:
    """file:// URL of the help page, at anchor ``section`` (used by the algorithms' Help button)."""
    from urllib.parse import quote

    url = "file://" + quote(str(HELP_PAGE))
    return f"{url}#{section}" if section else url


def icon_path(name: str) -> str:
    """Absolute path of an icon file in resources/icons."""
    return str(ICONS / name)
