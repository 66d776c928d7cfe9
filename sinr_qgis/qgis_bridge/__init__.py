"""The only place that turns QGIS objects into core inputs, and core results into styled layers.

``gui``, ``processing`` and ``tasks`` call these functions; ``core`` never sees a QGIS object.
"""
