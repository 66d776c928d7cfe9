"""Source-aware negatives (``training/negatives.py``): which pairs are masked, the CLI option,
land pseudo-negatives."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.landmask import is_land
from training.cli import main
from training.losses import an_full
from training.negatives import SourceNegatives, random_land_points

CODES = ["s0", "s1", "s2", "s3", "s4"]
# every record of the file: (lon, lat, species, source); s4 comes from a record of unknown source
ALL = [
    (0.0, 0.0, "s0", "A"), (0.0, 0.0, "s1", "A"),  # one site of source A holding s0 and s1
    (1.0, 1.0, "s2", "A"),
    (0.0, 0.0, "s3", "B"),  # same place as A's site, but another source: another site
    (2.0, 2.0, "s0", "B"),
    (3.0, 3.0, "s4", ""),
    (9.0, 9.0, "zz", "A"),  # a species the model does not have: ignored
]
# the records trained on (say the cap dropped A's s1 record): indices into ALL
TRAIN = [0, 2, 3, 4, 5]


def build(mode: str) -> SourceNegatives | None:
    lonlat = np.array([r[:2] for r in ALL])
    species = np.array([r[2] for r in ALL], dtype=object)
    source = np.array([r[3] for r in ALL], dtype=object)
    return SourceNegatives.build(mode, CODES, lonlat[TRAIN].astype(np.float32), source[TRAIN],
                                 lonlat, species, source)


def rows(mode: str) -> list[list[int]]:
    m = build(mode)
    return m.mask(torch.arange(len(TRAIN))).int().tolist()


def test_all_is_the_paper():
    assert build("all") is None


def test_source_restricts_negatives_to_the_source_species_list():
    # A records s0, s1, s2; B records s0, s3; unknown source: every species
    assert rows("source") == [
        [1, 1, 1, 0, 0],  # A (0,0) s0
        [1, 1, 1, 0, 0],  # A (1,1) s2
        [1, 0, 0, 1, 0],  # B (0,0) s3
        [1, 0, 0, 1, 0],  # B (2,2) s0
        [1, 1, 1, 1, 1],  # '' (3,3) s4
    ]


def test_site_unmasks_species_recorded_by_the_same_source_at_the_same_place():
    # A's site (0,0) recorded s0 and s1 (s1's record was capped away: still known);
    # B's record at (0,0) is another site: A's species there stay negatives for it
    assert rows("site") == [
        [0, 0, 1, 1, 1],
        [1, 1, 0, 1, 1],
        [1, 1, 1, 0, 1],
        [0, 1, 1, 1, 1],
        [1, 1, 1, 1, 0],
    ]


def test_source_site_combines_both():
    assert rows("source_site") == [
        [0, 0, 1, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0],
        [1, 1, 1, 1, 0],
    ]


def test_mask_follows_the_batch_order_and_the_loss_drops_masked_terms():
    m = build("source_site")
    idx = torch.tensor([3, 0, 0])
    full = m.mask(torch.arange(len(TRAIN)))
    assert torch.equal(m.mask(idx), full[idx])
    # a masked negative's logit does not change the loss
    logits = torch.zeros(3, 5)
    species = torch.tensor([0, 0, 0])
    base = an_full(logits, torch.zeros(3, 5), species, m.mask(idx), pos_weight=5.0)
    logits[1, 1] = 7.0  # row 1 = A (0,0) s0: s1 co-recorded at the site -> masked
    assert torch.isclose(an_full(logits, torch.zeros(3, 5), species, m.mask(idx), pos_weight=5.0), base)
    logits[1, 2] = 7.0  # s2 is in A's list and not at the site -> a negative
    assert an_full(logits, torch.zeros(3, 5), species, m.mask(idx), pos_weight=5.0) > base


def test_random_land_points_are_on_land():
    pts = random_land_points(500, np.random.default_rng(0))
    assert pts.shape == (500, 2) and is_land(pts).all()
    assert pts[:, 1].min() < 0 < pts[:, 1].max()  # both hemispheres


def write_two_source_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "latitude", "longitude", "source"])
        for code, src, (x, y) in [("aaa", "s1", (-90, 35)), ("bbb", "s1", (-88, 36)), ("ccc", "s2", (-75, 42))]:
            for _ in range(60):
                w.writerow([code, f"{y + rng.normal(0, 1):.5f}", f"{x + rng.normal(0, 1):.5f}", src])
    return path


FAST = ["--epochs", "1", "--batch-size", "64", "--width", "16", "--depth", "1", "--threads", "1", "--no-progress"]


def test_cli_trains_with_source_negatives_and_land_pseudo_negatives(tmp_path, capsys):
    data = write_two_source_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code = main(["train", "--data", str(data), "--out", str(out), "--source-column", "source",
                 "--negatives", "source_site", "--pseudo-negatives", "land", "--pos-weight", "3", *FAST])
    assert code == 0, capsys.readouterr().err
    training = ModelBundle.load(out).meta["training"]
    assert training["negatives"] == "source_site" and training["pseudo_negatives"] == "land"
    assert training["pos_weight"] == 3.0


@pytest.mark.parametrize("args, message", [
    (["--negatives", "source", "--loss", "an_ssdl"], "needs a loss with negatives"),
    (["--negatives", "source", "--source-column", "nope"], "nope"),
])
def test_cli_rejects_source_negatives_it_cannot_use(tmp_path, capsys, args, message):
    data = write_two_source_csv(tmp_path / "obs.csv")
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), *args, *FAST])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_cli_needs_a_source_column_for_source_negatives(tmp_path, capsys):
    data = tmp_path / "obs.csv"
    rows = [["code", "latitude", "longitude"]] + [["aaa", "35", "-90"], ["bbb", "36", "-88"]] * 10
    data.write_text("\n".join(",".join(r) for r in rows) + "\n")
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), "--negatives", "source",
                 "--jsonl", *FAST])
    out, err = capsys.readouterr()
    assert code == 2 and "--source-column" in err
    assert json.loads(out.splitlines()[-1])["event"] == "error"
