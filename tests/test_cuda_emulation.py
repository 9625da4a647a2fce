"""The CUDA code without a GPU: csrc/cuda/activation_kernels.cuh compiled as
host C++ (tests/cuda_emulation/emulated_device.cpp) runs each launch's blocks
and threads one after another on the CPU. Its results must equal the CPU
kernels' for every activation, derivative and dtype, and across the sizes,
grids and alignments where the kernels' indexing changes (16-byte vectors,
unrolling, tails, grid-stride loops, the scalar path for misaligned data).

Outputs are written into a buffer with sentinel margins, so a write outside
the output fails the call and an element never written shows as a wrong
value. What this cannot see, a GPU run (benchmarks/gpu_check.sh) does: the
CUDA runtime, device math libraries, memory errors under compute-sanitizer.
"""

import os
import subprocess
import sys

import pytest
import torch

from test_cuda import DERIVATIVES, DTYPES, blend_edge_cases, sample, tolerance

import artderiv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = torch.ops.artderiv
ACTIVATIONS = [a["name"] for a in artderiv.catalog()["activations"]]


# Set (by test_emulated_cuda_under_address_sanitizer) to build the emulator
# with AddressSanitizer, in a process that preloads its runtime.
ASAN = os.environ.get("ARTDERIV_EMULATION_ASAN") == "1"


@pytest.fixture(scope="module")
def emu():
    from torch.utils import cpp_extension

    build_dir = os.path.join(ROOT, "build", "cuda_emulation",
                             f"py{sys.version_info[0]}{sys.version_info[1]}" + ("-asan" if ASAN else ""))
    os.makedirs(build_dir, exist_ok=True)
    sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer"] if ASAN else []
    module = cpp_extension.load(
        name="artderiv_cuda_emulation" + ("_asan" if ASAN else ""),
        sources=[os.path.join(ROOT, "tests", "cuda_emulation", "emulated_device.cpp"),
                 os.path.join(ROOT, "csrc", "catalog.cpp")],
        extra_include_paths=[os.path.join(ROOT, "csrc")],
        extra_cflags=["-O1", "-ffp-contract=off", "-Wno-unknown-pragmas"] + sanitize,
        extra_ldflags=sanitize,
        build_directory=build_dir,
    )
    yield module
    module.configure(132, 0)


def assert_close(actual, expected, dtype):
    rtol, atol = tolerance(dtype)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def forward_both(emu, x, act, params=()):
    return emu.activation_forward(x, act, list(params)), OPS.activation_forward(x, act, list(params))


def backward_both(emu, grad, saved, act, deriv, dparams, blend=None, save="input"):
    args = (grad, saved, save, act, [], deriv, list(dparams), blend)
    return emu.activation_backward(*args), OPS.activation_backward(*args)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_emulated_cuda_matches_cpu_for_every_activation_and_derivative(emu, dtype, act):
    x = sample(dtype=dtype)
    grad = sample(dtype=dtype, seed=1)
    y, y_cpu = forward_both(emu, x, act)
    assert_close(y, y_cpu, dtype)
    for deriv, dparams in DERIVATIVES:
        g, g_cpu = backward_both(emu, grad, x, act, deriv, dparams)
        assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_emulated_cuda_save_output_and_blend(emu, dtype, act):
    x = sample(dtype=dtype)
    y = OPS.activation_forward(x, act, [])
    grad = sample(dtype=dtype, seed=1)
    for deriv, dparams in [("exact", []), ("exact_plus", [0.1]), ("floor", [0.05]), ("identity", [])]:
        for blend in (None, torch.tensor(0.3), torch.tensor(0.3, dtype=torch.float64)):
            g, g_cpu = backward_both(emu, grad, y, act, deriv, dparams, blend, save="output")
            assert_close(g, g_cpu, dtype)
    for blend in (torch.tensor(0.0), torch.tensor(0.25), torch.tensor(1.0)):
        g, g_cpu = backward_both(emu, grad, x, act, "atan", [], blend)
        assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_emulated_cuda_blend_edge_cases(emu, dtype):
    for x, grad, (act, aparams, deriv, dparams, blend), expected in blend_edge_cases(dtype):
        args = (grad, x, "input", act, aparams, deriv, dparams, blend)
        g, g_cpu = emu.activation_backward(*args), OPS.activation_backward(*args)
        assert_close(g_cpu, expected.to(dtype), dtype)
        assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_emulated_cuda_gates_as_the_cpu(emu, dtype):
    """Where the factor is 0, an inf, NaN or negative gradient gives what the CPU
    kernels give: +0 through the gate (relu; any surrogate), or the plain product
    (NaN, -0.0) for the exact derivative of sigmoid, tanh, elu."""
    inf = float("inf")
    x = torch.tensor([-1e4, -200.0, -4.0, 0.5, 4.0, 200.0, 1e4, inf, -inf] * 4, dtype=dtype)
    for value in (float("nan"), inf, -1.0):
        grad = torch.full_like(x, value)
        for act, deriv in (("sigmoid", "exact"), ("tanh", "exact"), ("elu", "exact"), ("relu", "exact"),
                           ("sigmoid", "rectangle")):
            for save, saved in (("input", x), ("output", OPS.activation_forward(x, act, []))):
                if save == "output" and (deriv != "exact" or act == "elu"):  # elu has no f' from y
                    continue
                # a float64 blend that is 0 in the compute type is no blend on either
                for blend in (None, torch.tensor(1e-50, dtype=torch.float64)):
                    if blend is not None and dtype == torch.float64:
                        continue
                    g, g_cpu = backward_both(emu, grad, saved, act, deriv, [], blend, save=save)
                    assert torch.equal(g.isnan(), g_cpu.isnan()), (act, deriv, save, value, blend, g, g_cpu)
                    assert torch.equal(g.nan_to_num().signbit(), g_cpu.nan_to_num().signbit()), (act, deriv, save,
                                                                                                  value, blend)
                    assert_close(g, g_cpu, dtype)


def launch_geometry(emu, dtype, sms):
    """(elements per vector, elements per block, the most blocks a launch uses:
    beyond that the grid-stride loop repeats)."""
    vec = emu.vector_bytes // torch.empty((), dtype=dtype).element_size()
    return vec, emu.threads_per_block * emu.unroll * vec, sms * (2048 // emu.threads_per_block) * 4


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sms", [1, 132])
@pytest.mark.parametrize("misaligned", ["none", "input", "output"])
def test_emulated_cuda_indexing(emu, dtype, sms, misaligned):
    """Sizes around every boundary of the kernels' loops, on a one-SM grid (many
    grid-stride passes) and on the H200's; aligned (16-byte vectors) and not."""
    emu.configure(sms, 1 if misaligned == "output" else 0)
    vec, block, max_blocks = launch_geometry(emu, dtype, sms)
    one_pass = max_blocks * block
    sizes = [1, vec - 1, vec, vec + 1, block - 1, block, block + vec + 1]
    if sms == 1:  # one grid's worth, and several grid-stride passes with a tail
        sizes += [one_pass - 1, one_pass + 3, 3 * one_pass + block + 5]
    for n in sizes:
        base = torch.linspace(-4, 4, n + 1, dtype=torch.float64)[torch.randperm(n + 1)].to(dtype)
        x = base[1:] if misaligned == "input" else base[:n]
        # leaky_relu is one-to-one: an element written from the wrong input shows
        y, y_cpu = forward_both(emu, x, "leaky_relu", [0.1])
        assert torch.equal(y, y_cpu), f"n={n}"
        launches, blocks = emu.launch_stats()
        assert blocks == min(-(-n // block), max_blocks)
        grad = torch.linspace(0.5, 2, n + 1, dtype=dtype)[1 if misaligned == "input" else 0:][:n]
        for deriv, dparams in [("sigmoid", [4.0]), ("exact", [])]:
            g, g_cpu = backward_both(emu, grad, x, "leaky_relu", deriv, dparams)
            assert_close(g, g_cpu, dtype)
        # a gradient broadcast from one value is read as a scalar (y.sum().backward())
        g, g_cpu = backward_both(emu, torch.tensor(0.5, dtype=dtype).expand(n), x, "leaky_relu", "sigmoid", [4.0])
        assert_close(g, g_cpu, dtype)
        assert emu.launch_stats()[0] == launches + 3


@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last", "expanded_grad", "strided_grad"])
def test_emulated_cuda_layouts(emu, layout):
    emu.configure(132, 0)
    base = sample((4, 6, 10, 12), dtype=torch.float32)
    x, grad = base, sample((4, 6, 10, 12), dtype=torch.float32, seed=1)
    if layout == "transposed":
        x = base.transpose(1, 3)
        grad = grad.transpose(1, 3).contiguous()
    elif layout == "sliced":
        x = base[:, ::2, :, 1:]
        grad = grad[:, ::2, :, 1:].contiguous()
    elif layout == "channels_last":
        x = base.contiguous(memory_format=torch.channels_last)
    elif layout == "expanded_grad":
        grad = grad[:, :1].expand_as(base)  # broadcast along one dimension only: copied
    elif layout == "strided_grad":
        grad = grad.transpose(0, 2).contiguous().transpose(0, 2)
    y, y_cpu = forward_both(emu, x, "gelu")
    assert y.stride() == y_cpu.stride()
    assert_close(y, y_cpu, torch.float32)
    g, g_cpu = backward_both(emu, grad, x, "gelu", "sigmoid", [2.0], torch.tensor(0.4))
    assert g.stride() == g_cpu.stride()
    assert_close(g, g_cpu, torch.float32)


def test_emulated_cuda_empty_tensor_launches_nothing(emu):
    launches, _ = emu.launch_stats()
    x = torch.empty(0, 3)
    assert emu.activation_forward(x, "relu", []).shape == (0, 3)
    assert emu.activation_backward(x, x, "input", "relu", [], "sigmoid", [], None).shape == (0, 3)
    assert emu.launch_stats()[0] == launches


def test_emulated_output_guard_sees_a_stray_write(emu):
    """The margin check itself works: a write one element past an output is reported."""
    emu.configure(132, 0)
    x = torch.randn(5)
    y, y_cpu = forward_both(emu, x, "relu")
    assert torch.equal(y, y_cpu)
    with pytest.raises(RuntimeError, match="wrote outside its output"):
        emu.self_test_stray_write()


def test_emulated_cuda_under_address_sanitizer():
    """Out-of-bounds *reads* leave the values unchanged, so the comparisons above
    cannot see them. Here the emulator is built with AddressSanitizer and the
    indexing, layout and blend tests run again in a process that preloads its
    runtime: torch's CPU tensors are then malloc'ed with poisoned redzones
    after them, and any read past an input (a 16-byte vector load past the end,
    a broadcast gradient read as a full one) aborts the run, as
    compute-sanitizer would on the GPU."""
    if ASAN:
        pytest.skip("this is the sanitized run itself")
    gcc = "gcc"
    libs = []
    for lib in ("libasan.so", "libstdc++.so"):  # libstdc++ too: ASan's __cxa_throw interceptor needs it
        path = subprocess.run([gcc, "-print-file-name=" + lib], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(path):
            pytest.skip(f"{lib} not found (gcc -print-file-name)")
        libs.append(path)
    env = dict(os.environ, ARTDERIV_EMULATION_ASAN="1", LD_PRELOAD=" ".join(libs),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "indexing or layouts or save_output or empty"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert "AddressSanitizer" not in out, out[-6000:]
    assert proc.returncode == 0, out[-4000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout[-1000:]
