"""Small plugin-wide utilities: logging to QgsMessageLog, settings, resource paths."""
