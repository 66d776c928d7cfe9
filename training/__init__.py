"""PyTorch side of SINR: model, losses, data, trainer, export to the .sinr bundle, and a CLI.

Never imports qgis. Shares encodings, readers and the bundle format with ``sinr_qgis.core``.
"""
