"""Species names as free text: one key for matching, the model lookup, lists of species, reference matching."""
from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from sinr_qgis.core import evaluation
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.errors import AmbiguousSpeciesError, SpeciesNotFoundError
from sinr_qgis.core.species_names import (
    format_species_list,
    isolate_bidi,
    name_key,
    split_authorship,
    split_last_item,
)

NAMES = ["Abies borisii-regis", "Abies × borisii-regis", "Quercus alba L., 1753", "Abies alba", "Ель сибирская",
         "Épicéa commun", "Acer rubrum L.", "Acer rubrum Mill.", "Picea abies (L.) H.Karst.", "Mentha × piperita"]


def _bundle(names=NAMES, codes=None) -> ModelBundle:
    """A bundle with just a species list: the lookup needs no weights."""
    codes = codes or [f"c{i}" for i in range(len(names))]
    species = [Species(i, c, n, 1) for i, (c, n) in enumerate(zip(codes, names))]
    return ModelBundle(meta={"name": "names"}, species=species, weights={}, onnx_bytes=b"")


def _codes(species) -> list[str]:
    return [s.code for s in species]


# ---- the matching key -----------------------------------------------------------------------
def test_name_key_unifies_unicode_form_case_spacing_and_invisible_characters():
    nfc = "Épicéa commun"
    assert name_key(unicodedata.normalize("NFD", nfc)) == name_key(nfc) == "épicéa commun"
    assert name_key("  ÉPICÉA\u00a0\tcommun ") == "épicéa commun"  # NBSP and a tab are spaces
    assert name_key("Épi\u200bcéa\u200f commun\u00ad") == "épicéa commun"  # zero-width space, RLM, soft hyphen
    assert name_key("Abies borisii\u2010regis") == name_key("Abies borisii-regis")  # Unicode hyphen
    assert name_key("Quercus alba L.,1753") == name_key("Quercus alba L. ,  1753") == "quercus alba l., 1753"
    assert name_key("ЕЛЬ  сибирская") == "ель сибирская"
    assert name_key(None) == name_key("  ") == ""


def test_hybrid_sign_spellings_are_one_sign_but_never_the_non_hybrid():
    forms = ["Abies × borisii-regis", "Abies ×borisii-regis", "Abies x borisii-regis", "Abies X borisii-regis",
             "abies ⨯ borisii-regis", "Abies ✕ borisii-regis"]
    assert {name_key(f) for f in forms} == {"abies × borisii-regis"}
    assert name_key("Abies borisii-regis") == "abies borisii-regis"
    assert name_key("×Agropogon littoralis") == name_key("x Agropogon littoralis") == "× agropogon littoralis"
    assert name_key("Abies xylophila") == "abies xylophila"  # an epithet starting with x is not a hybrid sign


def test_split_authorship():
    assert split_authorship("Quercus alba L., 1753") == ("Quercus alba", "L., 1753")
    assert split_authorship("Picea abies (L.) H.Karst.") == ("Picea abies", "(L.) H.Karst.")
    assert split_authorship("Puma concolor (Linnaeus, 1771)") == ("Puma concolor", "(Linnaeus, 1771)")
    assert split_authorship("Acer saccharum subsp. nigrum (F.Michx.) Desmarais") == (
        "Acer saccharum subsp. nigrum", "(F.Michx.) Desmarais")
    assert split_authorship("Abies × borisii-regis Mattf.") == ("Abies × borisii-regis", "Mattf.")
    assert split_authorship("Aus bus de Candolle") == ("Aus bus", "de Candolle")
    # no authorship: bare names, trinomials, codes, vernacular names, two names in a row
    for text in ("Quercus alba", "Canis lupus familiaris", "ACERRUBR", "Ель сибирская", "Acer rubrum, Acer saccharum",
                 "Quercus alba L., 1753, Abies alba Mill."):
        assert split_authorship(text) is None, text


# ---- one species -----------------------------------------------------------------------------
@pytest.mark.parametrize("query, code", [
    ("Abies x borisii-regis", "c1"), ("abies ×borisii-regis", "c1"), ("ABIES X BORISII-REGIS", "c1"),
    ("Abies borisii-regis", "c0"), ("abies\u00a0borisii-regis", "c0"),
    (unicodedata.normalize("NFD", "épicéa COMMUN"), "c5"), ("ель  сибирская", "c4"),
    ("Quercus alba L., 1753", "c2"), ("quercus alba l.,1753", "c2"),
    ("Quercus alba", "c2"),  # bare name -> the model's name with authorship
    ("Abies alba Mill.", "c3"),  # name with authorship -> the model's bare name
    ("Picea abies", "c8"), ("Mentha x piperita L.", "c9"),
    ("c4", "c4"), ("C4", "c4"), ("Ель сибирская (c4)", "c4"), ("Acer rubrum L.", "c6"),
])
def test_find_species_by_any_spelling(query, code):
    assert _bundle().find_species(query).code == code


def test_find_species_refuses_ambiguous_and_unknown_names():
    b = _bundle()
    with pytest.raises(AmbiguousSpeciesError, match=r"'Acer rubrum' matches 2 species .*Acer rubrum L\. \(c6\); "
                                                   r"Acer rubrum Mill\. \(c7\).*Give the code"):
        b.find_species("Acer rubrum")
    # two different authorships are two taxa: no match, and the close names are offered
    with pytest.raises(SpeciesNotFoundError, match=r"'Quercus alba Willd\.' is not in model 'names'"):
        b.find_species("Quercus alba Willd.")
    with pytest.raises(SpeciesNotFoundError, match=r"Did you mean: Abies borisii-regis \(c0\); "
                                                   r"Abies × borisii-regis \(c1\)\?"):
        b.find_species("borisii")


def test_exact_code_wins_over_a_folded_spelling():
    b = _bundle(["Aus bus", "Aus cus"], codes=["ABC", "abc"])
    assert b.find_species("ABC").index == 0 and b.find_species("abc").index == 1
    with pytest.raises(AmbiguousSpeciesError, match="matches 2 species"):
        b.find_species("Abc")


def test_lookup_follows_renamed_species():
    b = _bundle()
    assert b.find_species("Abies alba").code == "c3"
    b.species[3].name = "Abies nordmanniana"  # e.g. names mapped in after loading
    assert b.find_species("abies nordmanniana").code == "c3"
    with pytest.raises(SpeciesNotFoundError):
        b.find_species("Abies alba")


# ---- lists of species ------------------------------------------------------------------------
@pytest.mark.parametrize("text, codes", [
    ("Quercus alba L., 1753", ["c2"]),  # a comma inside one name
    ("Quercus alba L., 1753, Abies alba", ["c2", "c3"]),
    ("Abies alba, Quercus alba L.,1753, Ель сибирская", ["c3", "c2", "c4"]),
    ('"Quercus alba L., 1753", "Abies alba"', ["c2", "c3"]),
    ("\u201cQuercus alba L., 1753\u201d, c0", ["c2", "c0"]),  # typographic quotes
    ("Abies alba\nQuercus alba L., 1753\r\n\nAbies x borisii-regis\n", ["c3", "c2", "c1"]),  # one per line
    ("c0, c1,, c0 ,", ["c0", "c1"]),  # codes; empty items and duplicates dropped
    ("Abies alba Mill., Quercus alba", ["c3", "c2"]),
    ("Acer rubrum L., Acer rubrum Mill.", ["c6", "c7"]),
])
def test_find_species_list(text, codes):
    assert _codes(_bundle().find_species_list(text)) == codes


def test_species_lists_that_cannot_be_read_are_refused_with_the_reason():
    b = _bundle()
    with pytest.raises(SpeciesNotFoundError, match=r"Species 'Bogus' is not in model"):
        b.find_species_list("Quercus alba L., 1753, Bogus")
    with pytest.raises(SpeciesNotFoundError, match="opens a quote that is never closed"):
        b.find_species_list('Abies alba, "Quercus alba L., 1753')
    with pytest.raises(SpeciesNotFoundError, match="text follows the quoted name 'Abies alba' without a comma"):
        b.find_species_list('"Abies alba" c0')
    with pytest.raises(SpeciesNotFoundError, match="No species given"):
        b.find_species_list(" ,\n ")


def test_a_list_with_two_readings_is_ambiguous_until_quoted():
    # "Quercus alba L., 1753" is one species, but "Quercus alba L." and "1753" are species too
    b = _bundle(["Quercus alba L., 1753", "Quercus alba L.", "1753"], codes=["qa", "ql", "y"])
    assert _codes(b.find_species_list("Quercus alba L., 1753")) == ["qa"]  # the whole text first
    with pytest.raises(AmbiguousSpeciesError, match=r"can be read two ways: 'Quercus alba L\., 1753' as one species "
                                                   r"\(Quercus alba L\., 1753 \(qa\)\) or 'Quercus alba L\.'.*"
                                                   r"double quotes"):
        b.find_species_list("qa, Quercus alba L., 1753")
    assert _codes(b.find_species_list('qa, "Quercus alba L., 1753"')) == ["qa"]
    assert _codes(b.find_species_list('"Quercus alba L.", "1753", qa')) == ["ql", "y", "qa"]
    assert _codes(b.find_species_list("Quercus alba L.\n1753")) == ["ql", "y"]


def test_a_list_given_as_items_is_not_split():
    assert _codes(_bundle().find_species_list(["Quercus alba L., 1753", " c0 ", ""])) == ["c2", "c0"]


def test_format_species_list_round_trips_through_the_parser_and_csv():
    items = ["Quercus alba L., 1753", 'Abies "alba"', "c0", "Ель сибирская"]
    text = format_species_list(items)
    assert text == '"Quercus alba L., 1753","Abies ""alba""",c0,Ель сибирская'
    assert next(csv.reader(io.StringIO(text))) == items
    b = _bundle(["Quercus alba L., 1753", 'Abies "alba"', "Ель сибирская"], codes=["qa", "aa", "c0"])
    assert _codes(b.find_species_list(text)) == ["qa", "aa", "c0"]
    assert format_species_list(["aaa", "bbb", "ccc"], max_chars=8) == "aaa,bbb"  # whole items only


def test_split_last_item_and_bidi_isolation():
    assert split_last_item("Abies alba, Quer") == ("Abies alba, ", "Quer")
    assert split_last_item('c0, "Quercus alba L., 17') == ("c0, ", "Quercus alba L., 17")
    assert split_last_item('"Quercus alba L., 1753", Ab') == ('"Quercus alba L., 1753", ', "Ab")
    assert split_last_item("Ab") == ("", "Ab")
    assert isolate_bidi("Acer rubrum (acerrubr)") == "Acer rubrum (acerrubr)"
    assert isolate_bidi("אלון מצוי (q1)") == "\u2068אלון מצוי (q1)\u2069"


# ---- reference names (range layers, presence/absence columns) ---------------------------------
def test_match_species_uses_the_same_rules_and_reports_ambiguous_names():
    species = _bundle().species
    refs = ["Abies x borisii-regis", unicodedata.normalize("NFD", "Épicéa commun"), "Abies  borisii-regis",
            "abies borisii-regis", "Quercus alba", "Acer rubrum", "Ель\u00a0сибирская", "Nothing here"]
    m = evaluation.match_species(refs, species)
    # keys are the names exactly as given, so callers can look their data up by them
    assert {k: v.code for k, v in m.matched.items()} == {
        "Abies x borisii-regis": "c1", unicodedata.normalize("NFD", "Épicéa commun"): "c5",
        "Abies  borisii-regis": "c0", "Quercus alba": "c2", "Ель\u00a0сибирская": "c4"}
    assert m.unmatched == ["Acer rubrum", "Nothing here"]  # "abies borisii-regis" repeats a name: once
    assert _codes(m.ambiguous["Acer rubrum"]) == ["c6", "c7"]
    assert m.unmatched_text() == ("'Acer rubrum' (fits 2 species: Acer rubrum L. (c6); Acer rubrum Mill. (c7)), "
                                  "'Nothing here'")


# ---- near misses and common names ------------------------------------------------------------
TREES = [("acerrubr", "Acer rubrum", "red maple"), ("acersacr", "Acer saccharum", "sugar maple"),
         ("acersacc", "Acer saccharinum", "silver maple"), ("quealba", "Quercus alba", "white oak"),
         ("querubr", "Quercus rubra", "northern red oak"), ("pinustro", "Pinus strobus", ""),
         ("carpcaro", "Carpinus caroliniana", "ironwood"), ("ostrvirg", "Ostrya virginiana", "ironwood")]


def _trees() -> ModelBundle:
    species = [Species(i, c, n, 10, common_name=cn) for i, (c, n, cn) in enumerate(TREES)]
    return ModelBundle(meta={"name": "trees"}, species=species, weights={}, onnx_bytes=b"")


@pytest.mark.parametrize("query, first", [
    ("Acer rubra", "acerrubr"),  # another Latin ending
    ("Quercus albus", "quealba"), ("quercus rubrum", "querubr"), ("Quercus albus L.", "quealba"),
    ("Acer sacharum", "acersacr"),  # a letter missing
    ("Pinus strobos", "pinustro"), ("Pinsu strobus", "pinustro"),  # a vowel, two letters swapped
    ("acerrbur", "acerrubr"), ("quelaba", "quealba"),  # typos in codes
    ("red mapel", "acerrubr"), ("Silver Maples", "acersacc"),  # common names
    ("strobus", "pinustro"),  # a part of the name
])
def test_suggestions_put_the_meant_species_first(query, first):
    assert _codes(_trees().species_index().suggestions(query))[:1] == [first]


def test_suggestions_leave_out_names_that_are_not_close():
    index = _trees().species_index()
    assert _codes(index.suggestions("Acer rubra")) == ["acerrubr"]  # 0.95; the next (Quercus rubra) is far below
    assert _codes(index.suggestions("Acer sach")) == ["acersacr", "acersacc"]  # contained in both, shorter first
    assert _codes(index.suggestions("Acer saccharum", n=1)) == ["acersacr"]
    assert index.suggestions("Betula papyrifera") == [] and index.suggestions("  ") == []
    assert index.suggestions("Acer rubra", n=0) == []


def test_not_found_messages_offer_the_suggestions():
    b = _trees()
    with pytest.raises(SpeciesNotFoundError) as err:
        b.find_species("Acer rubra")
    assert str(err.value) == ("Species 'Acer rubra' is not in model 'trees' (8 species). Did you mean: Acer rubrum "
                              "(acerrubr)? Use a code or scientific name from the model's species list.")
    with pytest.raises(SpeciesNotFoundError, match=r"Species 'Quercus albus' is not in model 'trees' \(8 species\)\. "
                                                   r"Did you mean: Quercus alba \(quealba\)\?"):
        b.find_species_list("Acer rubrum, Quercus albus")
    with pytest.raises(SpeciesNotFoundError) as err:
        b.find_species("Betula papyrifera")
    assert "Did you mean" not in str(err.value)


def test_common_names_are_found_after_scientific_names():
    b = _trees()
    assert b.find_species("red maple").code == "acerrubr"
    assert b.find_species("Red\u00a0Maple").code == "acerrubr"  # the same folding as scientific names
    assert _codes(b.find_species_list("white oak, Pinus strobus")) == ["quealba", "pinustro"]
    with pytest.raises(AmbiguousSpeciesError, match=r"'ironwood' matches 2 species .*Carpinus caroliniana "
                                                   r"\(carpcaro\); Ostrya virginiana \(ostrvirg\)"):
        b.find_species("ironwood")
    # a scientific name always wins over another species' common name
    species = [Species(0, "a", "Aus bus", 1, common_name="Cus dus"), Species(1, "c", "Cus dus", 1)]
    bundle = ModelBundle(meta={"name": "x"}, species=species, weights={}, onnx_bytes=b"")
    assert bundle.find_species("Cus dus").code == "c"


def test_suggestions_scale_to_a_model_of_47375_species():
    # as many species as SINR's official model; a near miss is found among look-alike names
    # (the speed, about 10 ms a query, is measured by the docstring's bound, not asserted here)
    syllables = ["ac", "er", "ru", "brum", "qu", "cus", "al", "ba", "pi", "ce", "bi", "es", "la", "car", "ni", "us"]
    names = sorted({f"{a}{b}".capitalize() + f" {c}{d}{e}" for a in syllables for b in syllables
                    for c in syllables for d in syllables for e in syllables[:12]})[:47372]
    names += ["Acer rubrum", "Quercus alba", "Picea abies"]
    species = [Species(i, str(100000 + 7 * i), n, 1) for i, n in enumerate(names)]
    index = ModelBundle(meta={"name": "big"}, species=species, weights={}, onnx_bytes=b"").species_index()
    assert len(species) == 47375
    assert [s.name for s in index.suggestions("Acer rubra")][:1] == ["Acer rubrum"]
    assert [s.name for s in index.suggestions("Picea abis")][:1] == ["Picea abies"]
    assert [s.code for s in index.suggestions("100043")][:1] == ["100042"]  # species 6's code, one digit off


def test_reference_names_a_slip_away_are_reported_never_matched():
    species = _trees().species
    m = evaluation.match_species(["Acer rubra", "Quercus albus", "Betula papyrifera", "Acer saccharum"], species)
    assert {k: v.code for k, v in m.matched.items()} == {"Acer saccharum": "acersacr"}
    assert {k: v.code for k, v in m.close.items()} == {"Acer rubra": "acerrubr", "Quercus albus": "quealba"}
    assert m.unmatched_text() == ("'Acer rubra' (did you mean Acer rubrum (acerrubr)?), 'Quercus albus' (did you "
                                  "mean Quercus alba (quealba)?), 'Betula papyrifera'")
    # only a slip or an ending away: a merely similar name is not offered for a reference
    assert _trees().species_index().suggestions("Acer sachar", min_score=0.9) == []


def test_common_names_are_an_optional_species_csv_column():
    from sinr_qgis.core.bundle import _parse_species, species_csv

    species = [Species(0, "acerrubr", "Acer rubrum", 5, common_name="red maple"),
               Species(1, "quealba", "Quercus alba", 3)]
    text = species_csv(species)
    assert text.splitlines()[0] == "index,code,name,n_train,common_name"
    assert [s.common_name for s in _parse_species(text)] == ["red maple", ""]
    assert "common_name" not in species_csv([Species(0, "a", "Aus bus", 1)])  # written only when a species has one
    # an older species.csv, and one with a column this version does not know, read as before
    assert _parse_species("index,code,name,n_train\n0,a,Aus bus,1\n")[0].common_name == ""
    read = _parse_species("index,code,name,n_train,common_name,habit\n0,a,Aus bus,1, bus tree ,shrub\n")
    assert read[0].common_name == "bus tree"
