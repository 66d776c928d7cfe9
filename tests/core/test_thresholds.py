"""LPT-R thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core.bundle import Species
from sinr_qgis.core.errors import SinrError
from sinr_qgis.core.thresholds import (
    THRESHOLD_FIXED,
    THRESHOLD_LPT_R,
    THRESHOLD_LPTR,
    THRESHOLD_NONE,
    lpt_r,
    lpt_r_per_species,
    species_thresholds,
    threshold_argument,
)


def test_lpt_r_is_the_fifth_percentile():
    v = np.arange(101) / 100.0  # 0.00 .. 1.00
    assert lpt_r(v) == pytest.approx(0.05)
    assert lpt_r(v, 0) == 0.0 and lpt_r(v, 50) == pytest.approx(0.5)
    assert lpt_r(np.r_[v, np.nan]) == pytest.approx(0.05)
    assert np.isnan(lpt_r(np.array([])))
    with pytest.raises(ValueError):
        lpt_r(v, 120)


def test_lpt_r_per_species():
    probs = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2])
    sp = np.array([0, 0, 0, 2, 2, 2])
    thr = lpt_r_per_species(probs, sp, 4, percentile=50)
    assert thr[0] == pytest.approx(0.5) and thr[2] == pytest.approx(0.3)
    assert np.isnan(thr[1]) and np.isnan(thr[3])


def test_threshold_modes_give_the_maps_threshold():
    assert threshold_argument(THRESHOLD_NONE, 0.3) is None
    assert threshold_argument(THRESHOLD_FIXED, 0.3) == 0.3
    assert threshold_argument(THRESHOLD_LPTR, 0.3) == THRESHOLD_LPT_R == "lpt_r"
    with pytest.raises(SinrError, match=r"Unknown threshold option 7; expected 0 \(none\), 1 \(fixed\) or 2"):
        threshold_argument(7, 0.3)


def test_species_thresholds_per_mode():
    species = [Species(0, "a", "A", 3, threshold=0.2), Species(1, "b", "B", 3)]
    fixed, warnings = species_thresholds(species, THRESHOLD_FIXED, 0.3)
    assert fixed.dtype == np.float32 and fixed.tolist() == pytest.approx([0.3, 0.3]) and warnings == []
    lptr, warnings = species_thresholds(species, THRESHOLD_LPTR, 0.4)  # b has none: the value instead
    assert lptr.tolist() == pytest.approx([0.2, 0.4])
    assert warnings == ["No LPT-R threshold stored for 1 species (B (b)); used the fixed threshold 0.4 instead. "
                        "Re-export the model with thresholds."]
    with pytest.raises(SinrError, match="Species richness needs a threshold: choose LPT-R or a fixed value"):
        species_thresholds(species, THRESHOLD_NONE, 0.5)
