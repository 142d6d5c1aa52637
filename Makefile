# adtarget — the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck bench bench-large clean

$(STAMP): pyproject.toml setup.py adtarget/_core/_memory.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@# numba compiles a kernel at its first call (about a minute for all of them on 2 cores) and caches the machine
	@# code beside its module: one small demo run here, so the first `make demo` or `make test` does not pay it.
	@echo 'adtarget: compiling the numba kernels once (cached afterwards)...'
	d=$$(mktemp -d) && $(BIN)/adtarget demo --events 5000 --out $$d --quiet && rm -rf $$d
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/adtarget demo --out demo-output

lint: $(STAMP)
	$(BIN)/ruff check adtarget tests benchmarks
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-large: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes 1e5,1e6,1e7,1e8

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
