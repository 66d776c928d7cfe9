"""``python -m training train`` says what it read and dropped, and refuses a shifted archive with one line."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pyarrow
import pyarrow.parquet

from tests.helpers.cli_helpers import FAST
from training.cli import main


def test_train_prints_what_was_read_and_dropped_per_reason(tmp_path: Path, capsys) -> None:
    rows = [f"Acer rubrum,{40 + i * 0.5},-75,present" for i in range(10)]
    rows += [f"Quercus alba,{40 + i * 0.5},-80,present" for i in range(10)]
    rows += ["Quercus alba,41,-81,absent", "Quercus alba,,-81,present", "Acer rubrum,42,-76,absent"]
    data = tmp_path / "plots.csv"
    data.write_text("species,latitude,longitude,occurrenceStatus\n" + "\n".join(rows) + "\n")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "plots.csv: 20 records of 2 species (23 rows read; dropped 2 absent, 1 missing)" in err.splitlines()
    # the training side reads column-wise whenever pyarrow is installed, and says so
    assert f"plots.csv: read column-wise in batches with pyarrow {pyarrow.__version__}" in err.splitlines()


def test_train_reads_parquet_and_reports_the_reader(tmp_path: Path, capsys) -> None:
    # GBIF / iNaturalist open data come as Parquet: typed columns, read column-wise only
    n = 30
    table = pyarrow.table({"taxonKey": pyarrow.array([5 + i % 3 for i in range(n)], pyarrow.int64()),
                           "decimalLatitude": [40.0 + i * 0.25 for i in range(n)],
                           "decimalLongitude": [-75.0 - (i % 7) for i in range(n - 1)] + [None]})
    data = tmp_path / "occ.parquet"
    pyarrow.parquet.write_table(table, data)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), "--jsonl", *FAST]) == 0
    out, err = capsys.readouterr()
    assert "occ.parquet: 29 records of 3 species (30 rows read; dropped 1 missing)" in err.splitlines()
    done = json.loads(out.strip().splitlines()[-1])
    assert (done["event"], done["n_records"], done["n_species"]) == ("done", 29, 3)
    assert done["reader"] == f"read column-wise in batches with pyarrow {pyarrow.__version__}"


def test_train_refuses_an_archive_whose_rows_are_shorter_than_meta_xml(tmp_path: Path, capsys) -> None:
    dwc = "http://rs.tdwg.org/dwc/terms/"
    meta = (f'<archive xmlns="http://rs.tdwg.org/dwc/text/"><core fieldsTerminatedBy="\\t" fieldsEnclosedBy="" '
            f'ignoreHeaderLines="0" rowType="{dwc}Occurrence"><files><location>occurrence.txt</location></files>'
            f'<id index="0"/><field index="1" term="{dwc}scientificName"/><field index="2" term="{dwc}countryCode"/>'
            f'<field index="3" term="{dwc}decimalLatitude"/><field index="4" term="{dwc}decimalLongitude"/>'
            "</core></archive>")
    data = tmp_path / "shifted.zip"
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("meta.xml", meta)
        zf.writestr("occurrence.txt", "".join(f"o{i}\tAcer rubrum\t{40 + i}\t-75\n" for i in range(12)))
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "error: shifted.zip: line 1 of occurrence.txt has 4 fields but meta.xml declares 5 columns; a field is "
        "missing, so its values would sit under the wrong columns. Fix the data file or meta.xml (they must "
        "describe the same columns) and export the archive again."]
    assert not (tmp_path / "m.sinr").exists()
