"""The dock's prediction layers: one layer per species and model, shown one at a time.

What a reader of the layer tree sees:

- every dock prediction sits in one group, "SINR predictions" (created at the top of the tree),
  which is *mutually exclusive*: the newest prediction is the checked one, and checking another
  unchecks the rest, so semi-transparent maps never stack and bleed into one another (uncheck
  "Mutually Exclusive Group" in the group's context menu to overlay them on purpose);
- a layer is named after its species (plus the model's name when it is not the bundled model);
- predicting a species again with the same model replaces that layer's data in place: same
  layer, same place in the tree (even when moved out of the group), same style and name, so
  panning and predicting again updates the map instead of adding "Acer rubrum (2)". To keep an
  old map, rename or duplicate its layer (or save it with Export) before predicting again.

Layers are recognised by custom properties saved with the project, so this also holds after the
project is saved and opened again. Main thread only.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsDataProvider, QgsLayerTreeGroup, QgsMapLayer, QgsProject, QgsRasterLayer

from ..core.errors import OutputError
from .layers import add_styled_raster, style_probability_layer

GROUP_NAME = "SINR predictions"
KEY_PROPERTY = "sinr_qgis/prediction_key"      # on a layer: "<model sha256>:<species code>"
GROUP_PROPERTY = "sinr_qgis/prediction_group"  # on the group node


def prediction_key(model_sha256: str, species_code: str) -> str:
    """The identity of a dock prediction layer: which model, which species."""
    return f"{model_sha256}:{species_code}"


def dock_prediction_layers(project: QgsProject | None = None) -> list[QgsRasterLayer]:
    """Every dock prediction layer of ``project`` (default: the current project), tree order first."""
    project = project or QgsProject.instance()
    return [lyr for lyr in project.mapLayers().values()
            if isinstance(lyr, QgsRasterLayer) and lyr.customProperty(KEY_PROPERTY)]


def find_prediction_layer(key: str, project: QgsProject | None = None) -> QgsRasterLayer | None:
    """The layer of ``project`` holding the prediction ``key`` (see :func:`prediction_key`), if any."""
    return next((lyr for lyr in dock_prediction_layers(project) if lyr.customProperty(KEY_PROPERTY) == key), None)


def prediction_group(project: QgsProject | None = None) -> QgsLayerTreeGroup:
    """The "SINR predictions" group (mutually exclusive), created at the top of the tree if missing."""
    root = (project or QgsProject.instance()).layerTreeRoot()
    for group in root.findGroups(True):
        if group.customProperty(GROUP_PROPERTY):
            return group
    group = root.insertGroup(0, GROUP_NAME)
    group.setCustomProperty(GROUP_PROPERTY, True)
    group.setIsMutuallyExclusive(True)
    return group


def show_prediction(path: str | Path, key: str, name: str, opacity: float,
                    project: QgsProject | None = None) -> tuple[QgsRasterLayer, str]:
    """Show the probability raster ``path`` as the prediction ``key``: the existing layer of that key
    gets the new data in place (its name, style and tree position are kept), otherwise a new styled
    layer named ``name`` goes to the top of the predictions group. The layer is made the visible
    one of its group. Returns the layer and the file it used before ("" when new).

    Raises ``OutputError`` when the raster cannot be opened.
    """
    project = project or QgsProject.instance()
    layer = find_prediction_layer(key, project)
    old_source = ""
    if layer is not None:
        old_source = layer.source()
        _read_file(layer, path)
    else:
        layer = add_styled_raster(path, name, "probability", project, opacity=opacity, add_to_legend=False)
        layer.setCustomProperty(KEY_PROPERTY, key)
        prediction_group(project).insertLayer(0, layer)
    node = project.layerTreeRoot().findLayer(layer.id())
    if node is not None:
        node.setItemVisibilityChecked(True)  # in the mutually exclusive group: unchecks the others
        parent = node.parent()
        if isinstance(parent, QgsLayerTreeGroup):
            parent.setItemVisibilityChecked(True)
    return layer, old_source


def _read_file(layer: QgsRasterLayer, path: str | Path) -> None:
    """``layer`` reads ``path`` from now on (its name, style and tree position are kept)."""
    layer.setDataSource(str(path), layer.name(), "gdal", QgsDataProvider.ProviderOptions(), False)
    if not layer.isValid():
        raise OutputError(f"The result {path} could not be opened as a raster layer.")
    if layer.renderer() is None:  # it was read from a project while its file was missing
        style_probability_layer(layer)
    layer.triggerRepaint()


def checked_predictions(project: QgsProject | None = None) -> set[str]:
    """The ids of the dock prediction layers whose box is ticked in the layer tree."""
    project = project or QgsProject.instance()
    root = project.layerTreeRoot()
    return {lyr.id() for lyr in dock_prediction_layers(project)
            if (node := root.findLayer(lyr.id())) is not None and node.itemVisibilityChecked()}


def undo_show(shown: list[tuple[str, str]], checked: set[str], project: QgsProject | None = None) -> None:
    """Undo :func:`show_prediction` calls (a preview whose full map was cancelled or failed).

    ``shown`` holds (layer id, the file it read before; "" for a layer the call added): each such
    layer reads its file again, an added one is removed; the dock prediction layers whose ids are
    in ``checked`` (:func:`checked_predictions` before the calls) are ticked again, the others not.
    A layer the user removed meanwhile is left alone. Raises ``OutputError`` when a file no longer opens.
    """
    project = project or QgsProject.instance()
    for layer_id, old_source in shown:
        layer = project.mapLayer(layer_id)
        if layer is None:
            continue
        if old_source:
            _read_file(layer, old_source)
        else:
            project.removeMapLayer(layer_id)
    root = project.layerTreeRoot()
    nodes = [root.findLayer(lyr.id()) for lyr in dock_prediction_layers(project)]
    # unticked first: in the mutually exclusive group, ticking one unticks the others
    for node in sorted((n for n in nodes if n is not None), key=lambda n: n.layerId() in checked):
        node.setItemVisibilityChecked(node.layerId() in checked)


def set_predictions_opacity(opacity: float, project: QgsProject | None = None) -> int:
    """Set the opacity (0..1) of every dock prediction layer; returns how many layers changed."""
    layers = dock_prediction_layers(project)
    for layer in layers:
        layer.renderer().setOpacity(max(0.0, min(1.0, float(opacity))))
        layer.triggerRepaint()
    return len(layers)


def layer_sources(project: QgsProject | None = None) -> list[str]:
    """The file behind every layer of ``project`` (the part of the source before any '|' option)."""
    return [lyr.source().split("|")[0] for lyr in (project or QgsProject.instance()).mapLayers().values()
            if isinstance(lyr, QgsMapLayer)]
