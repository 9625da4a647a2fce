"""Builds the C++ check programs of tests/cpu_math/ against csrc/ and torch's
headers, with the flags of one CPU kernel build (setup.py's C++ flags, then
the ISA's from csrc/cpu/isa_flags.txt), as the kernel files are compiled."""

import os
import platform
import shutil
import subprocess

import pytest
import torch
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def isa_flags():
    flags = {"default": []}
    with open(os.path.join(ROOT, "csrc", "cpu", "isa_flags.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                isa, text = line.split(":", 1)
                flags[isa.strip()] = text.split()
    return flags


def isa_supported(isa):
    if isa == "default":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if isa == "avx512bf16":
        return torch.cpu._is_avx512_supported() and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return {"avx2": torch.cpu._is_avx2_supported, "avx512": torch.cpu._is_avx512_supported}[isa]()


def build_cpu_check(name, isa, out_dir, optimize="-O3", extra=()):
    """tests/cpu_math/<name>.cpp built for isa into out_dir; skips the test
    where this CPU cannot run the ISA's code or there is no compiler."""
    if not isa_supported(isa):
        pytest.skip(f"this CPU cannot run {isa} code")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    exe = os.path.join(str(out_dir), f"{name}_{isa}")
    capability = isa.upper()
    selector = "AVX512" if isa == "avx512bf16" else capability  # ATen's headers know AVX512, not its BF16 build
    libs = cpp_extension.library_paths()
    cmd = [cxx, os.path.join(ROOT, "tests", "cpu_math", f"{name}.cpp"), "-o", exe, optimize, "-ffp-contract=off",
           "-std=c++20", *isa_flags()[isa], *extra, f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{selector}",
           *[f"-I{p}" for p in [os.path.join(ROOT, "csrc")] + cpp_extension.include_paths()],
           *[f"-L{p}" for p in libs], *[f"-Wl,-rpath,{p}" for p in libs], "-ltorch_cpu", "-lc10"]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-4000:]
    return exe
