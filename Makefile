# SINR for QGIS. `make setup` is idempotent; every target that needs it runs it first.
PY := .venv/bin/python
export QT_QPA_PLATFORM ?= offscreen
SPECIES ?= Acer rubrum

.PHONY: setup test test-fast demo lint clean

setup: .venv/.setup-done
.venv/.setup-done: scripts/setup.sh requirements.txt
	bash scripts/setup.sh
	touch $@

test: setup  ## everything, slow, integration and desktop tests included (the CI command)
	$(PY) -m pytest -q -m ""

test-fast: setup  ## pytest.ini's default selection: no slow, integration or desktop tests
	$(PY) -m pytest -q

demo: setup  ## range map of $(SPECIES) with the bundled model via sinr:predict_range -> out/demo/
	$(PY) scripts/demo.py --species "$(SPECIES)"

lint: setup
	$(PY) -m ruff check sinr_qgis training tests

clean:
	rm -rf build zip_build .pytest_cache

# --- real desktop and plugin zip (scripts/desktop.sh, scripts/package.sh) ---
.PHONY: desktop package test-desktop screenshots
desktop: setup  ## the real QGIS desktop, plugin enabled, isolated profile in build/qgis-profile
	bash scripts/desktop.sh $(ARGS)

package:  ## build/sinr_qgis.<version>.zip with pb_tool (own small venv, no torch), for the plugin repository
	bash scripts/package.sh

test-desktop: setup  ## only the desktop tests (Xvfb): the checkout and the zip install; screenshots in build/screenshots
	$(PY) -m pytest -q -m desktop tests/desktop

screenshots: test-desktop  ## refresh the README's docs/screenshots from the desktop test's artifacts
	$(PY) scripts/readme_screenshots.py
