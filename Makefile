# Two commands set everything up on a fresh machine:
#   make book   -> .venv, install, build the HTML book from the committed notebook outputs
#   make test   -> .venv, install, unit tests + nbval on every chapter
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lint test unit nbval book bench clean notebooks

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt torch==2.13.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

LINTED := fomm_tutorial tests book/src tools benchmarks

# One formatter (ruff format, line length 88) and one linter (ruff check), both from pyproject.toml.
lint: install
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)

# Lint, then one pytest run: unit tests, then every chapter re-executed and compared by nbval.
test: install lint
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest tests book --nbval --nbval-current-env \
	  --nbval-cell-timeout=900 --nbval-sanitize-with tools/nbval_sanitize.cfg

unit: install
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest tests

nbval: install
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest book --nbval --nbval-current-env \
	  --nbval-cell-timeout=900 --nbval-sanitize-with tools/nbval_sanitize.cfg

book: install
	$(VENV)/bin/jupyter-book build . --builder html
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Re-execute the chapter sources (book/src/*.py) into committed notebooks with outputs.
notebooks: install
	$(PY) tools/nbbuild.py book/src/*.py

bench: install
	$(PY) benchmarks/bench_resampler.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf _build
