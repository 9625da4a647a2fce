"""What nvcc makes of the CUDA kernels, checked without a GPU: ptxas's
resource report for a few instantiations of csrc/cuda/activation_kernels.cuh.

The backward hands pointers into its kernel argument (the formulas'
parameters, about 0.4 KiB) to out-of-line f' functions. Unless that argument
is __grid_constant__, every thread first copies it into local memory: a
432-byte stack frame per float backward kernel, 864 per double one. Runs
wherever nvcc is (CI builds the CUDA kernels); skipped elsewhere.
"""

import os
import re
import shutil
import subprocess

import pytest
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_nvcc():
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


# Kernels whose functor's address reaches an out-of-line function (blending
# calls exact_derivative for every shape), and one forward for comparison.
# Taking their addresses instantiates them as the library does.
SOURCE = r"""
#include "cuda/activation_kernels.cuh"
namespace artderiv {
namespace cuda {
void instantiate() {
  (void)&backward_kernel<float, BackwardOp<SigmoidRamp, float>>;
  (void)&backward_kernel<c10::BFloat16, BackwardOp<Atan, c10::BFloat16>>;
  (void)&backward_kernel<double, BackwardOp<Exact, double>>;
  (void)&unary_kernel<float, ForwardOp<Sigmoid, float>>;
}
}  // namespace cuda
}  // namespace artderiv
"""


@pytest.fixture(scope="module")
def ptxas_report(tmp_path_factory):
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("no nvcc: the CUDA kernels are not compiled on this machine")
    tmp = tmp_path_factory.mktemp("codegen")
    src = tmp / "instantiate.cu"
    src.write_text(SOURCE)
    includes = [f"-I{p}" for p in [os.path.join(ROOT, "csrc")] + cpp_extension.include_paths()]
    # The library build's nvcc flags come from cpp_extension too.
    cmd = [nvcc, "-c", str(src), "-o", str(tmp / "instantiate.o"), *includes, *cpp_extension.COMMON_NVCC_FLAGS,
           "-O3", "-std=c++20", "-gencode=arch=compute_90,code=sm_90", "-Xptxas", "-v"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    # entry function -> its stack frame in bytes
    report, entry = {}, None
    for line in done.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            entry = m.group(1)
            continue
        m = re.search(r"(\d+) bytes stack frame", line)
        if m and entry is not None and entry not in report:
            report[entry] = int(m.group(1))
    return report


def test_every_instantiated_kernel_is_reported(ptxas_report):
    names = " ".join(ptxas_report)
    assert len(ptxas_report) == 4, ptxas_report
    # Mangled names: each formula's name after its length.
    for part in ("11SigmoidRamp", "4Atan", "5Exact", "7Sigmoid"):
        assert part in names, (part, names)


def test_kernel_arguments_are_not_copied_to_local_memory(ptxas_report):
    # A few bytes of spills are the compiler's business; a copy of the
    # parameters is hundreds.
    assert max(ptxas_report.values()) < 64, ptxas_report
