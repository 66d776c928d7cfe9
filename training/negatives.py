"""Which negatives a presence record may speak for, and where pseudo-negatives are drawn.

SINR's "full" losses assume that at an observed location every *other* species is absent
(reference section 3). Real training files mix sources that record different species lists
(NA-Trees: one survey lists 115 species, the southern plots 20, a pine data set only pines and
acacias), and one survey plot usually records several species at the same place. Two
corrections, both expressed as the losses' ``neg_mask`` [B, C] (True = usable negative):

- ``source``: a record speaks only for the species its own source records anywhere in the data
  (the negatives at its location are restricted to that source's species list). A record whose
  source is unknown ('' or no source column) keeps the paper's assumption (all species).
- ``site``: species recorded by the same source at the same location (a "site": one survey plot,
  one grid cell) are not negatives of each other.
- ``source_site``: both.

The per-source species lists and the per-site species lists are taken from *all* records of the
file (before the per-species cap), so a capped-away record still tells that its species occurs
at its site. Per batch the mask is built with a few vectorised gathers (no Python per row).

Pseudo-negatives: ``sphere`` (the paper: area-uniform on the whole sphere, mostly ocean) or
``land`` (area-uniform on land, rejection sampling with the shipped land mask).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

NEGATIVES = ("all", "source", "site", "source_site")
PSEUDO_NEGATIVES = ("sphere", "land")


def _site_keys(source: np.ndarray, lonlat32: np.ndarray) -> np.ndarray:
    """One hashable key per record: (source, float32 lon, float32 lat) as a structured array."""
    keys = np.empty(len(source), dtype=[("s", np.int64), ("x", np.float32), ("y", np.float32)])
    keys["s"], keys["x"], keys["y"] = source, lonlat32[:, 0], lonlat32[:, 1]
    return keys


class SourceNegatives:
    """Builds the ``neg_mask`` of a batch of training records (rows = record indices)."""

    def __init__(self, n_species: int, record_source: np.ndarray, source_species: np.ndarray,
                 record_site: np.ndarray | None = None, site_ptr: np.ndarray | None = None,
                 site_species: np.ndarray | None = None) -> None:
        self.n_species = int(n_species)
        self.record_source = torch.as_tensor(np.asarray(record_source, np.int64))
        self.source_species = torch.as_tensor(np.asarray(source_species, bool))  # [S, C]
        self.use_sites = record_site is not None
        if self.use_sites:
            self.record_site = torch.as_tensor(np.asarray(record_site, np.int64))
            self.site_ptr = torch.as_tensor(np.asarray(site_ptr, np.int64))  # CSR row pointers
            self.site_species = torch.as_tensor(np.asarray(site_species, np.int64))

    @classmethod
    def build(cls, mode: str, species_codes: Sequence[str], train_lonlat: np.ndarray,
              train_source: np.ndarray | None, all_lonlat: np.ndarray, all_species: np.ndarray,
              all_source: np.ndarray | None) -> SourceNegatives | None:
        """The mask builder for ``mode`` (one of ``NEGATIVES``); ``None`` for ``all``.

        ``species_codes``: the model's species in head order. ``train_*``: the records trained on
        (lon/lat, source). ``all_*``: every record of the file (lon/lat, species id, source), which
        defines the source species lists and the site species lists; records of species that are
        not in the model are ignored.
        """
        if mode not in NEGATIVES:
            raise ValueError(f"unknown negatives mode {mode!r}; choose one of {', '.join(NEGATIVES)}")
        if mode == "all":
            return None
        n_train, n_all = len(train_lonlat), len(all_lonlat)
        c = len(species_codes)
        # source ids: '' (unknown) is id 0 and speaks for every species
        train_src = np.full(n_train, "", dtype=object) if train_source is None else np.asarray(train_source, object)
        all_src = np.full(n_all, "", dtype=object) if all_source is None else np.asarray(all_source, object)
        names = ["", *sorted(({str(s) for s in all_src} | {str(s) for s in train_src}) - {""})]
        sid = {s: i for i, s in enumerate(names)}
        train_sid = np.array([sid[str(s)] for s in train_src], dtype=np.int64)
        all_sid = np.array([sid[str(s)] for s in all_src], dtype=np.int64)
        index = {code: i for i, code in enumerate(species_codes)}
        all_sp = np.array([index.get(str(s), -1) for s in all_species], dtype=np.int64)
        known = all_sp >= 0
        all_sid, all_sp = all_sid[known], all_sp[known]
        all_ll = np.asarray(all_lonlat, np.float64)[known].astype(np.float32)

        source_species = np.ones((len(names), c), dtype=bool)
        if mode in ("source", "source_site"):
            source_species[1:] = False
            source_species[all_sid, all_sp] = True
            source_species[0] = True

        if mode == "source":
            return cls(c, train_sid, source_species)
        # sites: (source, location) of all records; CSR list of the species recorded at each
        all_keys = _site_keys(all_sid, all_ll)
        train_keys = _site_keys(train_sid, np.asarray(train_lonlat, np.float32))
        uniq, site_of = np.unique(np.concatenate([all_keys, train_keys]), return_inverse=True)
        site_of = site_of.ravel()
        all_site, train_site = site_of[:len(all_keys)], site_of[len(all_keys):]
        pairs = np.unique(np.stack([all_site, all_sp], 1), axis=0)  # sorted by site, then species
        site_ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.add.at(site_ptr, pairs[:, 0] + 1, 1)
        site_ptr = np.cumsum(site_ptr)
        return cls(c, train_sid, source_species, train_site, site_ptr, pairs[:, 1])

    def mask(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, C] bool for the records ``idx``: True where species j may be a negative of row i."""
        m = self.source_species[self.record_source[idx]].clone()
        if self.use_sites:
            site = self.record_site[idx]
            start = self.site_ptr[site]
            count = self.site_ptr[site + 1] - start
            rows = torch.repeat_interleave(torch.arange(len(idx)), count)
            first = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
            pos = torch.repeat_interleave(start, count) + torch.arange(int(count.sum())) - first
            m[rows, self.site_species[pos]] = False
        return m

    __call__ = mask


def random_land_points(n: int, rng: np.random.Generator, land_mask: str | None = None) -> np.ndarray:
    """``n`` area-uniform random (lon, lat) points on land, float64 [n, 2] (rejection sampling
    against the shipped land mask ``resources/land_mask.tif``, about 29 % of the sphere)."""
    from sinr_qgis.core.landmask import is_land

    from .data import random_sphere_points

    out: list[np.ndarray] = []
    have = 0
    while have < n:
        pts = random_sphere_points(max(4 * (n - have), 1024), rng)
        pts = pts[is_land(pts, land_mask)]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]
