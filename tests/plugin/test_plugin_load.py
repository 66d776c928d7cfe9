"""The plugin loads under pytest-qgis and registers its Processing provider."""
from qgis.core import QgsApplication

import sinr_qgis


def test_plugin_registers_and_removes_provider(qgis_iface, qgis_processing):
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    assert QgsApplication.processingRegistry().providerById("sinr") is not None
    plugin.unload()
    assert QgsApplication.processingRegistry().providerById("sinr") is None


def test_metadata_has_required_fields():
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(sinr_qgis.__file__).parent / "metadata.txt", encoding="utf-8")
    general = cfg["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                "email", "repository"):
        assert general.get(key), key
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
