# artderiv: two commands on a fresh machine
#   make demo   installs everything, builds, runs the main job
#   make test   installs everything, builds, runs all tests
# Everything goes into a virtual environment in $(VENV).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# 2.14.1 is the CUDA 13.0 build (about 5.5 GB); 2.13.0 is a CPU-only build (1 GB).
TORCH_VERSION ?= 2.14.1
# cpp_extension would guess CUDA_HOME from the nvcc on PATH; point it at the toolkit.
ifneq ($(wildcard /usr/local/cuda/bin/nvcc),)
export CUDA_HOME ?= /usr/local/cuda
endif
export MAX_JOBS ?= $(shell nproc)

.PHONY: demo test build venv bench clean

demo: build
	$(PY) examples/train_compare.py

test: build
	$(PY) -m pytest -q tests

# Incremental: ninja reuses the objects in build/; only changed sources recompile.
build: venv
	$(PY) setup.py -q build_ext --inplace
	@test -f $(VENV)/.editable || { $(PY) -m pip install -q --no-build-isolation --no-deps -e . && touch $(VENV)/.editable; }

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION) -r requirements-dev.txt
	touch $@

clean:
	rm -rf build artderiv/_C*.so *.egg-info $(VENV)/.editable
