"""Pure-Python core of the SINR plugin: numpy + GDAL (+ onnxruntime, imported lazily).

Never imports qgis, PyQt5 or torch: it is shared with ``training/`` and testable without QGIS.
"""
