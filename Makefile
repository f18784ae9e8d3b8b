# The two commands of the README. Each sets up first (idempotent), then runs.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0
PROFILE ?= smoke
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: setup demo test lint
setup:
	./setup.sh

# The main job: execute every notebook with papermill (PROFILE=full makes figures/).
demo: setup
	mkdir -p out
	for nb in $(NOTEBOOKS); do $(PY) -m papermill --log-level WARNING $$nb out/$$(basename $$nb) -p profile $(PROFILE) || exit 1; done

# The tests: the library's, then every notebook executed and compared by nbval.
test: setup
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval notebooks/

lint:
	$(PY) -m ruff check vitlib tests benchmarks
