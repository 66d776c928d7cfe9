"""Help paragraphs shared by every algorithm's help panel, and where the full guide opens.

The full guide is resources/help/index.html (the algorithms' Help button and the plugin's Help
menu open it); these paragraphs are its short form for the dialog's side panel.
"""
from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication

from ..core.resources import BUNDLED


def _tr(text: str) -> str:
    return QCoreApplication.translate("SinrProcessing", text)


ABOUT_SINR = _tr(
    "<p><b>About the model.</b> SINR (Spatial Implicit Neural Representations, Cole et al., ICML "
    "2023) is a neural network trained on presence-only records: places where species were seen, "
    "with no list of where they were not. It turns a location (and, in env models, climate values "
    "there) into an embedding shared by all species; one linear read-out per species gives a score "
    "from 0 to 1. It knows nothing about soils, land use or dispersal except through where the "
    "records are.</p>")

EXPERT_RANGES = _tr(
    "<p><b>Expert ranges</b> (e.g. Little's Atlas of United States Trees, IUCN maps) are good at a "
    "species' overall extent, including places nobody recorded, and are independent of the training "
    "records. They are bad at detail inside the outline (unsuitable habitat counts as present), "
    "outlying populations, recent change (Little's maps date from 1971-1978) and the exact edge. AP "
    "against them measures agreement with an expert's outline, not with the truth.</p>")

CREDITS = _tr(
    "<p><b>Bundled model.</b> {n_species} {label}, trained on open records: {sources}. Cite them and "
    "Cole et al. (2023) with maps made from it.</p>").format(
        n_species=BUNDLED.n_species, label=BUNDLED.label, sources=BUNDLED.sources)

MORE_HELP = _tr(
    "<p>The <b>Help</b> button opens the full guide: the model, how to read its numbers, expert "
    "ranges, average precision, training, and the full data credits.</p>")

# Which part of the guide each algorithm's Help button opens (default: reading the numbers).
HELP_SECTIONS = {"evaluate_ranges": "ranges", "evaluate_presence_absence": "ap",
                 "train_model": "training", "location_embeddings": "model", "model_species": "reliability",
                 "import_sinr_checkpoint": "official"}


def help_section(algorithm_name: str) -> str:
    """The anchor of the guide for an algorithm's ``name()``."""
    return HELP_SECTIONS.get(algorithm_name, "numbers")
