"""Widgets: the SINR dock and its "what lives here" map tool."""
