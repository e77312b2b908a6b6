# Every target bootstraps what it needs: a virtualenv in .venv, this package with its test
# tools, and graphviz's `dot` program (installed with apt-get when we are root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= out

.PHONY: demo test lint typecheck format bench gallery dot clean

demo: $(STAMP) dot
	@mkdir -p $(OUT)
	$(BIN)/unroll render lstm:input=3,hidden=4 --steps 3 --highlight cell_state -o $(OUT)/lstm_unrolled.svg
	$(BIN)/unroll render lstm:input=3,hidden=4 --steps 3 --highlight cell_state -o $(OUT)/lstm_unrolled.png
	$(BIN)/unroll analyze elman:hidden=32 lstm:hidden=32 lstm:hidden=32,forget_bias=3 gru:hidden=32 --steps 100 --seeds 10 \
		--plot $(OUT)/gradient_flow.png --json $(OUT)/gradient_flow.json --csv $(OUT)/gradient_flow.csv \
		| tee $(OUT)/gradient_flow.txt
	@echo "wrote $(OUT)/lstm_unrolled.svg, $(OUT)/lstm_unrolled.png, $(OUT)/gradient_flow.{txt,png,json,csv}"

test: $(STAMP) dot
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy as configured in pyproject.toml: unroll and cli, strict on the core modules.
typecheck: $(STAMP)
	$(BIN)/python -m mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_bptt.py
	$(BIN)/python benchmarks/bench_layout.py
	$(BIN)/python benchmarks/bench_long.py

gallery: $(STAMP) dot
	$(BIN)/unroll gallery gallery

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (the dot program) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "graphviz's dot program is missing: install it with 'sudo apt-get install graphviz'" \
	         "(Debian/Ubuntu) or 'brew install graphviz' (macOS), then run make again"; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis *.egg-info
