"""core.point_context: water and "outside the model's data" for "what lives here"."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core.bundle import Species
from sinr_qgis.core.point_context import MARGIN_DEG, point_context, record_extents

# two species: one in the eastern US, one across the antimeridian (Aleutians to Kamchatka)
BOXES = np.array([[-90.0, 30.0, -70.0, 45.0], [170.0, 50.0, -170.0, 60.0]])


@pytest.mark.parametrize(("lon", "lat", "land", "near"), [
    (-77.5, 40.8, True, [True, False]),    # Pennsylvania: inside the first box
    (-69.0, 46.5, True, [True, False]),    # Maine, 1 and 1.5 degrees beyond the box: inside the margin
    (-66.0, 40.8, False, [False, False]),  # 4 degrees east of the box
    (178.0, 55.0, False, [False, True]),   # Bering Sea, inside the box across 180 degrees
    (-168.5, 55.0, False, [False, True]),  # 1.5 degrees east of its east edge (-170)
    (-160.0, 55.0, False, [False, False]),
    (10.0, 50.0, True, [False, False]),    # Germany
])
def test_point_context_tells_which_records_boxes_hold_the_point(lon, lat, land, near):
    ctx = point_context(lon, lat, BOXES, land=land)
    assert ctx.near.tolist() == near
    assert ctx.near_any_records is any(near)
    assert ctx.data_extent == (-180.0, 30.0, 180.0, 60.0)  # one box crosses 180 degrees


def test_water_and_outside_the_data_give_a_message_not_a_list():
    # the land mask decides when ``land`` is not given: mid-Atlantic (the "red maple 0.987")
    atlantic = point_context(-40.0, 35.0, BOXES)
    assert not atlantic.on_land
    assert atlantic.message.startswith("This point is on water (sea or ocean")
    assert "no species are listed" in atlantic.message
    germany = point_context(10.0, 50.0, BOXES[:1])
    assert germany.on_land and germany.near_any_records is False
    assert germany.message == (
        "This point is outside the model's data: the bulk of its training records lies within longitude -90° to "
        "-70° and latitude 30° to 45°. Scores here are guesses far from anything the model saw: no species are "
        "listed.")
    assert point_context(-77.5, 40.8, BOXES).message == ""


def test_unknown_boxes_never_flag_a_point():
    """A bundle written before records boxes were stored: the model does not say, so nothing is
    flagged (the list is shown as before) and no species is called far from its records."""
    species = [Species(0, "a", "A a", 10), Species(1, "b", "B b", 10)]
    extents = record_extents(species, lambda s: None)
    assert extents.shape == (2, 4) and np.isnan(extents).all()
    ctx = point_context(10.0, 50.0, extents, land=True)
    assert ctx.near_any_records is None and ctx.message == ""
    assert not ctx.far_from_records(0) and not ctx.far_from_records(1)
    # one known box: only that species can be far from its records
    extents = record_extents(species, lambda s: (0.0, 0.0, 1.0, 1.0) if s.code == "b" else None)
    ctx = point_context(10.0, 50.0, extents, land=True)
    assert [ctx.far_from_records(i) for i in range(2)] == [False, True]
    assert ctx.near_any_records is False


def test_margin_is_two_degrees_on_each_side():
    box = np.array([[0.0, 0.0, 10.0, 10.0]])
    assert MARGIN_DEG == 2.0
    assert point_context(12.0, 12.0, box, land=True).near[0]
    assert not point_context(12.01, 5.0, box, land=True).near[0]
    assert not point_context(5.0, -2.01, box, land=True).near[0]
    whole = np.array([[-180.0, -60.0, 180.0, 80.0]])  # a whole-globe box stays whole
    assert point_context(123.0, 10.0, whole, land=True).near[0]
