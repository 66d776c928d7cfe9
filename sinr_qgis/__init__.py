"""SINR species range mapping for QGIS. Only ``classFactory`` here: nothing heavy at import."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS entry point."""
    from .plugin import SinrPlugin

    return SinrPlugin(iface)
