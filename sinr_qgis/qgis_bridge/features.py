"""Writing features to QGIS outputs without losing any: checked writes and fields every format accepts.

Every Processing sink and every layer the plugin fills goes through :func:`write_features`: a
feature the output refuses (a duplicate GeoPackage fid, a value the format cannot hold, a full
disk) is an :class:`~sinr_qgis.core.errors.OutputError`, never a success with fewer rows.

:func:`output_fields` builds the fields of an output that repeats input attributes next to the
plugin's own fields, so that the formats' rules cannot make a write fail or put a value under a
misleading name:

- an input field ``fid`` is renamed ``input_fid``: GeoPackage (QGIS's default format) and other
  OGR outputs use a field of that name as their primary key, which must be unique, while an
  output with several rows per input feature repeats it;
- an input field named like one of the plugin's fields (any case: GeoPackage and dBASE names are
  case-insensitive) is renamed ``input_<name>``, so the plugin's fields keep their documented names;
- for a Shapefile/dBASE output every name is cut to 10 characters, as the format requires, and an
  input name whose cut form collides gets a numbered one: the driver would otherwise rename
  whichever field comes second, possibly one of the plugin's.
"""
from __future__ import annotations

from collections.abc import Iterable

from qgis.core import QgsFeature, QgsFeatureSink, QgsField, QgsFields

from ..core.errors import OutputError

PRIMARY_KEY_NAMES = ("fid",)
DBF_NAME_LENGTH = 10
_DBF_SUFFIXES = (".shp", ".dbf", ".shz", ".shp.zip")


def is_dbf_destination(destination: str) -> bool:
    """True when ``destination`` (a Processing output path or URI) is a Shapefile or dBASE table."""
    path = str(destination or "").split("|")[0].strip().strip("'\"").lower()
    return path.endswith(_DBF_SUFFIXES)


def _unique(name: str, taken: set[str], limit: int | None) -> str:
    cut = name[:limit] if limit else name
    if cut.lower() not in taken:
        return cut
    n = 1
    while True:
        suffix = f"_{n}"
        candidate = (name[:limit - len(suffix)] if limit else name) + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1


def output_fields(input_fields: QgsFields, added: QgsFields, destination: str = ""
                  ) -> tuple[QgsFields, dict[str, str]]:
    """The fields of an output whose features hold the input attributes, then the ``added`` ones.

    Returns the fields (same order and count: input fields then added fields, so attribute
    lists need no re-mapping) and ``{input field name: output name}`` for every input field that
    had to be renamed (see the module docstring for the rules), for the log.
    """
    limit = DBF_NAME_LENGTH if is_dbf_destination(destination) else None
    own = [_unique(f.name(), set(), limit) for f in added]
    taken = {n.lower() for n in own}
    renamed: dict[str, str] = {}
    out = QgsFields()
    for f in input_fields:
        wanted = f.name()
        if wanted.lower() in PRIMARY_KEY_NAMES or wanted.lower() in {a.name().lower() for a in added}:
            wanted = f"input_{wanted}"
        name = _unique(wanted, taken, limit)
        taken.add(name.lower())
        if name != f.name():
            renamed[f.name()] = name
        copy = QgsField(f)
        copy.setName(name)
        out.append(copy)
    for f, name in zip(added, own):
        copy = QgsField(f)
        copy.setName(name)
        out.append(copy)
    return out, renamed


def write_features(sink: QgsFeatureSink, features: Iterable[QgsFeature], destination: str) -> int:
    """Add ``features`` to ``sink`` (a Processing sink or a layer's data provider); return how many.

    Raises :class:`OutputError` naming ``destination`` and the sink's own reason when the output
    refuses any of them: the other features may have been written, so the output is incomplete
    and must not be reported as a result.
    """
    batch = list(features)
    if not batch:
        return 0
    ok = sink.addFeatures(batch, QgsFeatureSink.Flag.FastInsert)
    if isinstance(ok, tuple):  # a data provider answers (ok, features)
        ok = ok[0]
    if not ok:
        reason = (sink.lastError() if hasattr(sink, "lastError") else "") or "no reason given by the output"
        raise OutputError(
            f"{destination} refused features ({reason}), so it is incomplete. Write to another format "
            "(a GeoPackage or a temporary layer) or fix what the message names, then run again.")
    return len(batch)

