"""LPT-R thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core.thresholds import lpt_r, lpt_r_per_species


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
