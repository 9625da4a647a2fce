"""The CPU kernels' blocks stay within their arrays. They work on packs of
vectors (four; two in the DEFAULT build; csrc/cpu/lanes.h), so a block's
tail is a partial pack whose lanes past the tail must be neither read nor
written: the values tests (test_op_contract.py, every length) would not see
a write past an output.
tests/cpu_math/block_bounds_check.cpp runs every block function at every
length from 1 to 600 on arrays of exactly that size, under AddressSanitizer."""

import os
import subprocess

import pytest

from cpu_checks import build_cpu_check


@pytest.mark.parametrize("isa", ["default", "avx2", "avx512", "avx512bf16"])
def test_blocks_touch_only_their_values(isa, tmp_path):
    exe = build_cpu_check("block_bounds_check", isa, tmp_path, optimize="-O1",
                          extra=["-fsanitize=address", "-fno-omit-frame-pointer"])
    done = subprocess.run([exe], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert done.returncode == 0 and "checked 600 lengths" in done.stdout, done.stdout[-2000:] + done.stderr[-6000:]
