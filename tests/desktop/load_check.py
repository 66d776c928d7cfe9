"""``qgis --code`` script: report whether the SINR plugin loaded in this desktop, then quit.

Writes JSON to $SINR_DESKTOP_RESULT: loaded plugins, where sinr_qgis was imported from, the
Processing provider and its algorithms, the plugin's menu actions, and which optional packages
this QGIS's Python can import.
"""
import json
import os
import sys

import qgis.utils
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer


def plugin_menu_actions() -> list:
    iface = qgis.utils.iface
    for action in iface.pluginMenu().actions():
        menu = action.menu()
        if menu is not None and "SINR" in action.text():
            return [a.text() for a in menu.actions()]
    return []


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def report() -> None:
    out = {}
    try:
        out["plugins"] = sorted(qgis.utils.plugins)
        out["active"] = sorted(qgis.utils.active_plugins)
        module = sys.modules.get("sinr_qgis")
        out["plugin_file"] = getattr(module, "__file__", None)
        provider = QgsApplication.processingRegistry().providerById("sinr")
        out["provider"] = provider is not None
        out["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        out["menu"] = plugin_menu_actions()
        out["importable"] = {m: importable(m) for m in ("onnxruntime", "torch")}
        out["torch_loaded"] = "torch" in sys.modules
        out["window_visible"] = qgis.utils.iface.mainWindow().isVisible()
    except Exception as exc:
        out["error"] = repr(exc)
    finally:
        with open(os.environ["SINR_DESKTOP_RESULT"], "w") as f:
            json.dump(out, f)
        QgsApplication.exit(0)


QTimer.singleShot(1000, report)
