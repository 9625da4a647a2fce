"""Shared helpers of the artderiv test suite.

Everything that describes the library's formulas *independently* of the C++
code lives here: the torch reference of every activation (forward and exact
derivative) and of every derivative shape, computed in float64, plus the
comparison helpers (bitwise with NaN / -0.0 handling, and ulp-scaled).
"""

import math
import os
import sys

import pytest
import torch
import torch.nn.functional as F

# The extension is built in place (artderiv/_C*.so); make the checkout importable
# whether or not it is pip-installed.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import artderiv  # noqa: E402,F401  (loads the op library: torch.ops.artderiv)

OPS = torch.ops.artderiv

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
HALF_DTYPES = (torch.float16, torch.bfloat16)


def dtype_id(dtype):
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------------
# Activations: name, activation_params, torch forward, float64 exact derivative
# ---------------------------------------------------------------------------


class ActCase:
    """One activation configuration (an activation plus its parameters)."""

    def __init__(self, name, params, torch_fn, exact64, default_derivative):
        self.name = name
        self.params = list(params)
        self.torch_fn = torch_fn  # the native PyTorch function (forward + autograd)
        self.exact64 = exact64  # f'(x) on a float64 tensor, PyTorch's kink conventions
        self.default_derivative = default_derivative

    @property
    def id(self):
        return self.name + ("" if not self.params else "(" + ",".join(f"{p:g}" for p in self.params) + ")")

    def __repr__(self):
        return self.id


def _relu_exact(x):
    # threshold_backward: x <= 0 -> 0, else (NaN included) pass the gradient.
    return torch.where(x <= 0, torch.zeros_like(x), torch.ones_like(x))


def _leaky_exact(slope):
    def exact(x):
        # leaky_relu_backward: x > 0 -> 1, else (NaN included) negative_slope.
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))

    return exact


def _sigmoid_exact(x):
    s = torch.sigmoid(x)
    return (1 - s) * s


def _tanh_exact(x):
    t = torch.tanh(x)
    return 1 - t * t


ACTIVATIONS = [
    ActCase("relu", [], torch.relu, _relu_exact, "sigmoid"),
    ActCase("leaky_relu", [], F.leaky_relu, _leaky_exact(0.01), "sigmoid"),
    ActCase("leaky_relu", [0.2], lambda x: F.leaky_relu(x, 0.2), _leaky_exact(0.2), "sigmoid"),
    ActCase("sigmoid", [], torch.sigmoid, _sigmoid_exact, "exact_plus"),
    ActCase("tanh", [], torch.tanh, _tanh_exact, "exact_plus"),
]
ACT_IDS = [a.id for a in ACTIVATIONS]

# ---------------------------------------------------------------------------
# Derivative shapes: name, derivative_params, float64 reference
# ---------------------------------------------------------------------------

DERIVATIVE_DEFAULTS = {"exact": {}, "sigmoid": {"beta": 1.0}, "exact_plus": {"c": 0.05}, "atan": {"alpha": 2.0}}


def derivative64(name, params, x, exact):
    """d(x) in float64 from the documented formula (params: list, [] = defaults)."""
    defaults = list(DERIVATIVE_DEFAULTS[name].values())
    p = params[0] if params else (defaults[0] if defaults else None)
    if name == "exact":
        return exact
    if name == "sigmoid":
        return 1.0 / (1.0 + torch.exp(-p * x))
    if name == "exact_plus":
        return exact + p
    if name == "atan":
        return (p / 2.0) / (1.0 + (math.pi * p * x / 2.0) ** 2)
    raise AssertionError(name)


class DerivCase:
    def __init__(self, name, params):
        self.name = name
        self.params = list(params)

    @property
    def id(self):
        return self.name + ("" if not self.params else "(" + ",".join(f"{p:g}" for p in self.params) + ")")

    def __repr__(self):
        return self.id


DERIVATIVES = [
    DerivCase("exact", []),
    DerivCase("sigmoid", []),
    DerivCase("sigmoid", [4.0]),
    DerivCase("exact_plus", []),
    DerivCase("exact_plus", [0.3]),
    DerivCase("atan", []),
    DerivCase("atan", [3.0]),
]
DERIV_IDS = [d.id for d in DERIVATIVES]


def expected_grad64(act, deriv_name, deriv_params, x, g, blend=None):
    """g * ((1 - b) d(x) + b f'(x)) in float64, from the inputs as given (any dtype)."""
    x64 = x.double()
    exact = act.exact64(x64)
    d = derivative64(deriv_name, deriv_params, x64, exact)
    if blend is not None:
        b = float(blend)
        d = (1.0 - b) * d + b * exact
    return g.double() * d


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

SPECIALS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, -1.0, 1e-30, -1e-30, 20.0, -20.0, 60.0, -60.0, 1e4, -1e4]


def make_x(dtype, n=2048, scale=4.0, seed=0, specials=True):
    """Random values (normal * scale) followed by the special values, in `dtype`."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * scale
    if specials:
        x = torch.cat([torch.tensor(SPECIALS, dtype=torch.float64), x])
    return x.to(dtype)


def make_grad(like, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=torch.float64).to(like.dtype)


# ---------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------


def assert_bitwise_equal(actual, expected, zero_sign=True):
    """Equal values, NaN at the same places, and (zero_sign) the same sign on every zero.

    NaN payloads/signs are not compared: converting NaN between float and a
    half type may canonicalise it. Gradients pass zero_sign=False: artderiv
    multiplies grad * 0 (-0.0 for a negative grad) where torch selects +0.0.
    """
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a_nan, e_nan = actual.isnan(), expected.isnan()
    assert torch.equal(a_nan, e_nan), f"NaN positions differ at {torch.nonzero(a_nan != e_nan).flatten().tolist()[:10]}"
    keep = ~e_nan
    a, e = actual[keep], expected[keep]
    bad = a != e
    assert not bad.any(), f"values differ: got {a[bad][:8].tolist()}, expected {e[bad][:8].tolist()}"
    if not zero_sign:
        return
    sign = torch.signbit(a) != torch.signbit(e)
    assert not sign.any(), f"signs differ: got {a[sign][:8].tolist()}, expected {e[sign][:8].tolist()}"


def ulp(values, dtype):
    """The spacing of `dtype` at each value (subnormal spacing below the normal range)."""
    v = values.double().abs()
    fi = torch.finfo(dtype)
    _, exponent = torch.frexp(torch.where(torch.isfinite(v), v, torch.zeros_like(v)))
    spacing = torch.ldexp(torch.full_like(v, fi.eps), exponent - 1)
    return torch.clamp(spacing, min=fi.smallest_normal * fi.eps)


def assert_ulp_close(actual, expected, ulps, *, magnitude=None, magnitude_dtype=None, msg=""):
    """|actual - expected| <= ulps * (ulp_dtype(expected) + eps(magnitude_dtype) * |magnitude|).

    `expected` is in the dtype of `actual` (a float64 reference is cast first).
    `magnitude` (e.g. the incoming gradient) accounts for the absolute rounding
    error of O(1) intermediates such as 1 - tanh(x)^2, in units of the eps of
    the dtype those intermediates are computed in (`magnitude_dtype`, default
    the dtype of `actual`). NaN must be at the same places, infinities equal.
    """
    dtype = actual.dtype
    expected = expected.to(dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a_nan, e_nan = actual.isnan(), expected.isnan()
    assert torch.equal(a_nan, e_nan), (
        f"{msg}: NaN positions differ at {torch.nonzero(a_nan != e_nan).flatten().tolist()[:10]}"
    )
    a, e = actual.double(), expected.double()
    e_inf = torch.isinf(e)
    assert torch.equal(a[e_inf], e[e_inf]), f"{msg}: infinities differ"
    keep = ~(e_nan | e_inf)
    a, e = a[keep], e[keep]
    tol = ulp(e, dtype)
    if magnitude is not None:
        mag_eps = torch.finfo(magnitude_dtype or dtype).eps
        tol = tol + mag_eps * magnitude.double()[keep].abs()
    err = (a - e).abs()
    bad = ~(err <= ulps * tol)
    if bad.any():
        worst = int(torch.argmax(torch.where(bad, err / tol, torch.zeros_like(err))))
        raise AssertionError(
            f"{msg}: {int(bad.sum())} of {e.numel()} values off by more than {ulps} ulp; worst: "
            f"got {a[worst].item()!r}, expected {e[worst].item()!r} ({(err[worst] / tol[worst]).item():.1f} ulp)"
        )


# gelu(approximate="tanh") = 0.5 x (1 + tanh(K (x + C x^3))).
GELU_TANH_K = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715


def gelu_tanh_terms(x):
    """Size of the terms ATen's gelu_tanh backward sums, 1 + |x| u'(x): its own
    rounding error (1 + tanh(u) cancels) is eps times this."""
    x = x.double()
    return 1 + x.abs() * GELU_TANH_K * (1 + 3 * GELU_TANH_C * x * x)


def compute_dtype(dtype):
    """The dtype the kernels compute in: float for the half types."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def grad_of(fn, x, g):
    """d(sum(fn(x) * g))/dx via autograd, for a fresh leaf copy of x."""
    leaf = x.detach().clone().requires_grad_(True)
    y = fn(leaf)
    y.backward(g)
    return leaf.grad


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
