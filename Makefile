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

.PHONY: demo test pytest cpp-test build venv bench clean

demo: build
	$(PY) examples/train_compare.py

test: pytest cpp-test

pytest: build
	$(PY) -m pytest -q tests

# The libtorch example (examples/cpp) against the library `make build` made:
# CMake + CTest, Python only to save the TorchScript model it trains.
CMAKE_ARGS = -DARTDERIV_PREBUILT_LIBRARY=$(CURDIR)/$(wildcard artderiv/_C*.so) \
	-DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	-DPython3_EXECUTABLE=$(abspath $(PY)) $(if $(CUDA_HOME),-DCUDA_TOOLKIT_ROOT_DIR=$(CUDA_HOME))
cpp-test: build
	TORCH_CUDA_ARCH_LIST="$${TORCH_CUDA_ARCH_LIST:-9.0}" cmake -S . -B build/cmake $(CMAKE_ARGS) > build/cmake-configure.log || { cat build/cmake-configure.log; exit 1; }
	cmake --build build/cmake -j $(MAX_JOBS)
	cd build/cmake && ctest --output-on-failure

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
