"""The help page's data-footprint section (issue 13) says what the footprint is, the default, how to
show extrapolation, the band, what "What lives here?" says and why evaluation ignores it, with the
numbers the bundled model and the code use."""
from __future__ import annotations

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.footprint import DEFAULT_K, DEFAULT_PERCENTILE, DEFAULT_RESOLUTION, DISTANCE_BAND, NOVELTY_BAND
from sinr_qgis.core.resources import BUNDLED_MODEL, HELP_PAGE
from sinr_qgis.processing.grid_params import FOOTPRINT_BAND, OUTSIDE_FOOTPRINT


def test_footprint_section_covers_the_rule_the_default_the_options_and_evaluation():
    page = HELP_PAGE.read_text(encoding="utf-8")
    assert '<a href="#footprint">where the model knows (data footprint)</a>' in page  # in the contents
    section = " ".join(page[page.index('id="footprint"'):page.index('id="ranges"')].split())
    d = ModelBundle.load(BUNDLED_MODEL).footprint.distance
    assert (DEFAULT_K, DEFAULT_PERCENTILE, DEFAULT_RESOLUTION) == (10, 99.9, 0.25) == (d.k, 99.9, d.resolution)
    assert "<b>10th nearest training location</b>" in section and "the 99.9th percentile" in section
    assert f"<b>{d.threshold_km:.0f} km</b>" in section and "every 0.25 degree" in section
    assert "<b>empty (nodata)</b> by default" in section
    assert f"<code>{OUTSIDE_FOOTPRINT}</code>" in section and "<i>Show extrapolation</i>" in section
    assert f"<code>{FOOTPRINT_BAND}</code>" in section
    assert f"<i>{DISTANCE_BAND}</i>" in section and f"<i>{NOVELTY_BAND.split(' (')[0]}</i>" in section
    assert "the footprint reaches 187 km), so these scores are extrapolation." in section
    assert "<b>Evaluation ignores it.</b>" in section and "no footprint stored" in section
    assert "<code>python -m training footprint MODEL.sinr --data RECORDS.csv</code>" in section
