# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here so pip takes the CPU wheel on disk instead of a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[test]" "$(TORCH_PIN)"
	touch $(STAMP)

demo: install
	$(VENV)/bin/seqrec experiment=demo

# One pytest-xdist worker per usable core; whole files per worker (--dist loadfile), so a module's
# fixtures and cached trained models are built once. tests/conftest.py gives each worker its share of
# the cores (OMP_NUM_THREADS). `$(PY) -m pytest tests/test_x.py` still runs one file serially.
test: install
	$(PY) -m pytest -n auto --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache
