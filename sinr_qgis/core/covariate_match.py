"""Which raster band feeds which covariate of a model: by name, never by position alone. numpy + GDAL.

A model stores its covariates' names (training names a band by its description, else
``<file stem>_b<band>``). The bands given for a prediction are matched to them by name
(:func:`match_covariates`): a band goes by its description, its file's name (a single-band file),
``<file stem>_b<band>``, and any alias the caller adds (a QGIS layer's name); letter case does not
matter. When no band carries a model name, WorldClim variables (elevation, bio1 ... bio19) are
compared instead (renamed or other-resolution WorldClim files). Bands the model does not read are
left out. One covariate left without a name and one band left without a name go together (the
only way they fit); anything else that cannot be placed by name is refused with both orders in
the message, and the user names the bands explicitly: a mapping {covariate name: (path, band)}
(:func:`match_covariates` with a ``Mapping``; Processing's COVARIATE_NAMES builds one).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import official_env
from .bundle import ModelBundle
from .covariates import CovariateRaster, RasterBandSampler
from .errors import CovariateError

Source = tuple[str, int]  # (raster path, 1-based band)
SourceSpec = Sequence[Source | str] | Mapping[str, Source | str]  # a path alone: every band of it
NAMING_HINT = ("Name each band as the model's covariate it holds (its band description or file name), or give the "
               "names explicitly (Processing: Covariate names, one per band given, e.g. \"bio1,bio12\").")


def match_covariates(names: Sequence[str], sources: SourceSpec,
                     aliases: Sequence[Sequence[str]] | None = None) -> list[Source]:
    """The (path, band) of each covariate ``names`` of a model, in the model's order.

    ``sources``: the bands given, [(path, band)] (a path alone stands for all its bands), matched
    by name (module docstring); or a mapping {covariate name: (path, band) or path}, the user's
    explicit choice, taken as it is. ``aliases``: more names per entry of a sequence ``sources``
    (e.g. the QGIS layer's name). Raises ``CovariateError`` for an unreadable raster or a missing
    band, too few bands, a covariate given twice, and bands that cannot be placed by name: the
    message lists the model's order and the bands given."""
    names = [str(n) for n in names]
    if isinstance(sources, Mapping):
        return _explicit(names, sources)
    if not names:
        return []
    rasters: dict[str, CovariateRaster] = {}
    given: list[Source] = []
    labels: list[list[str]] = []
    for i, item in enumerate(sources):
        extra = list(aliases[i]) if aliases is not None else []
        for path, band in _bands_of(item, rasters):
            given.append((path, band))
            labels.append(band_labels(rasters[path], band) + extra)
    if len(given) < len(names):
        raise CovariateError(f"The model reads {len(names)} covariates ({', '.join(names)}); {len(given)} raster "
                             f"band(s) were given. Give one raster band per covariate. {NAMING_HINT}")
    position = {n.casefold(): j for j, n in enumerate(names)}
    hits = [next((position[x.casefold()] for x in lab if x.casefold() in position), None) for lab in labels]
    if all(h is None for h in hits):
        hits = _worldclim_hits(names, labels)
    slots: list[int | None] = [None] * len(names)
    twice = []
    for i, j in enumerate(hits):
        if j is None:
            continue
        if slots[j] is not None:
            twice.append(names[j])
        slots[j] = i
    open_slots = [j for j, s in enumerate(slots) if s is None]
    unnamed = [i for i, h in enumerate(hits) if h is None]
    if not twice and len(open_slots) == len(unnamed) == 1:
        slots[open_slots[0]] = unnamed[0]  # the one band left is the one covariate left
        open_slots = []
    if twice or open_slots:
        shown = ", ".join(lab[0] for lab in labels)
        why = (f"{', '.join(sorted(set(twice)))} is given more than once" if twice else
               f"no band is named {', '.join(names[j] for j in open_slots)}")
        raise CovariateError(f"The covariate rasters do not match the model's covariates by name: the model reads "
                             f"{', '.join(names)} (in this order), the bands given are {shown}; {why}. {NAMING_HINT}")
    return [given[s] for s in slots if s is not None]


def _explicit(names: list[str], mapping: Mapping[str, Source | str]) -> list[Source]:
    """The user's mapping {covariate name: (path, band) or path} in the model's order."""
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise CovariateError(f"The model has no covariate named {', '.join(map(str, unknown))}; it reads "
                             f"{', '.join(names)}. Map each of these names to a raster band.")
    missing = [n for n in names if n not in mapping]
    if missing:
        raise CovariateError(f"No raster band given for covariate(s) {', '.join(missing)} of the model, which reads "
                             f"{', '.join(names)}. Map every covariate to a raster band.")
    out = []
    for n in names:
        item = mapping[n]
        out.append((str(item), 1) if isinstance(item, (str, Path)) else (str(item[0]), int(item[1])))
    return out


def _bands_of(item: Source | str, rasters: dict[str, CovariateRaster]) -> list[Source]:
    """The (path, band) pairs ``item`` stands for, its raster opened (and checked) into ``rasters``."""
    path, band = (str(item), None) if isinstance(item, (str, Path)) else (str(item[0]), int(item[1]))
    if path not in rasters:
        rasters[path] = CovariateRaster(path)
    raster = rasters[path]
    if band is None:
        return [(path, b) for b in raster.band_numbers]
    raster.info(band)  # refuses a band the file does not have
    return [(path, band)]


def band_labels(raster: CovariateRaster, band: int) -> list[str]:
    """The names a band goes by: its description (for a single-band file without one, the file's
    name) first, then the file's name (single-band files) and ``<file stem>_b<band>``."""
    stem = raster.path.stem
    single = raster.n_bands == 1
    name = raster.info(band).name
    desc = name if name != f"{stem}_b{band}" else ""
    first = desc or (stem if single else f"{stem}_b{band}")
    return list(dict.fromkeys([first, *([stem] if single else []), f"{stem}_b{band}"]))


def band_candidates(names: Sequence[str], labels: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per covariate of ``names`` (a model's), the indices of the bands that go by its name, in order.

    ``labels``: per band, the names it goes by (:func:`band_labels`, then aliases such as a QGIS
    layer's name); a band goes by the first of them that is a covariate name, letter case aside,
    as in :func:`match_covariates`. A covariate no band names gets the bands holding its WorldClim
    variable (when the model's names are distinct WorldClim variables). For choosing among many
    bands (e.g. every raster layer of a project), where :func:`match_covariates` places the bands given."""
    names = [str(n) for n in names]
    position = {n.casefold(): j for j, n in enumerate(names)}
    out: list[list[int]] = [[] for _ in names]
    for i, lab in enumerate(labels):
        j = next((position[x.casefold()] for x in lab if x.casefold() in position), None)
        if j is not None:
            out[j].append(i)
    unnamed = {j for j, found in enumerate(out) if not found}
    for i, j in enumerate(_worldclim_hits(names, labels)):
        if j in unnamed:
            out[j].append(i)
    return out


def _worldclim_hits(names: list[str], labels: list[list[str]]) -> list[int | None]:
    """Per band, the model covariate with the same WorldClim variable (none when the model's
    names are not all distinct WorldClim variables)."""
    model_keys = [official_env.worldclim_variable(n) for n in names]
    if None in model_keys or len(set(model_keys)) != len(names):
        return [None] * len(labels)
    given_keys = [official_env.worldclim_variable(lab[0]) for lab in labels]
    return [model_keys.index(k) if k in model_keys else None for k in given_keys]


CovariateSampler = RasterBandSampler | official_env.OfficialBandSampler  # both: .sample(lonlat [N, 2]) -> [N]


def covariate_samplers(encoding: Mapping[str, Any], sources: SourceSpec) -> list[CovariateSampler]:
    """One sampler per covariate of a bundle (``encoding``: its ``model.json`` ``encoding``), the
    bands put in the bundle's order by :func:`match_covariates`.

    A bundle imported from an official SINR environmental checkpoint (``covariate_sampling``
    method ``sinr_official``) reads its covariates exactly as the official code did
    (:class:`~sinr_qgis.core.official_env.OfficialBandSampler`: standardised values, missing cells
    0); every other bundle reads raw values with :class:`~.covariates.RasterBandSampler`, as its
    training did (a categorical covariate, one with ``classes``, at the nearest cell)."""
    covariates = list(encoding.get("covariates") or [])
    ordered = match_covariates([str(c.get("name", "")) for c in covariates], sources)
    sampling = encoding.get("covariate_sampling")
    if not sampling:
        return [RasterBandSampler(p, b, nearest=c.get("classes") is not None) for (p, b), c in zip(ordered, covariates)]
    if sampling.get("method") != official_env.METHOD:
        raise CovariateError(f"The model reads its covariates with method {sampling.get('method')!r}, which this "
                             "version of the plugin does not know. Update the plugin.")
    return [official_env.OfficialBandSampler(p, b, c, sampling["grid"]) for (p, b), c in zip(ordered, covariates)]


def covariates_at_points(covariates: SourceSpec | None, lonlat: np.ndarray, bundle: ModelBundle) -> np.ndarray | None:
    """Covariate values [N, k] of ``bundle`` at (lon, lat) points [N, 2] (degrees), read as the bundle reads them
    (:func:`covariate_samplers`: raw values, NaN outside a raster or on nodata; or the official SINR inputs of
    an imported official environmental model). None when no ``covariates`` are given (a coordinate model)."""
    if not covariates:
        return None
    samplers = covariate_samplers(bundle.meta["encoding"], covariates)
    return np.stack([s.sample(lonlat) for s in samplers], axis=1)
