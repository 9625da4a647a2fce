"""The CPU kernels' float exp (csrc/cpu/vec_math.h) is Sleef's expf_u10
written inline, for speed. It must stay bit for bit what ATen computes:

* tests/cpu_math/vec_exp_check.cpp, built per ISA with the kernel files'
  flags, compares it with Vectorized<float>::exp (Sleef) on every 61st float
  bit pattern and on every float with |x| in [64, 128), where exp over- and
  underflows (about 87 million values per ISA; run the built program with
  stride 1 to compare all 2^32 floats, about a minute); likewise
  one_plus_exp, the logistic's denominator, with 1 + Sleef's exp; each
  also on four vectors at once (math::Lanes, the kernels' value type);
* through the ops, the float32 forwards that ATen computes with the same
  formula (sigmoid, silu, softplus, selu) equal torch's bit for bit.
"""

import os
import platform
import re
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F
from torch.utils import cpp_extension

from conftest import assert_bitwise_equal

import artderiv  # noqa: F401  (loads the ops)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK_SOURCE = os.path.join(ROOT, "tests", "cpu_math", "vec_exp_check.cpp")


def isa_flags():
    flags = {}
    with open(os.path.join(ROOT, "csrc", "cpu", "isa_flags.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                isa, text = line.split(":", 1)
                flags[isa.strip()] = text.split()
    return flags


def isa_supported(isa):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return {"avx2": torch.cpu._is_avx2_supported, "avx512": torch.cpu._is_avx512_supported}[isa]()


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_inline_vector_exp_equals_sleef_bit_for_bit(isa, tmp_path):
    if not isa_supported(isa):
        pytest.skip(f"this CPU cannot run {isa} code")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path / f"vec_exp_check_{isa}"
    capability = isa.upper()
    libs = cpp_extension.library_paths()
    # setup.py's C++ flags for the kernel files, then the ISA's
    cmd = [cxx, CHECK_SOURCE, "-o", str(exe), "-O3", "-ffp-contract=off", "-std=c++20", *isa_flags()[isa],
           f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}",
           *[f"-I{p}" for p in [os.path.join(ROOT, "csrc")] + cpp_extension.include_paths()],
           *[f"-L{p}" for p in libs], *[f"-Wl,-rpath,{p}" for p in libs], "-ltorch_cpu", "-lc10"]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-4000:]
    done = subprocess.run([str(exe), "61"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    found = re.search(r"compared (\d+) floats, (\d+) mismatches", done.stdout)
    assert found and int(found[1]) > 87_000_000 and found[2] == "0", done.stdout


def float_sweep():
    """Every 256th float32 bit pattern (all exponents, both signs, NaN and
    inf included), plus values where the logistic saturates."""
    bits = torch.arange(0, 1 << 24, dtype=torch.int32).mul_(256)
    edges = torch.tensor([0.0, -0.0, 88.72, 88.73, -87.33, -103.9, -104.1, 99.9, 100.1, 1e-40, -1e-40])
    return torch.cat([bits.view(torch.float32), edges])


@pytest.mark.parametrize(
    "name, torch_fn",
    [("sigmoid", torch.sigmoid), ("silu", F.silu), ("softplus", F.softplus), ("selu", F.selu)],
)
def test_exp_based_float32_forwards_equal_torch_bit_for_bit(name, torch_fn):
    x = float_sweep()
    assert_bitwise_equal(torch.ops.artderiv.activation_forward(x, name, []), torch_fn(x))
