# The two commands of the README. Each sets up first (idempotent), then runs.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0
PROFILE ?= smoke
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# The notebooks committed in a profile other than smoke (they draw or recompute the committed results files and
# train nothing); the others are committed in their smoke profile, which nbval runs.
DRAWN := $(patsubst %.py,%.ipynb,$(shell grep -L '^profile = "smoke"' notebooks/[0-9]*.py))

.PHONY: setup demo test lint constraints site
setup:
	./setup.sh

# The main job: execute every notebook with papermill, running what its profile's results file lacks (limit -1;
# PROFILE=full makes figures/, 06's included: write True). The committed notebooks instead draw the committed results
# (limit 0).
demo: setup
	mkdir -p out
	for nb in $(NOTEBOOKS); do $(PY) -m papermill --log-level WARNING $$nb out/$$(basename $$nb) -p profile $(PROFILE) -p limit -1 \
	  $(if $(filter full,$(PROFILE)),-p write True) || exit 1; done

# `$(call stage,NAME,COMMAND)`: show and run COMMAND, then say how long it took (also when it fails, then stop).
stage = @echo "== stage $(1): $(2)"; s=$$(date +%s); $(2); rc=$$?; echo "== stage $(1): $$(( $$(date +%s) - s )) s, exit $$rc"; exit $$rc

# The tests, one timed stage at a time: lint, the notebooks' Jupytext pairs, the doctests, the library's
# tests (the slowest ten named), every notebook executed as committed and compared by nbval, the smoke profile
# of every notebook committed drawing results run with papermill, and notebooks in JupyterLab driven by chromium.
# Each pytest run gets a fresh VITLIB_CACHE (conftest.py): the user's ~/.cache/vitlib is never touched. The tests and
# the notebooks run in two processes (pytest-xdist; each notebook whole in one of them: --dist loadfile), one torch
# thread each (OMP_NUM_THREADS=1, which the workers, their notebook kernels and subprocesses inherit): two processes of
# two threads each on two cores would make OpenMP's threads wait on each other.
test: setup
	$(call stage,lint,$(LINT))
	$(call stage,notebook-pairs,$(PY) -m pytest -q tests/test_notebook_pairs.py)
	$(call stage,doctests,$(PY) -m pytest -q --doctest-modules vitlib)
	$(call stage,tests,OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests --ignore=tests/test_notebook_pairs.py --ignore=tests/test_jupyterlab.py --durations=10)
	$(call stage,notebooks,OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --nbval notebooks/)
	$(call stage,notebooks-smoke,$(SMOKE))
	$(call stage,jupyterlab,$(PY) -m pytest -q tests/test_jupyterlab.py)

# The smoke profile of every notebook committed drawing results, run end to end (training included), outputs thrown
# away: drawing the full results (limit=0), nbval does not exercise their training paths.
# Two notebooks at a time, one thread each: their kernels' start-up, imports and plotting overlap the other's training.
SMOKE = d=$$(mktemp -d) && mkdir -p $$d/notebooks && printf '%s\n' $(DRAWN) | OMP_NUM_THREADS=1 xargs -P 2 -I{} \
	$(PY) -m papermill --no-progress-bar --log-level WARNING {} $$d/{} -p profile smoke -p limit -1

# A static HTML site of the committed notebooks (as committed: nothing runs) and RESULTS.md, into site/; it works
# offline (plotly.js and MathJax copied in): open site/index.html.
site: setup
	$(PY) -m vitlib site

LINT = $(PY) -m ruff check vitlib tests benchmarks conftest.py
lint:
	$(LINT)

# constraints.txt pins every package of the venv (setup.sh installs with -c constraints.txt), so that a new
# release of plotly, numpy, Pillow, JupyterLab... cannot change CI unannounced. To upgrade on purpose:
# .venv/bin/pip install -U PACKAGE, make test, then make constraints and commit constraints.txt.
constraints:
	{ echo "# pip constraints: the versions CI tests with (refresh: make constraints)"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -i -E '^vitlib( |=|@)'; } > constraints.txt
