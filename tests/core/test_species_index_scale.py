"""The species lookup at paper scale: built once per model and shared by the bundle's lookups and
range-layer matching, the same rules as before its speed-ups, and correct on 47,375 species."""
from __future__ import annotations

import itertools

import pytest

from sinr_qgis.core import species_names
from sinr_qgis.core.errors import SpeciesNotFoundError
from sinr_qgis.core.evaluation import match_species
from sinr_qgis.core.species_names import _LATIN_ENDINGS, SpeciesIndex, _without_ending, index_for, split_authorship
from tests.conftest import PAPER_SPECIES
from tests.factories import fixture_bundle


@pytest.fixture
def builds(monkeypatch):
    """How many ``SpeciesIndex`` tables are built."""
    count = []
    real = SpeciesIndex.__init__

    def spy(self, *args, **kwargs):
        count.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(SpeciesIndex, "__init__", spy)
    return count


def test_the_bundle_and_range_matching_share_one_index(tmp_path, builds):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=20)
    assert b._index is None  # not built at load: an algorithm that looks nothing up never pays for it
    assert b.find_species("Species number7").index == 7
    assert len(builds) == 1
    assert match_species(["sp003", "Species number9", "nope"], b.species).matched == {
        "sp003": b.species[3], "Species number9": b.species[9]}
    assert index_for(b.species).owner == "the model"  # the shared tables under the caller's name
    assert len(builds) == 1
    with pytest.raises(SpeciesNotFoundError, match="is not in model 'm'"):
        b.find_species("nope")
    b.species = b.species[:10]  # other species: a new index
    assert b.species_index().owner == "m" and len(builds) == 2
    assert index_for(b.species).species == b.species and len(builds) == 2


def test_the_ending_rule_is_unchanged():
    """``_without_ending`` (set look-ups) against the rule as it was written: the first of the
    endings, longest first, that leaves at least three letters."""
    def rule(word):
        return next((word[:-len(e)] for e in _LATIN_ENDINGS if word.endswith(e) and len(word) > len(e) + 2), word)

    for n in range(7):
        for letters in itertools.product("aeiousmb", repeat=n):
            word = "".join(letters)
            assert _without_ending(word) == rule(word), word


@pytest.mark.parametrize("text,split", [
    ("sp012", None), ("Quercus alba", None), ("Quercus  alba", None), ("47375", None),
    ("Quercus alba L.", ("Quercus alba", "L.")), ("Quercus alba L., 1753", ("Quercus alba", "L., 1753")),
    ("Abies x borisii-regis Mattf.", ("Abies × borisii-regis", "Mattf.")),
    ("Quercus,alba,L.", None), ("Picea abies (L.) H.Karst.", ("Picea abies", "(L.) H.Karst.")),
])
def test_authorship_splits_as_before_with_the_short_name_shortcut(text, split):
    assert split_authorship(text) == split


def test_a_paper_scale_model_finds_and_suggests_its_species(tmp_path):
    b = fixture_bundle(tmp_path / "paper_scale.sinr", n_species=PAPER_SPECIES)  # the paper's species count
    assert b.find_species("species NUMBER4711").index == 4711
    assert [s.index for s in b.find_species_list("sp47374, Species number0 (sp000)")] == [47374, 0]
    assert [s.code for s in b.species_index().suggestions("Species numbr4711")][:1] == ["sp4711"]
    assert species_names._last_index is b.species_index()  # one index for the model
