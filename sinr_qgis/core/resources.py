"""Where the plugin's shipped resources live, and what the shipped model is (its catalogue entry).

The paths are the same in the repository (``sinr_qgis/resources`` links to ``../resources``) and in
the plugin zip (a folder). Light on purpose: the plugin imports it when QGIS loads it.

The bundled model is described by :data:`BUNDLED`, as a weight catalogue describes pretrained
weights: its file, the file's SHA-256, the label users see, what it takes as input, its licence and
its data sources. The dock, the Processing help, the benchmarks and the tests read these facts
here; the plugin's model loader refuses a bundled file whose SHA-256 differs
(:func:`check_bundled_model`). Replacing the bundled model means replacing this entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .errors import BundleError

if TYPE_CHECKING:
    from .bundle import ModelBundle

PLUGIN_DIR = Path(__file__).resolve().parent.parent
RESOURCES = PLUGIN_DIR / "resources"
MODELS = RESOURCES / "models"
LAND_MASK = RESOURCES / "land_mask.tif"
ICONS = RESOURCES / "icons"
STYLES = RESOURCES / "styles"
HELP_PAGE = RESOURCES / "help" / "index.html"


@dataclass(frozen=True)
class CatalogueEntry:
    """A shipped model: what the plugin states about it without opening it.

    ``file`` is the bundle's name in :data:`MODELS`; its model card (``<stem>.md``) and benchmark
    report (``<stem>.eval.json``) sit beside it. ``encoding``, ``covariates`` and ``n_species`` are
    its input spec and output size (a test checks them against the file); ``licence`` is an SPDX
    id; ``sources`` names the training data for the credits line of the help."""

    file: str
    sha256: str  # hex, of the whole .sinr file
    label: str  # what the species are, for the dock and the help: "Bundled model (<label>)"
    taxa: str  # the label's last word(s), for short texts: "the bundled <taxa> model"
    encoding: str
    covariates: tuple[str, ...]
    n_species: int
    licence: str
    sources: str

    @property
    def path(self) -> Path:
        """The bundle file."""
        return MODELS / self.file

    @property
    def card(self) -> Path:
        """The model card (Markdown): training, evaluation, licence and data credits in full."""
        return self.path.with_suffix(".md")

    @property
    def evaluation(self) -> Path:
        """The committed benchmark report (JSON) of training/benchmarks/na_trees.py."""
        return self.path.with_suffix(".eval.json")


BUNDLED = CatalogueEntry(
    file="na_trees_coords_v2.sinr",
    sha256="91c5a15755aa56f6d7bc49b6fa66a4d9856a1bbd0ce151c0fcc052bc3264d8b9",
    label="North American trees",
    taxa="trees",
    encoding="spherical_harmonics",  # lonlat float32 [N, 2] only, WGS84 degrees
    covariates=(),
    n_species=169,
    licence="GPL-3.0-or-later",
    sources="USDA Forest Service FIA (public domain; via PalEON, Doser et al. 2025 and the FIESTA package), "
            "BIEN (via the hypervolume package) and GBIF downloads (CC0/CC-BY)",
)
BUNDLED_MODEL = BUNDLED.path


def check_bundled_model(bundle: ModelBundle) -> None:
    """Raise ``BundleError`` when ``bundle`` was loaded from the bundled model's file but that file is
    not the one :data:`BUNDLED` describes (its SHA-256 differs); any other bundle passes.

    ``ModelBundle.load`` already hashed the file (``bundle.sha256``), so this costs nothing. The
    training CLI re-saves the file in place when the model is rebuilt; only the plugin's loader calls
    this, so the rebuild works and the plugin refuses the new file until the entry is updated."""
    if bundle.path is None or Path(bundle.path).resolve() != BUNDLED_MODEL.resolve():
        return
    if bundle.sha256 != BUNDLED.sha256:
        raise BundleError(
            f"The bundled model {BUNDLED_MODEL} is not the file the plugin shipped (SHA-256 {bundle.sha256[:12]}…, "
            f"expected {BUNDLED.sha256[:12]}…): it was changed or damaged. Reinstall the plugin, or choose "
            "another .sinr model file.")


def help_url(section: str = "") -> str:
    """file:// URL of the help page, at anchor ``section`` (used by the algorithms' Help button)."""
    url = "file://" + quote(str(HELP_PAGE))
    return f"{url}#{section}" if section else url


def icon_path(name: str) -> str:
    """Absolute path of an icon file in resources/icons."""
    return str(ICONS / name)
