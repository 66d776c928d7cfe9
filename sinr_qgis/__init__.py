"""SINR species range mapping for QGIS. Only ``classFactory`` here: nothing heavy at import."""


def classFactory(iface):
    """QGIS entry point."""
    # Private packages (onnxruntime installed by the plugin) go on sys.path before anything imports them
    from .toolbelt.private_packages import activate_private_packages

    activate_private_packages()
    from .plugin import SinrPlugin

    return SinrPlugin(iface)
