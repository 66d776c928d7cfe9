"""Training as the plugin sees it: the vocabulary and defaults shared with ``training/``, the run's
options, the JSON-lines events, the interpreter, the output lock, the child process, its summary,
and :func:`~sinr_qgis.core.training.run.run_training`, which ties them together.

PyTorch never runs inside QGIS: these modules start and read ``python -m training`` in a child
process. Pure Python (no qgis, no torch); ``training/`` imports the vocabulary from here.
"""
