"""Paper-scale models (47,375 species) in bounded memory: "what lives here" ranks every species,
species richness compares logits with logit cuts a few rows at a time, multi-band outputs are
written in row pieces, one file per species keeps few files open; each equals the unchunked result."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from osgeo import gdal

from sinr_qgis.core import products, raster_io, runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import CancelledError, OutputError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.products import predict_to_geotiff
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.core.thresholds import logit_thresholds
from tests.conftest import PAPER_SPECIES
from tests.factories import fixture_bundle
from tests.tolerances import logit_atol, prob_atol

# The budget is about memory, not the numbers: a block shape above it is the fault these tests catch.
BUDGET = runtime.SPECIES_BLOCK_BYTES


@pytest.fixture(scope="module")
def paper(paper_bundle_file) -> ModelBundle:
    return ModelBundle.load(paper_bundle_file)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> ModelBundle:
    return fixture_bundle(tmp_path_factory.mktemp("s") / "small.sinr", "sin_cos_w32")  # 40 species, width 32


@pytest.fixture
def block_shapes(monkeypatch):
    """Every [rows, species] product the runtime makes (its logits), recorded."""
    shapes: list[tuple[int, int]] = []
    real = runtime.matmul_t

    def spy(x, w, out=None):
        shapes.append((x.shape[0], w.shape[0]))
        return real(x, w, out=out)

    monkeypatch.setattr(runtime, "matmul_t", spy)
    return shapes


def _points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-180, 180, n), rng.uniform(-60, 75, n)].astype(np.float32)


def test_paper_scale_bundle_has_the_papers_shape(paper):
    assert (paper.n_species, paper.embedding_dim, paper.head.shape) == (47_375, 256, (47_375, 256))
    assert paper.n_species == PAPER_SPECIES


def test_what_lives_here_ranks_all_47375_species_in_blocks_within_the_budget(paper, block_shapes):
    predictor = Predictor(paper, "numpy")
    lonlat = _points(300)
    tracemalloc.start()
    try:
        idx, prob = predictor.top_species(lonlat, k=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # logits (4 bytes) and argpartition's positions (8 bytes) of every species, a few rows at a time
    assert block_shapes and all(r * s * 12 <= BUDGET for r, s in block_shapes)
    assert peak < 1.1 * BUDGET  # plus the 300 embeddings and the results (under a megabyte)
    assert {s for _, s in block_shapes} == {PAPER_SPECIES} and sum(r for r, _ in block_shapes) == 300
    # the same ranking as sorting every species' logit (float64 reference, one block)
    emb = predictor.embed(lonlat)
    ref = emb.astype(np.float64) @ paper.head.astype(np.float64).T
    ref_idx = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(idx, ref_idx)
    tol = prob_atol(logit_atol(emb, paper.head))  # float32 products in other row blocks vs float64
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-np.take_along_axis(ref, ref_idx, axis=1))), atol=tol, rtol=0)
    assert (np.diff(prob, axis=1) <= 0).all()  # best first


def test_top_species_chunking_does_not_change_the_ranking(small, monkeypatch):
    predictor = Predictor(small, "numpy")
    lonlat = np.vstack([_points(50, 1), [[np.nan, 0.0]]])  # a point that cannot be scored: -1 / NaN
    whole = predictor.top_species(lonlat, k=7)
    monkeypatch.setattr(runtime, "SPECIES_BLOCK_BYTES", 12 * small.n_species * 3)  # 3 rows a block
    chunked = predictor.top_species(lonlat, k=7)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_allclose(chunked[1], whole[1], atol=1e-6, rtol=0, equal_nan=True)  # float32 products
    assert (whole[0][-1] == -1).all() and np.isnan(whole[1][-1]).all()
    # k beyond the species count ranks them all
    assert sorted(predictor.top_species(lonlat[:1], k=1000)[0][0]) == list(range(small.n_species))


def test_logit_cuts_decide_exactly_as_the_float32_sigmoid():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 6, 200_000), [-np.inf, np.inf, 0.0, 17.3, 40.0, -40.0]]).astype(np.float32)
    p = sigmoid(x, np.float32)
    # thresholds on probabilities the data reach exactly (ties), 1 (reached from logit ~17), tiny ones
    # 0: an LPT-R threshold where a species' training records all score 0 in float32 (all count)
    t = np.concatenate([p[rng.integers(0, x.size, 40)], [1.0, 0.5, 1e-8, 0.999, 1e-3, 0.0]]).astype(np.float32)
    cut = logit_thresholds(t)
    for ti, ci in zip(t, cut):
        assert ((x >= ci) == (p >= ti)).all(), ti
    assert (p == 0).any() and (p == 1).any()  # both ends are in the data
    assert sigmoid(np.array([cut[-6]]), np.float32)[0] == 1.0  # t = 1 is reachable, as in the 0/1 bands
    assert cut[-1] == -np.inf
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        logit_thresholds([1.5])


def test_count_above_equals_counting_probabilities_and_its_chunks_stay_in_budget(small, monkeypatch, block_shapes):
    predictor = Predictor(small, "numpy")
    emb = predictor.embed(_points(500, 2))
    idx = np.array([3, 0, 7, 39, 12, 5, 21], dtype=np.int64)
    thr = np.array([0.5, 0.2, 0.9, 1.0, 0.05, 0.7, 0.35], dtype=np.float32)
    reference = (predictor.probabilities(emb, idx) >= thr).sum(axis=1)
    block_shapes.clear()
    whole = predictor.count_above(emb, idx, thr)  # one tile: 7 species x 500 rows
    assert block_shapes == [(7, 500)]
    monkeypatch.setattr(runtime, "SPECIES_BLOCK_BYTES", 7 * 5 * 16)  # 16 rows a tile
    block_shapes.clear()
    chunked = predictor.count_above(emb, idx, thr)
    assert {r for _, r in block_shapes} == {16, 500 % 16} and sum(r for _, r in block_shapes) == 500
    assert whole.dtype == np.int32 and whole.shape == (500,)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(whole, reference)
    assert 0 < whole.sum() < 500 * 7  # the thresholds cut somewhere
    assert predictor.count_above(np.full((2, small.embedding_dim), np.nan, np.float32), idx, thr).tolist() == [0, 0]


def test_count_above_tiles_species_and_rows_and_equals_one_whole_product(small, monkeypatch, block_shapes):
    predictor = Predictor(small, "numpy")
    emb = predictor.embed(_points(500, 5))
    idx = np.arange(small.n_species)  # 40 species
    thr = np.random.default_rng(6).uniform(0.2, 0.8, idx.size).astype(np.float32)
    reference = (predictor.probabilities(emb, idx) >= thr).sum(axis=1)  # one [500 x 40] product
    monkeypatch.setattr(runtime, "COUNT_TILE_SPECIES", 16)
    monkeypatch.setattr(runtime, "COUNT_TILE_ROWS", 64)
    block_shapes.clear()
    counts = predictor.count_above(emb, idx, thr)
    # 40 species in tiles of 16 + 16 + 8, 500 rows in 7 x 64 + 52: every (species, rows) tile once
    assert len(block_shapes) == 3 * 8
    assert sorted(set(block_shapes)) == [(8, 52), (8, 64), (16, 52), (16, 64)]
    np.testing.assert_array_equal(counts, reference)
    assert counts.min() > 0 and counts.max() < 40  # the thresholds cut inside the species list


def test_species_richness_of_a_paper_scale_model_stays_within_the_memory_budget(paper, tmp_path, block_shapes):
    """The issue's failure: one [pixels x 47,375] float32 block (17.2 GiB for 97,631 pixels)."""
    predictor = Predictor(paper, "numpy")
    grid = Grid((-100.0, 30.0, -80.0, 40.0), "EPSG:4326", 40, 20)  # 800 pixels: 152 MB unchunked
    rng = np.random.default_rng(3)
    thr = rng.uniform(0.3, 0.7, paper.n_species).astype(np.float32)
    list(predictor.iter_grid(grid, mask_ocean=False))  # the embedding cached: only the product is measured
    tracemalloc.start()
    try:
        out = products.species_richness_raster(predictor, grid, paper.species, thr, tmp_path / "rich.tif",
                                               mask_ocean=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one tile's logits and comparisons (1,024 species x 800 pixels: 4 MB) and the cuts' bisection
    # (47,375 x a few int64), where a whole block would be 152 MB
    assert peak < 12 << 20
    assert all(r * s * 5 <= BUDGET for r, s in block_shapes)
    # 47,375 species in 47 tiles (46 x 1,024 + 271), each of all 800 pixels: one grid block
    assert sorted(set(block_shapes)) == [(271, 800), (1024, 800)] and len(block_shapes) == 47
    counts = gdal.Open(str(out)).ReadAsArray()
    emb = next(iter(predictor.iter_grid(grid, mask_ocean=False))).embedding
    ref = np.concatenate([(predictor.probabilities(emb[i:i + 100]) >= thr).sum(axis=1) for i in range(0, 800, 100)])
    np.testing.assert_array_equal(counts.ravel(), ref.astype(np.float32))
    assert counts.min() > 0 and counts.max() < PAPER_SPECIES


def test_the_float16_check_of_a_paper_scale_head_keeps_its_products_within_the_budget(paper, monkeypatch):
    from sinr_qgis.core import head_precision

    shapes: list[tuple[int, int]] = []
    real = head_precision.matmul_t
    monkeypatch.setattr(head_precision, "matmul_t", lambda x, w: (shapes.append((x.shape[0], w.shape[0])),
                                                                  real(x, w))[1])
    tracemalloc.start()
    try:
        err = head_precision.float16_head_error(paper)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 13 bytes per value held (change, magnitude, test, logits): 108 of the 4,096 points a product
    assert shapes and all(r * s * 13 <= BUDGET for r, s in shapes) and {s for _, s in shapes} == {PAPER_SPECIES}
    # plus the float16-rounded head and its difference (2 x 48.5 MB) and the 4,096 embeddings:
    # 145 MiB measured; a fixed 256 rows a product held 205 MiB
    assert peak < 1.1 * BUDGET + 2 * paper.head.nbytes + (16 << 20)
    assert 0 < err < 1e-4  # a random head moves probabilities by about 6e-5
    monkeypatch.setattr(runtime, "SPECIES_BLOCK_BYTES", 13 * PAPER_SPECIES * 100)  # 100 rows a product
    shapes.clear()
    # a maximum over the same values; float32 products of other row counts may round differently
    assert head_precision.float16_head_error(paper) == pytest.approx(err, rel=1e-6, abs=0)
    assert {r for r, _ in shapes} == {100, 4096 % 100}


def test_a_many_band_output_is_written_in_row_pieces_equal_to_whole_blocks(small, tmp_path, monkeypatch):
    predictor = Predictor(small, "numpy")
    grid = Grid((-100.0, 30.0, -80.0, 40.0), "EPSG:4326", 30, 20)
    species = list(range(12))
    whole = predict_to_geotiff(predictor, grid, species, tmp_path / "whole.tif", mask_ocean=False, threshold=0.5)
    writes: list[tuple[int, ...]] = []
    real = raster_io.GeoTiffWriter.write_rows
    monkeypatch.setattr(raster_io.GeoTiffWriter, "write_rows",
                        lambda self, row0, block: (writes.append(block.shape), real(self, row0, block))[1])
    monkeypatch.setattr(runtime, "SPECIES_BLOCK_BYTES", 24 * 30 * 4 * 3)  # 24 bands: 3 rows a piece
    pieces = predict_to_geotiff(predictor, grid, species, tmp_path / "pieces.tif", mask_ocean=False, threshold=0.5)
    assert writes == [(24, 3, 30)] * 6 + [(24, 2, 30)]
    a, b = (gdal.Open(str(r[0])).ReadAsArray() for r in (whole, pieces))
    assert a.shape == b.shape == (24, 20, 30)
    np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)  # float32 products of other row counts


def test_more_bands_than_a_geotiff_holds_are_refused_before_any_work_with_what_to_do(small, tmp_path, monkeypatch):
    # GDAL's own limit, which the constant states: a 65,536-band GeoTIFF cannot be created
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        assert gdal.GetDriverByName("GTiff").Create(str(tmp_path / "x.tif"), 1, 1, 65_536, gdal.GDT_Byte) is None
    finally:
        gdal.PopErrorHandler()
    assert products.MAX_GEOTIFF_BANDS == 65_535 and list(tmp_path.iterdir()) == []
    predictor = Predictor(small, "numpy")
    grid = Grid((-100.0, 30.0, -80.0, 40.0), "EPSG:4326", 16, 8)
    monkeypatch.setattr(products, "MAX_GEOTIFF_BANDS", 20)  # 12 species with 0/1 bands make 24
    encoded = predictor.locations_encoded
    with pytest.raises(OutputError, match=r"^12 species with their 0/1 bands make 24 bands, more than a GeoTIFF "
                                          r"holds \(20\); no file was written\. Write one file per species, or at "
                                          r"most 10 species in one file"):
        predict_to_geotiff(predictor, grid, list(range(12)), tmp_path / "all.tif", mask_ocean=False, threshold=0.5)
    with pytest.raises(OutputError, match=r"^21 species make 21 bands, .* at most 20 species in one file"):
        predict_to_geotiff(predictor, grid, list(range(21)), tmp_path / "all.tif", mask_ocean=False)
    assert predictor.locations_encoded == encoded and list(tmp_path.iterdir()) == []  # refused before any work
    # what the message offers works: one file per species, or the probability bands alone
    each = predict_to_geotiff(predictor, grid, list(range(12)), tmp_path / "each.tif", mask_ocean=False,
                              threshold=0.5, one_file_per_species=True)
    assert len(each.paths) == 12 and gdal.Open(str(each.paths[0])).RasterCount == 2
    assert gdal.Open(str(predict_to_geotiff(predictor, grid, list(range(20)), tmp_path / "p.tif",
                                            mask_ocean=False)[0])).RasterCount == 20


def test_one_file_per_species_keeps_few_files_open_and_encodes_the_grid_once(small, tmp_path, monkeypatch):
    predictor = Predictor(small, "numpy")
    grid = Grid((-100.0, 30.0, -80.0, 40.0), "EPSG:4326", 16, 8)
    species = list(range(5))
    together = predict_to_geotiff(predictor, grid, species, tmp_path / "all.tif", mask_ocean=False)
    open_now, most = set(), []
    real_open, real_finish = raster_io.GeoTiffWriter.open, raster_io.GeoTiffWriter.finish

    def spy_open(self, rows=None):
        open_now.add(id(self))
        most.append(len(open_now))
        return real_open(self, rows)

    def spy_finish(self, *args):
        open_now.discard(id(self))
        return real_finish(self, *args)

    monkeypatch.setattr(raster_io.GeoTiffWriter, "open", spy_open)
    monkeypatch.setattr(raster_io.GeoTiffWriter, "finish", spy_finish)
    monkeypatch.setattr(runtime, "MAX_OPEN_OUTPUTS", 2)
    encoded = predictor.locations_encoded
    result = predict_to_geotiff(predictor, grid, species, tmp_path / "each.tif", mask_ocean=False,
                                one_file_per_species=True)
    assert max(most) == 2 and len(most) == 5  # three passes: 2 + 2 + 1 files open
    assert predictor.locations_encoded == encoded  # the cached grid embedding served every pass
    assert [p.name for p in result.paths] == [f"each_sp{i:03d}.tif" for i in species]
    bands = gdal.Open(str(together[0])).ReadAsArray()
    for i, path in enumerate(result.paths):
        np.testing.assert_allclose(gdal.Open(str(path)).ReadAsArray(), bands[i], atol=1e-6, rtol=0)


def test_a_cancel_in_a_later_pass_leaves_no_file(small, tmp_path, monkeypatch):
    predictor = Predictor(small, "numpy")
    grid = Grid((-100.0, 30.0, -80.0, 40.0), "EPSG:4326", 16, 8)
    monkeypatch.setattr(runtime, "MAX_OPEN_OUTPUTS", 2)
    seen: list[float] = []
    with pytest.raises(CancelledError):
        predict_to_geotiff(predictor, grid, list(range(5)), tmp_path / "each.tif", mask_ocean=False,
                           one_file_per_species=True, progress=seen.append,
                           is_cancelled=lambda: bool(seen) and seen[-1] > 50)  # during the second pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []
