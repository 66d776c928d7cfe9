"""SINR species range mapping for QGIS. Only ``classFactory`` here: nothing heavy at import."""


def classFactory(iface):
    """QGIS entry point."""
    from .plugin import SinrPlugin

    return SinrPlugin(iface)
