"""The help page's covariates section says how names, nodata, categories and coverage are handled
(issue 16), with the numbers the code applies."""
from __future__ import annotations

from sinr_qgis.core.resources import HELP_PAGE
from sinr_qgis.core.train_checks import MIN_COVERED_FRACTION
from sinr_qgis.core.training.lock import lock_path
from training.negatives import MAX_DRAWS_PER_POINT


def test_covariates_section_covers_names_nodata_categories_and_coverage():
    page = HELP_PAGE.read_text(encoding="utf-8")
    assert '<a href="#covariates">covariates</a>' in page  # in the contents
    section = " ".join(page[page.index('id="covariates"'):page.index('id="official"')].split())
    for topic in ("<b>Names.</b>", "<b>Nodata.</b>", "<b>Categories.</b>", "<b>Coverage.</b>", "<b>Memory.</b>",
                  "<b>Lasting models.</b>"):
        assert topic in section
    assert "<i>Covariate names</i>" in section and "<i>Categorical covariates</i>" in section
    assert "<code>--categorical NAME</code>" in section
    # the numbers the code uses: half the records covered, 1 % of the extent for random absences
    assert MIN_COVERED_FRACTION == 0.5 and "miss more than half of the records are refused" in section
    assert 100 / MAX_DRAWS_PER_POINT == 1 and "under 1 % of their extent are refused" in section
    assert "<code>.&lt;model&gt;.sinr.lock</code>" in section and lock_path("m.sinr").name == ".m.sinr.lock"
