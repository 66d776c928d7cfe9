"""The plugin's Processing provider and algorithms (one file per algorithm)."""
