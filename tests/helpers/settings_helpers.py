"""The plugin's stored settings put back after a test that lets the dock or a dialog store choices."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from qgis.core import QgsSettings

from sinr_qgis.toolbelt import settings


@pytest.fixture
def restore_settings() -> Iterator[None]:
    """The dock stores its choices; put the test profile's values back afterwards."""
    store = QgsSettings()
    keys = [settings.PREFIX + k for k in settings.DEFAULTS]
    saved = {k: store.value(k) for k in keys if store.contains(k)}
    yield
    for k in keys:
        if k in saved:
            store.setValue(k, saved[k])
        else:
            store.remove(k)
