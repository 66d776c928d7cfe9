"""File names from species codes: readable, valid on Windows/macOS/Linux, one per species."""
from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.bundle import Species
from sinr_qgis.core.errors import OutputError
from sinr_qgis.core.file_names import MAX_NAME_BYTES, file_key, safe_file_stem, unique_file_stems
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import predict_to_geotiff, species_output_paths
from sinr_qgis.core.runtime import Predictor, predict_grid
from tests.factories import fixture_bundle
from tests.helpers.raster_files import read_geotiff

WINDOWS_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


def _sha8(code: str) -> str:
    return hashlib.sha1(code.encode()).hexdigest()[:8]


@pytest.mark.parametrize("code, stem", [
    ("Abies × borisii-regis", "Abies_×_borisii-regis"),
    ("Ель сибирская", "Ель_сибирская"),
    ("Épicéa commun", "Épicéa_commun"),
    (unicodedata.normalize("NFD", "Épicéa commun"), "Épicéa_commun"),  # written NFC
    ("Quercus alba L., 1753", "Quercus_alba_L._1753"),  # ',' would split QGIS's path lists
    ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j"),
    ("tab\there\nnew\x00line\x1f", "tab_here_new_line"),
    ("name. . ", "name"), ("...hidden", "hidden"), ("  spaced  ", "spaced"),
    ("evil\u202egpj.exe", "evil_gpj.exe"),  # a bidi override would disguise the name
    ("🌲 Pinus", "Pinus"), ("🌲", "species"), ("", "species"), ("???", "species"),
    ("אלון מצוי", "אלון_מצוי"), ("红松", "红松"),
])
def test_safe_file_stem_keeps_readable_letters_and_drops_what_file_systems_refuse(code, stem):
    got = safe_file_stem(code)
    assert got == stem
    assert not set(got) & WINDOWS_FORBIDDEN and not got.endswith((".", " ")) and not got.startswith(".")
    assert unicodedata.is_normalized("NFC", got)


@pytest.mark.parametrize("code, stem", [
    ("CON", "CON_"), ("nul", "nul_"), ("Aux.tif", "Aux_.tif"), ("COM1", "COM1_"), ("lpt9", "lpt9_"),
    ("COM¹", "COM¹_"), ("CONSOLE", "CONSOLE"), ("COM10", "COM10"), ("con sp", "con_sp"),
])
def test_windows_device_names_are_avoided(code, stem):
    assert safe_file_stem(code) == stem


def test_stems_fit_the_byte_limit_without_cutting_a_letter():
    cyr = "Лиственница" * 40  # 2 bytes per letter
    stem = safe_file_stem(cyr, max_bytes=101)
    assert len(stem.encode()) == 100 and stem == cyr[:50]
    decomposed = "e\u0301" * 100  # NFD 'é' (e + combining accent) is written NFC: 2 bytes each
    assert safe_file_stem(decomposed, max_bytes=9) == "\u00e9" * 4
    # a letter + two marks with no precomposed form (3 code points, 5 bytes, canonical order): cut
    # whole, never between the letter and its marks
    q = "q\u0323\u0307"
    assert safe_file_stem(q * 4, max_bytes=12) == q * 2
    assert len(safe_file_stem("x" * 1000).encode()) == MAX_NAME_BYTES


def test_unique_stems_differ_on_case_insensitive_and_normalising_file_systems():
    nfc, nfd = "Épicéa", unicodedata.normalize("NFD", "Épicéa")
    codes = ["Abc", "abc", nfc, nfd, "a/b", "a:b", "Other"]
    stems = unique_file_stems(codes)
    assert stems == [f"Abc_{_sha8('Abc')}", f"abc_{_sha8('abc')}", f"Épicéa_{_sha8(nfc)}", f"Épicéa_{_sha8(nfd)}",
                     f"a_b_{_sha8('a/b')}", f"a_b_{_sha8('a:b')}", "Other"]
    assert len({file_key(s) for s in stems}) == len(codes)
    # equal codes (a damaged species list) still get distinct files, in order
    assert unique_file_stems(["x", "x", "x"]) == [f"x_{_sha8('x')}", f"x_{_sha8('x')}_2", f"x_{_sha8('x')}_3"]


def _species(codes):
    return [Species(i, c, c, 1) for i, c in enumerate(codes)]


def test_species_output_paths_are_distinct_readable_and_independent_of_the_selection(tmp_path):
    model = _species(["Abies borisii-regis", "Abies × borisii-regis", "Quercus pubescens", "ABC", "abc"])
    out = tmp_path / "range.tif"
    paths = species_output_paths(out, model, True, model)
    assert [p.name for p in paths] == ["range_Abies_borisii-regis.tif", "range_Abies_×_borisii-regis.tif",
                                       "range_Quercus_pubescens.tif", f"range_ABC_{_sha8('ABC')}.tif",
                                       f"range_abc_{_sha8('abc')}.tif"]
    # 'abc' gets the same file name when written with other species: it depends on the model only
    again = species_output_paths(out, [model[4], model[2]], True, model)
    assert again == [paths[4], paths[2]]
    assert species_output_paths(out, model[:1], True, model) == [out]
    assert species_output_paths(out, model, False, model) == [out]


def test_long_output_names_and_species_codes_stay_within_the_limit(tmp_path):
    model = _species(["Ель " * 80 + "1", "Ель " * 80 + "2"])  # identical first 200 bytes
    paths = species_output_paths(tmp_path / ("п" * 40 + ".tif"), model, True)
    assert len({p.name for p in paths}) == 2
    assert all(len(p.name.encode()) <= MAX_NAME_BYTES for p in paths)
    with pytest.raises(OutputError, match="too long to add species codes"):
        species_output_paths(tmp_path / ("x" * 190 + ".tif"), model, True)


def test_one_file_per_species_with_colliding_and_unusual_names(tmp_path):
    """Species whose names differ only in non-ASCII characters, or in case, each get their own
    file, and every name survives as band description and metadata."""
    b = fixture_bundle(tmp_path / "m.sinr", n_species=6, seed=1)
    names = ["Abies borisii-regis", "Abies × borisii-regis", "Ель сибирская", "ель сибирская",
             'Q. <alba> & "rubra" \'x\'', "אלון מצוי 🌳"]
    b.species = [Species(i, n, n, 1) for i, n in enumerate(names)]
    g = Grid.from_pixel_size((20, 40, 22, 42), "EPSG:4326", 1.0)
    p = Predictor(b)
    res = predict_to_geotiff(p, g, list(range(6)), tmp_path / "r.tif", one_file_per_species=True,
                             mask_ocean=False)
    assert [x.name for x in res.paths] == [
        "r_Abies_borisii-regis.tif", "r_Abies_×_borisii-regis.tif",
        f"r_Ель_сибирская_{_sha8('Ель сибирская')}.tif", f"r_ель_сибирская_{_sha8('ель сибирская')}.tif",
        "r_Q._alba_rubra_x.tif", "r_אלון_מצוי.tif"]
    assert sorted(x.name for x in tmp_path.glob("r_*.tif")) == sorted(x.name for x in res.paths)
    probs = predict_grid(p, g, list(range(6)))
    for k, path in enumerate(res.paths):
        arr, info = read_geotiff(path)
        assert info["descriptions"] == [names[k]]
        assert info["band_metadata"][0]["SPECIES_CODE"] == names[k]
        assert info["metadata"]["SPECIES_NAME"] == names[k] if k != 4 else '"Q. <alba> & ""rubra"" \'x\'"'
        # float32 raster vs float32 in-memory grid from the same embedding: equal to rounding
        np.testing.assert_allclose(arr[0], probs[k], atol=1e-6)


def test_multi_band_metadata_lists_codes_holding_commas_unambiguously(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3, seed=2)
    b.species = [Species(0, "Quercus alba L., 1753", "Quercus alba L., 1753", 1), Species(1, "c1", "Acer", 1),
                 Species(2, "c2", "Pinus", 1)]
    g = Grid.from_pixel_size((20, 40, 22, 42), "EPSG:4326", 1.0)
    res = predict_to_geotiff(Predictor(b), g, ["Quercus alba L., 1753", "c1"], tmp_path / "two.tif", mask_ocean=False)
    md = read_geotiff(res.paths[0])[1]["metadata"]
    assert md["SPECIES_CODE"] == '"Quercus alba L., 1753",c1'
    assert b.find_species_list(md["SPECIES_CODE"]) == b.species[:2]
    assert Path(res.paths[0]).name == "two.tif"
