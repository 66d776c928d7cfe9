"""The evaluation report with species names that hold markup, quotes, commas, right-to-left text and emoji."""
from __future__ import annotations

import csv
import html.parser

import numpy as np

from sinr_qgis.core import eval_report, evaluation
from sinr_qgis.core.bundle import Species

ODD = [Species(0, 'a"b \'c\' #1', 'Quercus <alba> & "rubra"', 1), Species(1, "Quercus alba L., 1753", "x, y", 1),
       Species(2, "אלון", "אלון מצוי 🌳", 1)]


class _Page(html.parser.HTMLParser):
    """Collects ids, links, text and the elements left open: a name must not add or break markup."""

    def __init__(self) -> None:
        super().__init__()
        self.ids, self.links, self.text, self.open = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a":
            self.links.append(a.get("href"))
        if tag not in ("meta", "br", "img", "rect", "line", "path", "image"):
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _results():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    return [evaluation.evaluate_species(sp, sp.name, y, s) for sp in ODD]


def test_html_report_escapes_names_and_links_every_species(tmp_path):
    results = _results()
    page = eval_report.write_html_report(tmp_path / "r.html", results, title="T", summary=[("Model", "<m>")])
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    assert parser.open == []  # every element closed: no name opened or closed a tag
    text = "".join(parser.text)
    for sp in ODD:
        assert sp.name in text and sp.code in text  # shown as written
    # anchors do not depend on what a code holds (spaces, quotes, '#'): one per species, all linked
    species_ids = [i for i in parser.ids if i.startswith("sp")]
    assert species_ids == ["sp0", "sp1", "sp2"]
    assert parser.links == ["#sp0", "#sp1", "#sp2"]
    # names are isolated so that right-to-left text does not reorder its neighbours
    assert page.read_text(encoding="utf-8").count("<bdi>אלון מצוי 🌳</bdi>") == 2


def test_csv_report_quotes_names_and_reads_back(tmp_path):
    path = eval_report.write_csv(tmp_path / "r.csv", _results())
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["code"], r["name"]) for r in rows] == [(s.code, s.name) for s in ODD]
    assert len(rows) == 3
