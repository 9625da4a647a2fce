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

import re
import subprocess

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_bitwise_equal
from cpu_checks import build_cpu_check

import artderiv  # noqa: F401  (loads the ops)

@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_inline_vector_exp_equals_sleef_bit_for_bit(isa, tmp_path):
    exe = build_cpu_check("vec_exp_check", isa, tmp_path)
    done = subprocess.run([exe, "61"], capture_output=True, text=True, timeout=600)
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
