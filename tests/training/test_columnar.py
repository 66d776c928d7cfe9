"""The training side's column-wise reader (training/columnar.py) against the plugin's reader
(sinr_qgis/core/occurrences.py): the same file gives the same records, counts, names and messages,
in batches and in bounded memory."""
from __future__ import annotations

import dataclasses
import gzip
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import Occurrences, read_occurrences
from training import columnar
from training.columnar import read_occurrences_columnar, read_training_occurrences

ROOT = Path(__file__).resolve().parents[2]

# every drop reason, 0..360 longitudes, names, sources, spellings that must join one species
ROWS = [
    ("gbifID", "taxonKey", "species", "decimalLatitude", "decimalLongitude", "basisOfRecord",
     "occurrenceStatus", "individualCount", "datasetKey"),
    ("1", "101", "Quercus alba", "40.5", "-75.25", "HUMAN_OBSERVATION", "PRESENT", "", "d1"),
    ("2", "101", "", "41", "285", "HUMAN_OBSERVATION", "PRESENT", "2", "d1"),  # 285 -> -75
    ("3", "102", "Acer rubrum", "", "-70", "HUMAN_OBSERVATION", "PRESENT", "", "d2"),  # missing
    ("4", "102", "Acer rubrum", "95", "-70", "HUMAN_OBSERVATION", "PRESENT", "", "d2"),  # out of range
    ("5", "102", "Acer rubrum", "0", "0", "HUMAN_OBSERVATION", "PRESENT", "", "d2"),  # null island
    ("6", "102", "Acer rubrum", "42", "-71", "FOSSIL_SPECIMEN", "PRESENT", "", "d2"),  # fossil
    ("7", "102", "Acer rubrum", "42", "-71", "HUMAN_OBSERVATION", "ABSENT", "", "d2"),  # absent
    ("8", "102", "Acer rubrum", "42", "-71", "HUMAN_OBSERVATION", "", "0", "d2"),  # count 0
    ("9", "", "Nobody", "42", "-71", "HUMAN_OBSERVATION", "PRESENT", "", "d2"),  # no species id
    ("10", "102", "Acer rubrum", "43.125", "-72.5", "HUMAN_OBSERVATION", "present", "", "d3"),
    ("11", "103", "Pinus strobus", "44", "-73", "HUMAN_OBSERVATION", "PRESENT", "", "d3"),
    ("12", "101", "Quercus alba", "-12.75", "150", "OCCURRENCE", "", "", "d4"),
]
KEPT = 5
DROPPED = {"missing": 2, "out_of_range": 1, "null_island": 1, "absent": 1, "fossil": 1, "zero_count": 1}


def write_text(path: Path, rows: list[tuple[str, ...]], delimiter: str = "\t") -> Path:
    text = "".join(delimiter.join(r) + "\n" for r in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def assert_same(a: Occurrences, b: Occurrences) -> None:
    """Identical records, in file order, with the same counts, names and summary line."""
    np.testing.assert_array_equal(a.lon, b.lon)  # the same text parsed: exact, no tolerance
    np.testing.assert_array_equal(a.lat, b.lat)
    assert a.species.tolist() == b.species.tolist()
    assert (a.source is None) == (b.source is None)
    if a.source is not None:
        assert a.source.tolist() == b.source.tolist()
    assert (a.names, a.n_read, a.dropped, a.origin) == (b.names, b.n_read, b.dropped, b.origin)
    assert a.summary() == b.summary()


def both(path: Path, **options) -> tuple[Occurrences, Occurrences]:
    # a batch of 64 bytes: a handful of rows per batch, so the species codes span batches
    return read_occurrences(path, **options), read_occurrences_columnar(path, batch_bytes=64, batch_rows=3, **options)


def test_gbif_simple_csv_same_records_and_counts(tmp_path):
    plugin, ours = both(write_text(tmp_path / "0001.csv", ROWS), source_column="datasetKey")
    assert_same(plugin, ours)
    assert len(ours) == KEPT and ours.n_read == len(ROWS) - 1
    assert {k: v for k, v in ours.dropped.items() if v} == DROPPED
    assert ours.species.tolist() == ["101", "101", "102", "103", "101"]
    assert ours.lon.tolist() == [-75.25, -75.0, -72.5, -73.0, 150.0]
    assert ours.names == {"101": "Quercus alba", "102": "Acer rubrum", "103": "Pinus strobus"}
    assert ours.source.tolist() == ["d1", "d1", "d3", "d3", "d4"]


@pytest.mark.parametrize("name, delimiter", [("obs.csv", ","), ("obs.csv.gz", "\t"), ("obs.txt", ";")])
def test_delimiters_and_gzip(tmp_path, name, delimiter):
    assert_same(*both(write_text(tmp_path / name, ROWS, delimiter)))


def test_spellings_and_quoted_csv(tmp_path):
    # a decomposed accent, doubled and non-breaking spaces: one species; a quoted field with the delimiter
    path = tmp_path / "inat.csv"
    path.write_text('id,scientific_name,latitude,longitude,place\n'
                    '1,Cirsium  arvense,10,20,"Bern, CH"\n'
                    '2,Cirsium\u00a0arvense,11,21,"x"\n'
                    '3,Cirsium arvense ,12,22,y\n'
                    '4,Ve\u0301ronique,13,23,z\n'
                    '5,V\u00e9ronique,14,24,"a ""b"" c"\n', encoding="utf-8")
    plugin, ours = both(path)
    assert_same(plugin, ours)
    assert ours.species.tolist() == ["Cirsium arvense"] * 3 + ["V\u00e9ronique"] * 2


def test_gbif_download_zip_and_dwca(tmp_path):
    table = write_text(tmp_path / "0001.csv", ROWS)
    simple = tmp_path / "0001-simple.zip"
    with zipfile.ZipFile(simple, "w") as z:
        z.write(table, "0001.csv")
        z.writestr("rights.txt", "CC-BY")
    assert_same(*both(simple))
    fields = "".join(f'<field index="{i}" term="http://rs.tdwg.org/dwc/terms/{t}"/>'
                     for i, t in enumerate(ROWS[0]) if i)
    meta = ('<archive xmlns="http://rs.tdwg.org/dwc/text/"><core encoding="UTF-8" fieldsTerminatedBy="\\t" '
            'linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1" '
            'rowType="http://rs.tdwg.org/dwc/terms/Occurrence"><files><location>occurrence.txt</location></files>'
            f'<id index="0"/>{fields}</core></archive>')
    dwca = tmp_path / "0001-dwca.zip"
    with zipfile.ZipFile(dwca, "w") as z:
        z.write(table, "occurrence.txt")
        z.writestr("meta.xml", meta)
    plugin, ours = both(dwca)
    assert_same(plugin, ours)
    assert len(ours) == KEPT


def test_parquet_same_as_its_csv(tmp_path):
    # GBIF/iNaturalist open data: typed columns (int64 ids, float64 coordinates, string lists of
    # issues); the plugin's reader does not read Parquet, so the reference is the same table as CSV
    header, data = ROWS[0], ROWS[1:]
    table = {h: [r[j] for r in data] for j, h in enumerate(header)}
    typed = dict(table)
    typed["taxonKey"] = pa.array([int(v) if v else None for v in table["taxonKey"]], pa.int64())
    typed["decimalLatitude"] = pa.array([float(v) if v else None for v in table["decimalLatitude"]], pa.float64())
    typed["decimalLongitude"] = pa.array([float(v) if v else None for v in table["decimalLongitude"]])
    typed["individualCount"] = pa.array([int(v) if v else None for v in table["individualCount"]], pa.int32())
    parts = tmp_path / "occurrence.parquet"
    parts.mkdir()
    t = pa.table(typed)
    pq.write_table(t.slice(0, 6), parts / "000000")
    pq.write_table(t.slice(6), parts / "000001")
    ours = read_occurrences_columnar(parts, batch_rows=4)
    plugin = read_occurrences(write_text(tmp_path / "occurrence.parquet.csv", ROWS))
    assert_same(plugin, dataclasses.replace(ours, origin=plugin.origin))
    assert ours.origin == "occurrence.parquet"
    assert len(ours) == KEPT and {k: v for k, v in ours.dropped.items() if v} == DROPPED


def test_parquet_parts_must_share_columns(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"species": ["a"], "decimalLatitude": [1.0], "decimalLongitude": [2.0]}), folder / "a")
    pq.write_table(pa.table({"species": ["a"], "decimalLatitude": [1.0]}), folder / "b")
    with pytest.raises(OccurrenceError, match=r"parts: b has no column decimalLongitude, which a has; "
                                              r"the parts must share their columns\."):
        read_occurrences_columnar(folder)


def test_damaged_parquet_says_so(tmp_path):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"species": ["a"] * 100}), path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(OccurrenceError, match=r"cut\.parquet: cannot be read as Parquet .*download it again\."):
        read_occurrences_columnar(path)


@pytest.mark.parametrize("body", [
    b"species\tdecimalLatitude\tdecimalLongitude\na\t1\t2\nb\t3\n",  # a short row
    b"species\tdecimalLatitude\tdecimalLongitude\na\t1\t2\nb\t3\t4\t5\t6\n",  # a long row
    b"species\tdecimalLatitude\tdecimalLongitude\na\t1\t2\n\xff\xfe\t3\t4\n",  # not UTF-8
    b"species\tdecimalLatitude\tdecimalLongitude\na\t\t\n",  # every row dropped
    b"species\tdecimalLatitude\tdecimalLongitude\n",  # no data rows
    b"name\tx\ty\na\t1\t2\n",  # no coordinate columns
])
def test_same_error_word_for_word(tmp_path, body):
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(OccurrenceError) as plugin:
        read_occurrences(path)
    with pytest.raises(OccurrenceError) as ours:
        read_occurrences_columnar(path, batch_bytes=64)
    assert str(ours.value) == str(plugin.value)


def test_which_reader_is_said(tmp_path, monkeypatch):
    path = write_text(tmp_path / "obs.csv", ROWS)
    occ, how = read_training_occurrences(path)
    assert how == f"read column-wise in batches with pyarrow {pa.__version__}"
    assert len(occ) == KEPT
    monkeypatch.setattr(columnar, "pyarrow_version", lambda: None)
    occ2, how2 = read_training_occurrences(path)
    assert how2.startswith("read row by row by the plugin's reader (pyarrow is not installed: pip install pyarrow")
    assert_same(occ2, occ)


def test_bounded_memory_five_million_rows(tmp_path):
    """5 M rows of GBIF-like text (about 190 MB): the column-wise reader's peak memory grows by the
    kept records (24 bytes each) and a few batches, not by the file's text."""
    n = 5_000_000
    rng = np.random.default_rng(0)
    path = tmp_path / "big.csv"
    table = pa.table({
        "gbifID": pa.array(np.arange(n, dtype=np.int64) + 4_000_000_000),
        "taxonKey": pa.array(rng.integers(1_000_000, 1_050_000, n)),
        "decimalLatitude": pa.array(np.round(rng.uniform(-60, 80, n), 5)),
        "decimalLongitude": pa.array(np.round(rng.uniform(-180, 180, n), 5)),
        "basisOfRecord": pa.array(np.where(rng.random(n) < 0.01, "FOSSIL_SPECIMEN", "HUMAN_OBSERVATION")),
    })
    import pyarrow.csv as pacsv
    pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter="\t", quoting_style="none"))
    n_fossil = int(np.sum(np.asarray(table.column("basisOfRecord")) == "FOSSIL_SPECIMEN"))
    size = path.stat().st_size
    del table
    # VmHWM (peak resident memory) reset after the imports: ru_maxrss would keep the peak of this
    # pytest process, which a child inherits across exec
    script = textwrap.dedent(f"""
        import json, time
        from training.columnar import read_occurrences_columnar
        import pyarrow.csv, numpy  # imported before the baseline: their code is not the data

        def peak_kb():
            return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])

        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = peak_kb()
        t = time.perf_counter()
        occ = read_occurrences_columnar({str(path)!r})
        print(json.dumps({{"grown_kb": peak_kb() - base, "n": len(occ), "fossil": occ.dropped["fossil"],
                          "species": len(occ.names),
                          "n_read": occ.n_read, "s": time.perf_counter() - t}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert (r["n_read"], r["fossil"], r["n"]) == (n, n_fossil, n - n_fossil)
    assert r["species"] == 50_000  # a paper-sized vocabulary: every taxonKey of 1,000,000..1,049,999
    grown = r["grown_kb"] * 1024
    # measured 423-571 MB (the latter on a loaded machine): the kept records (24 B each, 48 B while
    # the batches are joined), pyarrow's pool of read-ahead batches (about 140 MB, more when the
    # consumer lags) and freed batch arrays the allocator keeps. The plugin's reader, holding every
    # used value as Python text, grew by 1.65 GB on this file: the bound sits well between the two
    assert grown < 80 * n + (320 << 20), (grown, size)


def test_gbif_simple_csv_quotes_are_text(tmp_path):
    # GBIF SIMPLE_CSV is tab-separated and unquoted: a quote in a locality is part of the text
    path = tmp_path / "0002.csv"
    path.write_text("gbifID\tspecies\tlocality\tdecimalLatitude\tdecimalLongitude\n"
                    '1\tA b\t"Big" rock\t10\t20\n2\tA b\t5" north\t11\t21\n3\tC d\t"x\t12\t22\n', encoding="utf-8")
    occ, how = read_training_occurrences(path)
    assert how.startswith("read column-wise")
    assert_same(read_occurrences(path), occ)
    assert (occ.lat.tolist(), occ.species.tolist()) == ([10.0, 11.0, 12.0], ["A b", "A b", "C d"])
