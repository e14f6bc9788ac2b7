# Two commands for a new user: `make train` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test venv clean bench docs

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e . --no-deps
	@touch $(STAMP)

train: $(STAMP)
	$(PY) scripts/train.py --config cartpole

# The documentation site (docs/ and mkdocs.yml) into site/; --strict: a broken link, anchor or
# docstring fails it. Needs no network. `make test` runs it first.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Two pytest workers, each taking whole test files (--dist loadfile: a module's fixtures and compiled
# programs are made once); many tests wait on timers or subprocesses, so two keep both cores busy.
# Files go out in xdist's order (most tests first): longest-first was measured slower cold (1020 s
# against 843-945 s), since it ran the long mpirun files side by side.
test: $(STAMP) docs
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q -n 2 --dist loadfile --durations=25 tests

bench: $(STAMP)
	$(PY) scripts/bench_train.py

clean:
	rm -rf $(VENV) runs site
