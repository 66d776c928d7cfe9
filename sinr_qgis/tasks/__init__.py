"""Background ``QgsTask``s. They copy their inputs, never touch layers or widgets, and report in ``finished()``."""
