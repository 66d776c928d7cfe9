"""The plugin's settings: every key declared once in toolbelt/settings.py, with its default and type,
read and written only through it (the interpreter choice and the model list included)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from qgis.core import QgsSettings

from sinr_qgis.toolbelt import interpreter, model_registry, settings
from sinr_qgis.toolbelt.private_packages import qgis_proxy

PACKAGE = Path(settings.__file__).resolve().parents[1]
PROXY = {"proxy/proxyEnabled": "true", "proxy/proxyType": "HttpProxy", "proxy/proxyHost": "proxy.example",
         "proxy/proxyPort": "3128", "proxy/proxyUser": "", "proxy/proxyPassword": ""}


@pytest.fixture
def saved_settings(qgis_app):
    """The plugin's keys and QGIS's proxy keys unset for the test; the profile's values put back after."""
    store = QgsSettings()
    keys = [settings.key(name) for name in settings.DEFAULTS] + list(PROXY)
    saved = {k: store.value(k) for k in keys if store.contains(k)}
    for k in keys:
        store.remove(k)
    yield store
    for k in keys:
        store.remove(k)
        if k in saved:
            store.setValue(k, saved[k])


def test_every_key_is_declared_with_its_default_and_type(saved_settings):
    assert settings.DEFAULTS == {"model_path": "", "species": "", "opacity": 80, "top_k": 10, "mask_ocean": True,
                                 "training/python": "", "models/registry": ""}
    for name, default in settings.DEFAULTS.items():
        assert settings.get_value(name) == default and type(settings.get_value(name)) is type(default)
    settings.set_value("opacity", 35)
    settings.set_value("mask_ocean", False)
    assert (settings.get_value("opacity"), settings.get_value("mask_ocean")) == (35, False)
    assert saved_settings.value("sinr_qgis/opacity", type=int) == 35


@pytest.mark.parametrize("call", [lambda: settings.key("colour"), lambda: settings.get_value("colour"),
                                  lambda: settings.set_value("colour", 1)])
def test_an_undeclared_key_is_refused(saved_settings, call):
    with pytest.raises(KeyError, match="unknown setting 'colour'"):
        call()
    assert not saved_settings.contains("sinr_qgis/colour")


def test_the_interpreter_and_the_model_list_are_stored_under_their_declared_keys(saved_settings, tmp_path):
    from tests import factories

    interpreter.set_training_interpreter("  /opt/lab/python3  ")
    assert saved_settings.value("sinr_qgis/training/python") == "/opt/lab/python3"
    assert settings.get_value("training/python") == interpreter.training_interpreter() == "/opt/lab/python3"
    model = factories.make_bundle(tmp_path / "a.sinr", n_species=3, width=8, depth=0)
    model_registry.add_model(model.path)
    assert settings.get_value("models/registry") == saved_settings.value("sinr_qgis/models/registry")
    assert [e.name for e in model_registry.list_models()] == ["a"]


def test_qgis_proxy_is_read_through_the_settings_module(saved_settings):
    for k, v in PROXY.items():
        saved_settings.setValue(k, v)
    assert settings.qgis_values(["proxy/proxyHost", "proxy/none"]) == {"proxy/proxyHost": "proxy.example",
                                                                       "proxy/none": ""}
    assert qgis_proxy() == "http://proxy.example:3128"


def test_only_the_settings_module_touches_qsettings():
    # a module that opens QgsSettings/QSettings itself stores a key nobody declared (the interpreter
    # and the model list did); the plugin's keys and QGIS's are read through toolbelt/settings.py
    users = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        if names & {"QgsSettings", "QSettings"}:
            users.append(path.relative_to(PACKAGE).as_posix())
    assert users == ["toolbelt/settings.py"]
