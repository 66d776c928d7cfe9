"""The help page's local-evidence section says what it adds, how its weights were chosen, that it needs
the species' records (so imported official models have none), how to switch it off in the panel and in
Processing, and that the model card reports pure SINR beside it."""
from __future__ import annotations

from sinr_qgis.core.resources import HELP_PAGE
from sinr_qgis.processing.scoring_params import LOCAL_EVIDENCE


def test_local_evidence_section_covers_the_formula_the_choice_the_models_and_the_switch():
    page = HELP_PAGE.read_text(encoding="utf-8")
    assert '<a href="#local_evidence">local evidence</a>' in page  # in the contents
    section = " ".join(page[page.index('id="local_evidence"'):page.index('id="ranges"')].split())
    assert ("the SINR logit, plus a weight times the logarithm of the species' record density there" in section
            and "plus a second weight times the logarithm of its local detection rate" in section)
    assert "a constant that lowers the score" in section
    assert "chosen on training records held out from validation models, never on the evaluation data" in section
    assert "imported official SINR checkpoints" in section and "they give pure SINR" in section
    assert "Untick <i>Use local evidence</i> in the panel" in section
    assert f"(<code>{LOCAL_EVIDENCE}</code>) to false in the Processing tools" in section
    assert "metadata <i>LOCAL_EVIDENCE</i>" in section
    assert "The model card reports the model's scores without local evidence beside those with it" in section
