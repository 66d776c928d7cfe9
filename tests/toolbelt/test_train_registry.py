"""The user's model list (persisted in QgsSettings) and the training interpreter setting."""
from __future__ import annotations

import json
import sys

import pytest
from qgis.core import QgsSettings

from sinr_qgis.core.errors import BundleError, TrainingEnvironmentError
from sinr_qgis.toolbelt import interpreter, model_registry, settings
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


def test_models_are_remembered_newest_first_and_pruned_with_a_message(qgis_app, tmp_path):
    from tests import factories

    a = factories.make_bundle(tmp_path / "a.sinr", n_species=3, width=8, depth=0)
    b = factories.make_bundle(tmp_path / "b.sinr", n_species=4, width=8, depth=0)
    model_registry.add_model(a.path)
    entry = model_registry.add_model(b.path)
    assert (entry.name, entry.n_species, entry.trained) == ("b", 4, b.meta["created"])
    assert entry.label.startswith("b (4 species, 20")
    # stored in the plugin's settings, under its prefix, as plain JSON
    stored = json.loads(QgsSettings().value("sinr_qgis/models/registry"))
    assert [s["name"] for s in stored] == ["b", "a"]
    model_registry.add_model(a.path)  # again: moves to the top, no duplicate
    assert [e.name for e in model_registry.list_models()] == ["a", "b"]
    (tmp_path / "b.sinr").unlink()
    assert model_registry.prune_missing() == [
        f"Model 'b' is no longer at {tmp_path.resolve() / 'b.sinr'}; it was removed from the list of models. "
        "Add it again if you moved it."]
    assert [e.name for e in model_registry.list_models()] == ["a"]


def test_a_broken_file_is_not_added(qgis_app, tmp_path):
    bad = tmp_path / "bad.sinr"
    bad.write_text("not a zip")
    with pytest.raises(BundleError, match="not a SINR model bundle"):
        model_registry.add_model(bad)
    assert model_registry.list_models() == []


def test_unreadable_settings_value_resets_quietly(qgis_app):
    QgsSettings().setValue(settings.key("models/registry"), "{not json")
    assert model_registry.list_models() == []


def test_interpreter_setting_and_default(qgis_app, tmp_path):
    default = interpreter.training_interpreter()
    assert default == interpreter.default_interpreter() and default
    interpreter.set_training_interpreter(sys.executable)
    assert interpreter.training_interpreter() == sys.executable
    interpreter.set_training_interpreter("")
    assert interpreter.training_interpreter() == default
    with pytest.raises(TrainingEnvironmentError, match="was not found"):
        interpreter.check_training_interpreter(str(tmp_path / "nope"))


def test_check_of_an_interpreter_with_torch(qgis_app):
    assert "torch" in interpreter.check_training_interpreter(sys.executable)
