# artderiv: two commands on a fresh machine
#   make demo   installs everything, builds, runs the main job (artderiv demo)
#   make test   installs everything, builds, runs all tests (pytest + the libtorch CTest)
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

.PHONY: demo test pytest cpp-test cpp-package-test compat-test build venv bench docs stubs clean

# The main job: exact vs artificial derivatives on real data (about 3 minutes on 2 cores).
demo: build
	$(PY) -m artderiv demo --out out/demo

# CPU benchmark suite (about 3.5 minutes on 2 cores); options: make bench BENCH_ARGS="--sizes 20,24".
# The SNN libraries are optional peers, installed without their dependencies
# so that they cannot replace torch.
bench: build
	-$(PY) -m pip install -q --no-deps snntorch spikingjelly
	$(PY) benchmarks/bench.py --out out/bench $(BENCH_ARGS)

# Regenerate docs/derivatives.md and its pictures from the catalog.
docs: build
	$(PY) -m artderiv docs docs

# Regenerate the type stubs (artderiv/*.pyi) of the modules made from the catalog.
stubs: build
	$(PY) -m artderiv.stubs artderiv

test: pytest cpp-test

pytest: build
	$(PY) -m pytest -q tests

# The libtorch example (examples/cpp) against the library `make build` made:
# CMake + CTest, Python only to save the TorchScript model it trains.
TORCH_PREFIX = $$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')
CMAKE_COMMON = -DPython3_EXECUTABLE=$(abspath $(PY)) $(if $(CUDA_HOME),-DCUDA_TOOLKIT_ROOT_DIR=$(CUDA_HOME))
# Without a GPU, Torch's CMake config must be told an architecture to skip detection.
CMAKE_ENV = TORCH_CUDA_ARCH_LIST="$${TORCH_CUDA_ARCH_LIST:-9.0}"
cpp-test: build
	$(CMAKE_ENV) cmake -S . -B build/cmake -DARTDERIV_PREBUILT_LIBRARY=$(CURDIR)/$(wildcard artderiv/_C*.so) \
		-DCMAKE_PREFIX_PATH="$(TORCH_PREFIX)" $(CMAKE_COMMON) > build/cmake-configure.log || { cat build/cmake-configure.log; exit 1; }
	cmake --build build/cmake -j $(MAX_JOBS)
	cd build/cmake && ctest --output-on-failure

# What a libtorch user does: build the library from source with CMake, install
# it, then build examples/cpp as a separate project with find_package(artderiv).
# (CPU kernels; CI runs this as its own stage.)
cpp-package-test: build
	$(CMAKE_ENV) cmake -S . -B build/cmake-src -DARTDERIV_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_PREFIX_PATH="$(TORCH_PREFIX)" $(CMAKE_COMMON) > build/cmake-src-configure.log || { cat build/cmake-src-configure.log; exit 1; }
	cmake --build build/cmake-src -j $(MAX_JOBS)
	cmake --install build/cmake-src --prefix build/install
	$(CMAKE_ENV) cmake -S examples/cpp -B build/cmake-downstream -DCMAKE_PREFIX_PATH="$(CURDIR)/build/install;$(TORCH_PREFIX)" \
		$(CMAKE_COMMON) > build/cmake-downstream-configure.log || { cat build/cmake-downstream-configure.log; exit 1; }
	cmake --build build/cmake-downstream -j $(MAX_JOBS)
	cd build/cmake-downstream && ctest --output-on-failure

# The oldest torch the code must build on: the GPU machine's (CUDA 13.0 build,
# like 2.14.1). A copy of the checkout (tracked files, as they are now) builds
# in build/compat with its own venv and runs the tests, so a torch API change
# is found here, not in a GPU session's few minutes.
COMPAT_TORCH ?= 2.11.0
COMPAT = build/compat
compat-test:
	rm -rf $(COMPAT)/src && mkdir -p $(COMPAT)/src
	git ls-files -z | tar --null -cf - -T - | tar -xf - -C $(COMPAT)/src
	test -x $(COMPAT)/venv/bin/python || $(PYTHON) -m venv $(COMPAT)/venv
	$(COMPAT)/venv/bin/python -m pip install -q torch==$(COMPAT_TORCH) -r requirements-dev.txt
	cd $(COMPAT)/src && ../venv/bin/python setup.py -q build_ext --inplace && ../venv/bin/python -m pytest -q -p no:cacheprovider tests

# Incremental: ninja reuses the objects in build/; only changed sources recompile.
# (pip install -e would rebuild everything from scratch on every call.) The venv
# then imports artderiv from this checkout, and gets the `artderiv` command.
build: venv
	$(PY) setup.py -q build_ext --inplace
	@$(PY) -c "import os, site; open(os.path.join(site.getsitepackages()[0], 'artderiv-checkout.pth'), 'w').write('$(CURDIR)\n')"
	@printf '#!%s\nimport sys\nfrom artderiv.cli import main\nsys.exit(main())\n' "$(abspath $(PY))" > $(VENV)/bin/artderiv
	@chmod +x $(VENV)/bin/artderiv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION) -r requirements-dev.txt
	touch $@

clean:
	rm -rf build out artderiv/_C*.so *.egg-info
