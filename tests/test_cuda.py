"""The CUDA kernels: same results as the CPU kernels (the same formulas) and
as torch's native ops, on every layout and dtype; opcheck; CUDA graphs.

Every test is parametrised by device: the CPU variant runs everywhere (it
checks the test logic and the CPU side of each comparison); the CUDA variant
runs where a GPU is present and is skipped with a reason otherwise. The
`memcheck` tests are the small subset benchmarks/gpu_check.sh runs under
compute-sanitizer.
"""

import pytest
import torch
import torch.nn.functional as F

import artderiv
from conftest import assert_ulp_close, gelu_tanh_terms

OPS = torch.ops.artderiv
HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device"))]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

NATIVE = {
    "relu": torch.relu, "relu6": F.relu6, "leaky_relu": F.leaky_relu, "elu": F.elu, "selu": F.selu,
    "celu": F.celu, "softplus": F.softplus, "sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid,
    "tanh": torch.tanh, "hardtanh": F.hardtanh, "silu": F.silu, "hardswish": F.hardswish, "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "mish": F.mish, "sign": torch.sign,
}
ACTIVATIONS = [a["name"] for a in artderiv.catalog()["activations"]]
DERIVATIVES = [
    ("exact", []), ("sigmoid", [2.0]), ("exact_plus", [0.1]), ("floor", [0.02]), ("atan", []),
    ("fast_sigmoid", []), ("rectangle", []), ("triangle", []), ("gaussian", []), ("identity", []),
    ("table", [-1.0, 0.0, 1.0, 0.0, 1.0, 0.5]), ("like:elu", [0.5]),
]


def tolerance(dtype):
    # CPU (Sleef) and CUDA (libdevice) transcendental functions differ by ulps.
    return {torch.float32: (2e-5, 2e-6), torch.float64: (1e-12, 1e-14),
            torch.float16: (4e-3, 1e-4), torch.bfloat16: (3e-2, 1e-3)}[dtype]


def sample(shape=(37, 53), dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    special = torch.tensor([0.0, -0.0, 3.0, -3.0, 6.0, 1.0], dtype=torch.float64)
    k = min(6, x.numel())
    x.view(-1)[:k] = special[:k]
    return x.to(dtype=dtype, device=device)


def run(x, act, deriv, dparams, blend=None, grad=None, save="input"):
    xr = x.detach().clone().requires_grad_()
    y = OPS.activation(xr, act, [], deriv, dparams, blend, save)
    g = grad if grad is not None else torch.ones_like(y)
    (gx,) = torch.autograd.grad(y, xr, g)
    return y, gx


def assert_close(a, b, dtype):
    rtol, atol = tolerance(dtype)
    torch.testing.assert_close(a.cpu(), b.cpu(), rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_device_matches_cpu_for_every_activation(device, dtype, act):
    x = sample(dtype=dtype)
    for deriv, dparams in DERIVATIVES:
        y_cpu, g_cpu = run(x, act, deriv, dparams)
        y, g = run(x.to(device), act, deriv, dparams)
        assert y.device.type == device and g.dtype == dtype
        assert_close(y, y_cpu, dtype)
        assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_save_output_matches_cpu(device, dtype, act):
    """save="output": the backward reads f' from the saved y, on every backend alike."""
    x = sample(dtype=dtype)
    for deriv, dparams in [("exact", []), ("exact_plus", [0.1]), ("floor", [0.05]), ("identity", [])]:
        for blend in (None, torch.tensor(0.3)):
            _, g_cpu = run(x, act, deriv, dparams, blend, save="output")
            # a blend on the device (read by the kernel) and on the CPU (passed by value)
            for b in ([None] if blend is None else [blend.to(device), blend]):
                _, g = run(x.to(device), act, deriv, dparams, b, save="output")
                assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("act", sorted(NATIVE))
def test_exact_matches_torch_native_on_device(device, dtype, act):
    x = sample(dtype=dtype, device=device)
    x.view(-1)[:6] = 0.5  # away from kinks: the native backward conventions are tested on CPU
    y, g = run(x, act, "exact", [])
    xr = x.detach().clone().requires_grad_()
    yr = NATIVE[act](xr)
    (gr,) = torch.autograd.grad(yr, xr, torch.ones_like(yr))
    if act in ("hardsigmoid", "hardswish") and device == "cuda" and dtype == torch.float64:
        # ATen's CUDA kernels multiply by opmath_t(1.0f / 6.0f), a float32 1/6 that is
        # 3e-8 off in float64 (seen on an H200, torch 2.11); its CPU kernels divide
        # by 6, as artderiv does on every device.
        torch.testing.assert_close(y.cpu(), yr.detach().cpu(), rtol=1e-7, atol=0)
        assert_close(y, NATIVE[act](x.cpu()), dtype)
    else:
        assert_close(y, yr.detach(), dtype)
    if act == "hardsigmoid":  # torch's float64 hardsigmoid backward uses a float32 1/6
        torch.testing.assert_close(g.cpu(), gr.cpu(), rtol=1e-7, atol=0)
    elif act == "gelu_tanh" and dtype in (torch.float32, torch.float64):
        # ATen's form cancels (1 + tanh(u)); its error is eps times its terms' size,
        # 1 + |x| u'(x) (artderiv's accurate form: test_catalog.py)
        assert_ulp_close(g.cpu(), gr.cpu(), 8, magnitude=gelu_tanh_terms(x.detach().cpu()))
    else:
        assert_close(g, gr, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", sorted(NATIVE))
def test_exact_passes_nonfinite_gradients_as_torch(device, dtype, act):
    """derivative="exact" treats an inf or NaN gradient as torch's own backward
    does where f' is 0: a plain product (sigmoid, tanh, elu, silu, ...) gives
    NaN there, a select (relu, hardtanh, hardsigmoid, sign) gives 0, and a
    gradient of -1 gives -0.0 where torch's does. (Not at hardswish's x = -1.5,
    the one point where torch multiplies by an f' of 0 inside a selected region.)"""
    inf = float("inf")
    x = torch.tensor([-1e4, -200.0, -4.0, 0.5, 4.0, 200.0, 1e4, inf, -inf], dtype=dtype)
    for value in (float("nan"), inf, -1.0):
        g = torch.full_like(x, value)
        xr = x.clone().requires_grad_()
        (expected,) = torch.autograd.grad(NATIVE[act](xr), xr, g)
        # save="auto", as the Python API: f' from the rounded output where torch reads it (tanh, sigmoid)
        _, got = run(x.to(device), act, "exact", [], grad=g.to(device), save="auto")
        got = got.cpu()
        assert torch.equal(got.isnan(), expected.isnan()), (value, got, expected)
        if act == "hardsigmoid" and dtype == torch.float64:  # torch's float32 1/6 (see above)
            torch.testing.assert_close(got, expected, rtol=1e-7, atol=0, equal_nan=True)
        else:
            assert_close(got, expected, dtype)
        zeros = (got == 0) & (expected == 0)
        assert torch.equal(got[zeros].signbit(), expected[zeros].signbit()), (value, got, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["transposed", "sliced", "channels_last", "expanded_grad", "offset"])
def test_device_layouts(device, layout):
    base = sample((4, 6, 10, 12), device=device)
    grad = None
    if layout == "transposed":
        x = base.transpose(1, 3)
    elif layout == "sliced":
        x = base[:, :, ::2, 1:]
    elif layout == "channels_last":
        x = base.contiguous(memory_format=torch.channels_last)
    elif layout == "offset":
        x = base.view(-1)[1:].view(-1)[: base.numel() - 3]  # misaligned: the scalar path
    else:
        x = base
        grad = torch.tensor(0.5, device=device).expand_as(base)
    for deriv, dparams in [("sigmoid", [1.0]), ("exact_plus", []), ("atan", [])]:
        y, g = run(x, "tanh", deriv, dparams, grad=grad)
        y_ref, g_ref = run(x.contiguous(), "tanh", deriv, dparams,
                           grad=None if grad is None else grad.contiguous())
        assert y.stride() == torch.empty_like(x).stride()
        assert torch.equal(y, y_ref) and torch.equal(g, g_ref)


@pytest.mark.parametrize("device", DEVICES)
def test_device_blend_tensor_and_empty(device):
    x = sample(device=device)
    blend = torch.tensor(0.25, device=device)
    _, g = run(x, "relu", "sigmoid", [2.0], blend=blend)
    expected = 0.75 * torch.sigmoid(2 * x) + 0.25 * (x > 0).float()
    assert_close(g, expected, torch.float32)
    _, g_cpu_blend = run(x, "relu", "sigmoid", [2.0], blend=torch.tensor(0.25))  # a CPU blend works too
    assert torch.equal(g, g_cpu_blend)
    for shape in [(0,), (3, 0)]:
        y, g = run(torch.empty(shape, device=device), "gelu", "atan", [])
        assert y.shape == shape and g.shape == shape


def blend_edge_cases(dtype):
    """(x, grad, call args after them, the expected gradient or None) of the
    blends whose f' is easy to get wrong: like:<the layer's own activation> with
    other parameters blends in the layer's f' (its own parameters, at x), not
    the shape's; a blend of exactly 0 is no blend, also where f' is NaN (silu'
    and gelu' at +-inf: inf * 0)."""
    x = sample(dtype=dtype)
    grad = sample(dtype=dtype, seed=1)
    slope = ((x > 0).double() + (x <= 0).double() * 0.3) * 0.5 + ((x > 0).double() + (x <= 0).double() * 0.01) * 0.5
    cases = [(x, grad, ("leaky_relu", [0.01], "like:leaky_relu", [0.3], torch.tensor(0.5)), grad.double() * slope)]
    x_inf = torch.tensor([float("inf"), float("-inf"), 1.0, -2.0], dtype=dtype)
    ones = torch.ones(4, dtype=dtype)
    for act in ("silu", "gelu"):
        no_blend = OPS.activation_backward(ones, x_inf, "input", act, [], "atan", [], None)
        assert not no_blend.isnan().any()
        cases.append((x_inf, ones, (act, [], "atan", [], torch.tensor(0.0)), no_blend))
    return cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_device_blend_edge_cases(device, dtype):
    for x, grad, (act, aparams, deriv, dparams, blend), expected in blend_edge_cases(dtype):
        # a blend on the device (read by the kernel) and on the CPU (passed by value)
        for b in (blend.to(device), blend):
            g = OPS.activation_backward(grad.to(device), x.to(device), "input", act, aparams, deriv, dparams, b)
            assert_close(g, expected.to(dtype), dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_device_opcheck(device):
    x = sample((5, 7), device=device).requires_grad_()
    torch.library.opcheck(OPS.activation.default, (x, "leaky_relu", [0.2], "atan", [3.0], None, "input"))
    torch.library.opcheck(OPS.activation_forward.default, (x.detach(), "gelu", []))
    g = sample((5, 7), device=device, seed=1)
    torch.library.opcheck(OPS.activation_backward.default,
                          (g, x.detach(), "input", "step", [0.5], "fast_sigmoid", [], None))


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_cuda_graph_capture_and_replay():
    x = sample(device="cuda").requires_grad_()
    blend = torch.tensor(0.0, device="cuda")
    g = torch.ones_like(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up outside the graph
        for _ in range(2):
            y = OPS.activation(x, "relu", [], "sigmoid", [1.0], blend, "input")
            (gx,) = torch.autograd.grad(y, x, g)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = OPS.activation(x, "relu", [], "sigmoid", [1.0], blend, "input")
        (gx,) = torch.autograd.grad(y, x, g)
    with torch.no_grad():
        x.copy_(sample(device="cuda", seed=5))
        blend.fill_(0.5)  # read on the device at replay: no recapture
    graph.replay()
    torch.cuda.synchronize()
    y_eager, g_eager = run(x.detach(), "relu", "sigmoid", [1.0], blend=torch.tensor(0.5, device="cuda"))
    assert torch.equal(y, y_eager) and torch.equal(gx, g_eager)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device_index():
    x = sample(device="cuda:1")
    y, g = run(x, "silu", "exact_plus", [])
    assert y.device == x.device == g.device
    y0, g0 = run(x.to("cuda:0"), "silu", "exact_plus", [])
    assert torch.equal(y.cpu(), y0.cpu()) and torch.equal(g.cpu(), g0.cpu())


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_cuda_large_tensor_loops_over_the_grid(dtype):
    """The library caps its grid and loops (grid-stride): a tensor of three
    grids and a tail, aligned (vector loop) and misaligned (scalar loop),
    against the CPU. The smaller tests fit in one or two blocks."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    one_grid = sms * (2048 // 256) * 4 * 256 * 2 * (16 // dtype.itemsize)  # blocks_for's cap, elements
    base = sample((3 * one_grid + 7,), dtype=dtype, device="cuda")
    for x in (base[:-1], base[1:]):
        x_cpu = x.cpu()
        for act, deriv, blend in (("relu", "sigmoid", 0.25), ("sigmoid", "exact", None)):
            y, g = run(x, act, deriv, [], blend=None if blend is None else torch.tensor(blend, device="cuda"))
            y_cpu, g_cpu = run(x_cpu, act, deriv, [], blend=None if blend is None else torch.tensor(blend))
            assert_close(y, y_cpu, dtype)
            assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_memcheck_broadcast_gradient_and_output(device, dtype):
    """compute-sanitizer's subset, other reads: a gradient broadcast from one
    value (read as grad[0]) and the backward from the saved output, on the
    exact derivative's product path."""
    for n in (1, 9, 1025):
        base = sample((n + 3,), dtype=dtype, device=device)
        for x in (base[:n], base[1 : n + 1]):
            grad = torch.tensor(0.5, dtype=dtype, device=device).expand(n)
            for save in ("input", "output"):
                y, g = run(x, "sigmoid", "exact", [], grad=grad, save=save)
                y_cpu, g_cpu = run(x.cpu(), "sigmoid", "exact", [], grad=grad.cpu(), save=save)
                assert_close(y, y_cpu, dtype)
                assert_close(g, g_cpu, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_memcheck_small(device, dtype):
    """Small sizes around the vector width and misaligned views: compute-sanitizer's subset."""
    for n in (1, 3, 7, 8, 9, 31, 1025):
        base = sample((n + 3,), dtype=dtype, device=device)
        for x in (base[:n], base[1 : n + 1]):
            y, g = run(x, "leaky_relu", "atan", [], blend=torch.tensor(0.3, device=device))
            y_cpu, g_cpu = run(x.cpu(), "leaky_relu", "atan", [], blend=torch.tensor(0.3))
            assert_close(y, y_cpu, dtype)
            assert_close(g, g_cpu, dtype)
