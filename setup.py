"""Build artderiv's op library with torch.utils.cpp_extension.

    pip install --no-build-isolation .          # or: make build

Environment:
    ARTDERIV_CUDA=1   build the CUDA kernels; fail loudly if that is impossible
    ARTDERIV_CUDA=0   CPU-only build
    (unset)           CUDA kernels when torch is a CUDA build and nvcc is found
    TORCH_CUDA_ARCH_LIST  GPU architectures; default 8.0;9.0+PTX when no GPU is visible
    MAX_JOBS          parallel compile jobs (ninja)

The library is a plain shared object (no Python module init): Python loads it
with torch.ops.load_library, and libtorch programs can load the same file.
"""

import os
import platform
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))

# torch.utils.cpp_extension reads CUDA_HOME at import time. With nvcc on PATH as
# /usr/local/bin/nvcc it would guess /usr/local and fail to link -lcudart.
if "CUDA_HOME" not in os.environ and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

import torch  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    CUDA_HOME,
    BuildExtension,
    CppExtension,
    CUDAExtension,
)

# Per-ISA CPU kernel files and their flags (ATen's CPU_CAPABILITY builds).
# CMakeLists.txt reads the same flags from csrc/cpu/isa_flags.txt.
ISA_FLAGS = {}
with open(os.path.join(ROOT, "csrc", "cpu", "isa_flags.txt")) as f:
    for line in f:
        if line.strip() and not line.startswith("#"):
            isa, flags = line.split(":", 1)
            ISA_FLAGS[isa.strip()] = flags.split()

IS_X86 = platform.machine().lower() in ("x86_64", "amd64")


def want_cuda():
    mode = os.environ.get("ARTDERIV_CUDA", "").strip().lower()
    possible = torch.version.cuda is not None and CUDA_HOME is not None
    if mode in ("1", "true", "yes", "on"):
        if not possible:
            sys.exit(
                "ARTDERIV_CUDA=1 but the CUDA kernels cannot be built: "
                f"torch {torch.__version__} is {'a CUDA build' if torch.version.cuda else 'a CPU-only build'}, "
                f"CUDA_HOME={CUDA_HOME!r}. Install a CUDA build of torch and the CUDA toolkit "
                "(nvcc), and set CUDA_HOME."
            )
        return True
    if mode in ("0", "false", "no", "off"):
        return False
    return possible


def sources(pattern_dir, suffix):
    d = os.path.join("csrc", pattern_dir) if pattern_dir else "csrc"
    return sorted(
        os.path.join(d, f) for f in os.listdir(os.path.join(ROOT, d)) if f.endswith(suffix)
    )


with_cuda = want_cuda()
# -ffp-contract=off: no fused multiply-add contraction, so the vector body and
# the tail (and every ISA build) round alike: results never depend on position.
cxx_flags = ["-O3", "-fvisibility=hidden", "-ffp-contract=off", "-Wno-unknown-pragmas"]
define_macros = []

srcs = sources("", ".cpp") + sources("autograd", ".cpp")
srcs += ["csrc/cpu/activation_cpu.cpp", "csrc/cpu/activation_kernels_default.cpp"]
isa_sources = {}
if IS_X86:
    for isa in ISA_FLAGS:  # avx2, avx512, avx512bf16
        isa_sources[isa] = f"csrc/cpu/activation_kernels_{isa}.cpp"
        define_macros.append((f"ARTDERIV_CPU_{isa.upper()}", None))

extra_compile_args = {"cxx": cxx_flags}
if with_cuda:
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        # No GPU to detect architectures from (cpp_extension would fail):
        # Ampere and Hopper SASS, plus PTX that newer GPUs compile at load time.
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
    srcs += sources("cuda", ".cu")
    define_macros.append(("ARTDERIV_WITH_CUDA", None))
    extra_compile_args["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    Extension = CUDAExtension
else:
    Extension = CppExtension


class BuildExt(BuildExtension):
    """Compiles each per-ISA kernel file with its own -m flags (setuptools has
    no per-file flags), in parallel, then builds the library as usual."""

    def build_extension(self, ext):
        def compile_isa(isa):
            return self.compiler.compile(
                [isa_sources[isa]],
                output_dir=os.path.join(self.build_temp, isa),
                macros=ext.define_macros,
                include_dirs=ext.include_dirs,
                extra_postargs={"cxx": ext.extra_compile_args["cxx"] + ISA_FLAGS[isa], "nvcc": []},
                depends=ext.depends,
            )

        with ThreadPoolExecutor(max_workers=max(1, len(isa_sources))) as pool:
            for objects in pool.map(compile_isa, isa_sources):
                ext.extra_objects.extend(objects)
        super().build_extension(ext)


print(f"artderiv: building {'CPU + CUDA' if with_cuda else 'CPU-only'} kernels "
      f"(torch {torch.__version__}, CPU ISA builds: {['default'] + list(isa_sources)})")

setup(
    name="artderiv",
    version="0.1.0",
    description="Artificial derivatives for PyTorch: normal forward, chosen backward, in C++/CUDA",
    packages=find_packages(include=["artderiv", "artderiv.*"]),
    package_data={"artderiv": ["py.typed", "*.pyi"]},  # type stubs (PEP 561)
    ext_modules=[
        Extension(
            "artderiv._C",
            srcs,
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            depends=sources("", ".h") + sources("formulas", ".h") + sources("cpu", ".h") + (sources("cuda", ".cuh") if with_cuda else []),
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
    python_requires=">=3.9",
    install_requires=["torch"],
    entry_points={"console_scripts": ["artderiv=artderiv.cli:main"]},
)
