"""The whole catalog: every activation, every derivative shape, like:<g>, table,
blend, validation, deployment, discoverability and modules.

Every expected value comes from outside the C++ code: PyTorch's own functions
and autograd, or the formulas as documented (csrc/formulas/*.h, docs/ops.md,
the snnTorch / SpikingJelly sources they cite), written here with torch ops in
float64. Nothing below reads a formula, a parameter or a default back from the
library in order to build an expectation.
"""

import inspect
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import artderiv
import artderiv.nn as ann
from artderiv import derivatives as D
from conftest import (
    DTYPES,
    GELU_TANH_C,
    GELU_TANH_K,
    HALF_DTYPES,
    assert_bitwise_equal,
    assert_ulp_close,
    compute_dtype,
    dtype_id,
    gelu_tanh_terms,
    grad_of,
)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = torch.ops.artderiv
NAN, INF = math.nan, math.inf
f64 = torch.float64

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:FutureWarning",
    "ignore:`torch.jit.save` is deprecated:FutureWarning",
    "ignore:`torch.jit.load` is deprecated:FutureWarning",
    "ignore::DeprecationWarning",
)

# ---------------------------------------------------------------------------
# float64 references of every activation: forward f(x) and exact f'(x), with
# PyTorch's conventions at the kinks (relu'(0) = 0, elu'(0) = alpha, ...).
# ---------------------------------------------------------------------------

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sig(x):
    return 1.0 / (1.0 + torch.exp(-x))


def _where(cond, a, b):
    return torch.where(cond, torch.as_tensor(a, dtype=f64), torch.as_tensor(b, dtype=f64))


def _fwd(name, x, p):
    if name == "relu":
        return _where(x < 0, 0.0, x)
    if name == "relu6":
        return _where(x < 0, 0.0, _where(x > 6, 6.0, x))
    if name == "leaky_relu":
        return _where(x > 0, x, x * p[0])
    if name == "elu":
        return _where(x <= 0, p[0] * torch.expm1(x), x)
    if name == "selu":
        return SELU_SCALE * _where(x <= 0, SELU_ALPHA * torch.expm1(x), x)
    if name == "celu":
        return _where(x <= 0, p[0] * torch.expm1(x / p[0]), x)
    if name == "softplus":
        z = p[0] * x
        return _where(z > p[1], x, torch.log1p(torch.exp(z)) / p[0])
    if name == "sigmoid":
        return sig(x)
    if name == "hardsigmoid":
        return torch.clamp(x + 3, 0, 6) / 6
    if name == "tanh":
        return torch.tanh(x)
    if name == "hardtanh":
        return _where(x < p[0], p[0], _where(x > p[1], p[1], x))
    if name == "silu":
        return x * sig(x)
    if name == "hardswish":
        return x * torch.clamp(x + 3, 0, 6) / 6
    if name == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + torch.tanh(GELU_TANH_K * (x + GELU_TANH_C * x**3)))
    if name == "mish":
        return x * torch.tanh(torch.log1p(torch.exp(x)))
    if name == "step":  # Heaviside: 1 where x > threshold, else 0 (NaN -> 0)
        return _where(x > p[0], 1.0, 0.0)
    if name == "sign":  # NaN -> 0, as torch.sign
        return _where(x > 0, 1.0, _where(x < 0, -1.0, 0.0))
    if name == "b_silu":  # SUGAR: (x + alpha) * sigma(x) - alpha / 2
        return (x + p[0]) * sig(x) - p[0] / 2
    if name == "nelu":  # SUGAR: x for x > 0, -alpha / (1 + x^2) otherwise
        return _where(x > 0, x, -p[0] / (1 + x * x))
    raise AssertionError(name)


def _der(name, x, p):
    if name == "relu":  # threshold_backward: 0 at x <= 0, NaN passes
        return _where(x <= 0, 0.0, 1.0)
    if name == "relu6":
        return _where((x > 0) & (x < 6), 1.0, 0.0)
    if name == "leaky_relu":
        return _where(x > 0, 1.0, p[0])
    if name == "elu":
        return _where(x <= 0, p[0] * torch.exp(x), 1.0)
    if name == "selu":
        return _where(x <= 0, SELU_SCALE * SELU_ALPHA * torch.exp(x), SELU_SCALE)
    if name == "celu":
        return _where(x <= 0, torch.exp(x / p[0]), 1.0)
    if name == "softplus":
        z = p[0] * x
        return _where(z > p[1], 1.0, sig(z))
    if name == "sigmoid":
        s = sig(x)
        return s * (1 - s)
    if name == "hardsigmoid":
        return _where((x > -3) & (x < 3), 1.0 / 6.0, 0.0)
    if name == "tanh":
        return 1 - torch.tanh(x) ** 2
    if name == "hardtanh":
        return _where((x > p[0]) & (x < p[1]), 1.0, 0.0)
    if name == "silu":
        s = sig(x)
        return s * (1 + x * (1 - s))
    if name == "hardswish":
        return _where(x <= -3, 0.0, _where(x < 3, x / 3 + 0.5, 1.0))
    if name == "gelu":
        return 0.5 * (1 + torch.erf(x / math.sqrt(2.0))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        t = torch.tanh(GELU_TANH_K * (x + GELU_TANH_C * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_TANH_K * (1 + 3 * GELU_TANH_C * x * x)
    if name == "mish":
        t = torch.tanh(torch.log1p(torch.exp(x)))
        return t + x * sig(x) * (1 - t * t)
    if name in ("step", "sign"):
        return torch.zeros_like(x)
    if name == "b_silu":
        s = sig(x)
        return s + (x + p[0]) * s * (1 - s)
    if name == "nelu":
        u = 1 + x * x
        return _where(x > 0, 1.0, 2 * p[0] * x / (u * u))
    raise AssertionError(name)


# Documented defaults (torch's for the torch activations, the paper's otherwise).
ACT_DEFAULTS = {
    "relu": [], "relu6": [], "leaky_relu": [0.01], "elu": [1.0], "selu": [], "celu": [1.0],
    "softplus": [1.0, 20.0], "sigmoid": [], "hardsigmoid": [], "tanh": [], "hardtanh": [-1.0, 1.0],
    "silu": [], "hardswish": [], "gelu": [], "gelu_tanh": [], "mish": [], "step": [0.0], "sign": [],
    "b_silu": [1.67], "nelu": [0.05],
}
ACT_PARAM_NAMES = {
    "leaky_relu": ["negative_slope"], "elu": ["alpha"], "celu": ["alpha"], "softplus": ["beta", "threshold"],
    "hardtanh": ["min_val", "max_val"], "step": ["threshold"], "b_silu": ["alpha"], "nelu": ["alpha"],
}
ALL_ACTIVATIONS = list(ACT_DEFAULTS)


class Act:
    """One activation configuration; params=None means "pass nothing" (defaults)."""

    def __init__(self, name, params=None):
        self.name = name
        self.given = params
        self.p = list(params) if params is not None else ACT_DEFAULTS[name]

    @property
    def id(self):
        return self.name + ("" if self.given is None else "(" + ",".join(f"{v:g}" for v in self.given) + ")")

    @property
    def center(self):
        return self.p[0] if self.name == "step" else 0.0

    def fwd64(self, x):
        return _fwd(self.name, x.double(), self.p)

    def der64(self, x):
        return _der(self.name, x.double(), self.p)

    def call(self, x, derivative=None, blend=None):
        """The public functional API: artderiv.<name>(x, *params, derivative, blend=)."""
        if self.name in ("gelu", "gelu_tanh"):
            approximate = "none" if self.name == "gelu" else "tanh"
            return artderiv.gelu(x, approximate=approximate, derivative=derivative, blend=blend)
        fn = getattr(artderiv, self.name)
        return fn(x, *(self.given or []), derivative=derivative, blend=blend)

    def op(self, x, derivative="default", derivative_params=(), blend=None, save="auto"):
        """The raw op, with the save mode the public API passes unless told otherwise."""
        return OPS.activation(x, self.name, list(self.given or []), derivative, list(derivative_params), blend, save)

    def torch_fn(self):
        """PyTorch's own function (forward and autograd), or None."""
        p = self.p
        return {
            "relu": torch.relu,
            "relu6": F.relu6,
            "leaky_relu": lambda x: F.leaky_relu(x, p[0]),
            "elu": lambda x: F.elu(x, p[0]),
            "selu": F.selu,
            "celu": lambda x: F.celu(x, p[0]),
            "softplus": lambda x: F.softplus(x, p[0], p[1]),
            "sigmoid": torch.sigmoid,
            "hardsigmoid": F.hardsigmoid,
            "tanh": torch.tanh,
            "hardtanh": lambda x: F.hardtanh(x, p[0], p[1]),
            "silu": F.silu,
            "hardswish": F.hardswish,
            "gelu": F.gelu,
            "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
            "mish": F.mish,
            "sign": torch.sign,
        }.get(self.name)

    def __repr__(self):
        return self.id


# Defaults and non-default parameters. celu's alpha is a power of two: torch's
# celu backward uses 1/float(alpha) even in float64, which only agrees with the
# true 1/alpha when alpha is a power of two.
ACT_CASES = [Act(n) for n in ALL_ACTIVATIONS] + [
    Act("leaky_relu", [0.2]),
    Act("elu", [0.5]),
    Act("celu", [2.0]),
    Act("softplus", [2.0, 5.0]),
    Act("hardtanh", [-0.5, 2.0]),
    Act("step", [0.5]),
    Act("step", [-1.0]),
    Act("b_silu", [1.0]),
    Act("nelu", [0.5]),
]
ACT_CASE_IDS = [a.id for a in ACT_CASES]
TORCH_ACT_CASES = [a for a in ACT_CASES if a.torch_fn() is not None]
OWN_ACT_CASES = [a for a in ACT_CASES if a.torch_fn() is None]
assert {a.name for a in OWN_ACT_CASES} == {"step", "b_silu", "nelu"}

PIECEWISE_LINEAR = {"relu", "relu6", "leaky_relu", "hardtanh", "sign", "step"}

# ---------------------------------------------------------------------------
# float64 references of every derivative shape: d(u, e), u = x - center,
# e = f'(x) of the activation (or of g for like:<g>).
# ---------------------------------------------------------------------------

# Defaults as documented, following the library each shape comes from:
# SpikingJelly Sigmoid(alpha=4), ATan(alpha=2), Erf(alpha=2),
# PiecewiseQuadratic(alpha=1), SoftSign(alpha=2), PiecewiseExp(alpha=1),
# PiecewiseLeakyReLU(w=1, c=0.01); snnTorch atan(alpha=2), fast_sigmoid(slope=25).
SHAPE_DEFAULTS = {
    "exact": {}, "sigmoid": {"beta": 1.0}, "exact_plus": {"c": 0.05}, "floor": {"eps": 0.01},
    "sigmoid_prime": {"alpha": 4.0}, "atan": {"alpha": 2.0}, "fast_sigmoid": {"slope": 25.0},
    "erf": {"alpha": 2.0}, "triangle": {"alpha": 1.0}, "rectangle": {"alpha": 1.0},
    "softsign": {"alpha": 2.0}, "exponential": {"alpha": 1.0}, "piecewise_leaky": {"w": 1.0, "c": 0.01},
    "gaussian": {"sigma": 0.5}, "identity": {},
}
ALL_SHAPES = list(SHAPE_DEFAULTS) + ["table"]


def table64(knots, values, x):
    """Linear interpolation of (knots, values), constant outside, NaN -> NaN."""
    x = x.double()
    y = torch.full_like(x, values[0])
    y = torch.where(x >= knots[-1], torch.full_like(x, values[-1]), y)
    for i in range(len(knots) - 1):
        k0, k1, v0, v1 = knots[i], knots[i + 1], values[i], values[i + 1]
        inside = (x >= k0) & (x < k1)
        y = torch.where(inside, v0 + (x - k0) * ((v1 - v0) / (k1 - k0)), y)
    return torch.where(torch.isnan(x), torch.full_like(x, NAN), y)


def shape64(name, kw, u, e):
    """d(u, e) from the documented formula; kw: parameters (defaults filled in)."""
    a = kw.get("alpha")
    if name == "exact":
        return e
    if name == "sigmoid":
        return sig(kw["beta"] * u)
    if name == "exact_plus":
        return e + kw["c"]
    if name == "floor":
        return torch.maximum(e, torch.full_like(e, kw["eps"]))
    if name == "sigmoid_prime":
        s = sig(a * u)
        return a * s * (1 - s)
    if name == "atan":
        return (a / 2) / (1 + (math.pi * a * u / 2) ** 2)
    if name == "fast_sigmoid":
        return 1 / (1 + kw["slope"] * u.abs()) ** 2
    if name == "erf":
        return a / math.sqrt(math.pi) * torch.exp(-((a * u) ** 2))
    if name == "triangle":
        return a * torch.clamp(1 - a * u.abs(), min=0)
    if name == "rectangle":
        return _where(u.abs() < 1 / (2 * a), a, 0.0)
    if name == "softsign":
        return a / (2 * (1 + a * u.abs()) ** 2)
    if name == "exponential":
        return (a / 2) * torch.exp(-a * u.abs())
    if name == "piecewise_leaky":
        return _where(u.abs() < kw["w"], 1 / (2 * kw["w"]), kw["c"])
    if name == "gaussian":
        s = kw["sigma"]
        return torch.exp(-(u * u) / (2 * s * s)) / (s * math.sqrt(2 * math.pi))
    if name == "identity":
        return torch.ones_like(u)
    if name == "table":
        return table64(kw["knots"], kw["values"], u)
    raise AssertionError(name)


class Deriv:
    """A derivative choice: a shape with parameters (None: pass the bare name),
    a table, or like:<g> (with g's parameters)."""

    def __init__(self, name, **kw):
        self.name = name
        self.kw = kw

    @property
    def like(self):
        return self.name.startswith("like:")

    @property
    def id(self):
        if self.name == "table":
            return f"table{len(self.kw['knots'])}"
        inner = ",".join(f"{k}={v:g}" for k, v in self.kw.items())
        return self.name + (f"({inner})" if inner else "")

    def obj(self):
        """What the Python API takes: the bare name for defaults, else a Derivative."""
        if self.name == "table":
            return D.table(self.kw["knots"], self.kw["values"])
        if self.like:
            return D.like(self.name[5:], **self.kw)
        if not self.kw:
            return self.name
        return getattr(D, self.name)(**self.kw)

    def op_args(self):
        """The raw op's (name, params), written out here (not via Derivative.args())."""
        if self.name == "table":
            return "table", list(self.kw["knots"]) + list(self.kw["values"])
        if self.like:
            g = self.name[5:]
            names = ACT_PARAM_NAMES.get(g, [])
            return self.name, [self.kw[n] for n in names if n in self.kw]
        order = list(SHAPE_DEFAULTS[self.name])
        return self.name, [self.kw[n] for n in order if n in self.kw]

    def factor64(self, act, x):
        """d(x - center, f'(x)) for activation case `act`, float64."""
        x = x.double()
        if self.like:
            g = self.name[5:]
            p = list(ACT_DEFAULTS[g])
            for i, n in enumerate(ACT_PARAM_NAMES.get(g, [])):
                if n in self.kw:
                    p[i] = self.kw[n]
            # like:<g> reads g's f' at x - center: a surrogate, centred like every shape.
            return _der(g, x - act.center, p)
        kw = dict(SHAPE_DEFAULTS.get(self.name, {}))
        kw.update(self.kw)
        e = act.der64(x)
        return shape64(self.name, kw, x - act.center, e)

    def __repr__(self):
        return self.id


TABLE_KNOTS = [-2.0, -0.5, 0.0, 0.5, 2.0]
TABLE_VALUES = [0.0, 0.25, 1.0, 0.25, 0.0]
TABLE16_KNOTS = [-3.0 + 0.375 * i for i in range(16)]
TABLE16_VALUES = [round(math.cos(k) ** 2 * 0.9 + 0.05, 6) for k in TABLE16_KNOTS]

DERIV_CASES = [Deriv(n) for n in SHAPE_DEFAULTS] + [
    Deriv("sigmoid", beta=4.0),
    Deriv("exact_plus", c=0.3),
    Deriv("floor", eps=0.25),
    Deriv("sigmoid_prime", alpha=2.0),
    Deriv("atan", alpha=4.0),
    Deriv("fast_sigmoid", slope=5.0),
    Deriv("erf", alpha=0.5),
    Deriv("triangle", alpha=2.0),
    Deriv("rectangle", alpha=4.0),
    Deriv("softsign", alpha=0.5),
    Deriv("exponential", alpha=3.0),
    Deriv("piecewise_leaky", w=0.5, c=0.1),
    Deriv("piecewise_leaky", w=2.0, c=0.0),
    Deriv("gaussian", sigma=2.0),
    Deriv("table", knots=TABLE_KNOTS, values=TABLE_VALUES),
    Deriv("table", knots=[-1.0, 1.0], values=[0.5, 2.0]),
    Deriv("table", knots=TABLE16_KNOTS, values=TABLE16_VALUES),
    Deriv("like:elu"),
    Deriv("like:elu", alpha=0.5),
    Deriv("like:silu"),
    Deriv("like:gelu"),
    Deriv("like:softplus", beta=2.0, threshold=3.0),
    Deriv("like:hardtanh", min_val=-2.0, max_val=0.5),
    Deriv("like:b_silu"),
    Deriv("like:nelu", alpha=0.2),
]
DERIV_CASE_IDS = [d.id for d in DERIV_CASES]

# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

SPECIALS = [NAN, INF, -INF, -0.0, 0.0, 1e-30, -1e-30, 1e4, -1e4, 100.0, -100.0, 60.0, -60.0, 20.0, -20.0]
KINKS = [1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 0.5, -0.5, 2.0, -2.0, 2.5, -2.5, 5.0, 0.25, -0.25, 0.125, -0.125,
         0.375, 10.0, 10.5, -4.0]


def act_inputs(act, dtype, n=1001, seed=0):
    """Specials, kinks (the activation's own too) and random values, in `dtype`."""
    gen = torch.Generator().manual_seed(seed)
    own = [float(v) for v in act.p] + [act.center]
    head = torch.tensor(SPECIALS + KINKS + own, dtype=f64)
    return torch.cat([head, torch.randn(n, generator=gen, dtype=f64) * 4]).to(dtype)


def shape_inputs(dtype, n=777, seed=1):
    gen = torch.Generator().manual_seed(seed)
    head = torch.tensor(SPECIALS + KINKS + TABLE_KNOTS + TABLE16_KNOTS + [1.5, -1.5, 0.75], dtype=f64)
    return torch.cat([head, torch.randn(n, generator=gen, dtype=f64) * 2]).to(dtype)


def rand_grad(like, seed=7):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=f64).to(like.dtype)


# ---------------------------------------------------------------------------
# 0. The references themselves agree with PyTorch where PyTorch has the function
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", TORCH_ACT_CASES, ids=[a.id for a in TORCH_ACT_CASES])
def test_reference_matches_torch(act):
    """Guards the references below: float64 forward and f' equal torch's (finite x)."""
    x = act_inputs(act, f64)
    x = x[torch.isfinite(x)]
    torch.testing.assert_close(act.fwd64(x), act.torch_fn()(x), rtol=1e-13, atol=1e-15)
    g = torch.ones_like(x)
    expected = grad_of(act.torch_fn(), x, g)
    # torch's hardsigmoid backward uses a float32 1/6 even in float64
    tol = 1e-7 if act.name == "hardsigmoid" else 1e-12
    torch.testing.assert_close(act.der64(x), expected, rtol=tol, atol=1e-15)


def test_reference_of_own_activations_is_its_autograd():
    x = torch.linspace(-5, 5, 401, dtype=f64)
    x = x[x != 0]
    for act in OWN_ACT_CASES:
        if act.name == "step":
            continue  # piecewise constant: f' = 0, no autograd graph
        auto = grad_of(act.fwd64, x, torch.ones_like(x))
        torch.testing.assert_close(act.der64(x), auto, rtol=1e-12, atol=1e-15, msg=act.id)


# ---------------------------------------------------------------------------
# 1. Forward: PyTorch's function, every dtype, default and other parameters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACT_CASES, ids=ACT_CASE_IDS)
def test_forward(act, dtype):
    x = act_inputs(act, dtype)
    y = act.call(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert_bitwise_equal(act.op(x), y)
    assert_bitwise_equal(OPS.activation_forward(x, act.name, list(act.given or [])), y)
    fn = act.torch_fn()
    if fn is not None:
        expected = fn(x)
        if act.name == "gelu" and dtype != f64:
            # PyTorch's vectorised float gelu returns NaN at +inf (its float64
            # and scalar paths return inf); compare the infinities to float64.
            inf = torch.isinf(x)
            expected[inf] = F.gelu(x[inf].double()).to(dtype)
        if act.name in PIECEWISE_LINEAR:
            assert_bitwise_equal(y, expected)
        else:
            torch.testing.assert_close(y, expected, equal_nan=True)
    else:
        expected = act.fwd64(x).to(dtype)
        if act.name in PIECEWISE_LINEAR:
            assert_bitwise_equal(y, expected, zero_sign=False)
        else:
            torch.testing.assert_close(y, expected, equal_nan=True)


def test_forward_of_new_activations_spelled_out():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 0.7, 3.0], dtype=f64)
    assert artderiv.step(x).tolist() == [0, 0, 0, 1, 1, 1]
    assert artderiv.step(x, 0.5).tolist() == [0, 0, 0, 0, 1, 1]
    assert artderiv.step(x, threshold=-1.0).tolist() == [0, 1, 1, 1, 1, 1]
    assert artderiv.sign(x).tolist() == [-1, -1, 0, 1, 1, 1]
    s = 1 / (1 + math.exp(-0.5))
    assert artderiv.b_silu(x)[3].item() == pytest.approx((0.5 + 1.67) * s - 0.835, rel=1e-14)
    assert artderiv.b_silu(x)[2].item() == pytest.approx(0.0, abs=1e-15)  # (0 + alpha) / 2 - alpha / 2
    assert artderiv.nelu(x)[0].item() == pytest.approx(-0.05 / 5, rel=1e-15)
    assert artderiv.nelu(x, 0.5)[1].item() == pytest.approx(-0.5 / 1.25, rel=1e-15)
    assert artderiv.nelu(x)[2].item() == -0.05 and artderiv.nelu(x)[5].item() == 3.0


# ---------------------------------------------------------------------------
# 2. derivative="exact" is PyTorch's autograd (kinks included)
# ---------------------------------------------------------------------------

# PyTorch is not consistent at NaN for these (so NaN is left out of the
# elementwise comparison and checked separately below):
#  - hardtanh / relu6: backward at NaN gives 1 in float32, 0 in float64
#    (artderiv: 0, the float64 answer);
#  - elu / selu / celu / hardswish: backward at NaN is NaN in the vectorised
#    main loop but f'-of-the-positive-branch in the scalar tail, so it depends
#    on the element's position (artderiv: the scalar answer, everywhere).
TORCH_NAN_INCONSISTENT = {"hardtanh", "relu6", "elu", "selu", "celu", "hardswish"}
PIECEWISE_CONSTANT_DERIVATIVE = {"relu", "relu6", "leaky_relu", "hardtanh", "hardsigmoid", "sign"}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", TORCH_ACT_CASES, ids=[a.id for a in TORCH_ACT_CASES])
def test_exact_gradient_equals_torch_autograd(act, dtype):
    x = act_inputs(act, dtype)
    g = rand_grad(x)
    got = grad_of(lambda t: act.call(t, "exact"), x, g)
    assert got.dtype == dtype
    assert_bitwise_equal(grad_of(lambda t: act.op(t, "exact"), x, g), got)
    expected = grad_of(act.torch_fn(), x, g)
    keep = ~torch.isnan(x) if act.name in TORCH_NAN_INCONSISTENT else torch.ones_like(x, dtype=torch.bool)
    got, expected, gk = got[keep], expected[keep], g[keep]
    if act.name in PIECEWISE_CONSTANT_DERIVATIVE and not (act.name == "hardsigmoid" and dtype == f64):
        assert_bitwise_equal(got, expected, zero_sign=False)
    elif act.name == "hardsigmoid":
        # torch's float64 hardsigmoid backward multiplies by float32(1/6)
        torch.testing.assert_close(got, expected, rtol=1e-7, atol=0)
    elif dtype in HALF_DTYPES:
        # torch computes sigmoid'/tanh' from the output rounded to the half
        # type; artderiv from x in float: within a half-eps of the gradient.
        assert_ulp_close(got, expected, 2, magnitude=gk, msg=f"{act.id} {dtype}")
    elif act.name == "gelu_tanh":
        # ATen sums terms of size up to 1 + |x| u'(x) (1 + tanh(u), x (1 - tanh^2) u'),
        # so its own error is eps times that; artderiv's form is the accurate
        # one (test_gelu_tanh_derivative_is_accurate).
        assert_ulp_close(got, expected, 4, magnitude=gk * gelu_tanh_terms(x[keep]), msg=f"{act.id} {dtype}")
    else:
        assert_ulp_close(got, expected, 4, magnitude=gk, msg=f"{act.id} {dtype}")


@pytest.mark.parametrize("dtype", [torch.float32, f64], ids=dtype_id)
def test_gelu_tanh_derivative_is_accurate(dtype):
    """f'(x) of gelu_tanh within a few ulps of its terms' size (times the
    function's condition), against 50-digit arithmetic, also for x < 0 where f' is tiny and ATen's 1 + tanh(u) loses
    every digit (float32 at x = -5: 0 or 8e-6 for 5.2e-6)."""
    import mpmath  # a dependency of torch (through sympy)

    mpmath.mp.dps = 50
    x = torch.cat([torch.linspace(-9, 9, 721, dtype=dtype), torch.tensor([-5.1248860359191895], dtype=dtype)])
    got = grad_of(lambda t: artderiv.gelu(t, approximate="tanh", derivative="exact"), x, torch.ones_like(x))
    beta, kappa = mpmath.sqrt(2 / mpmath.pi), mpmath.mpf("0.044715")
    eps = torch.finfo(dtype).eps
    for xi, gi in zip(x.tolist(), got.tolist()):
        xm = mpmath.mpf(xi)
        du = beta * (1 + 3 * kappa * xm * xm)
        u = beta * (xm + kappa * xm ** 3)
        s = (1 + mpmath.tanh(u)) / 2
        term = xm * s * (1 - s) * 2 * du
        # f' = s + term (near f's root they cancel); e^(-2|u|) magnifies the
        # rounding of u by 2|u| (the function's own condition, any formula's)
        scale = float((abs(s) + abs(term)) * (1 + 2 * abs(u)))
        assert abs(gi - float(s + term)) <= 8 * eps * scale + torch.finfo(dtype).tiny, (xi, gi, float(s + term))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_exact_gradient_at_nan_where_torch_is_inconsistent(dtype):
    """The NaN values left out above: one documented answer, at every position."""
    x = torch.full((37,), NAN, dtype=dtype)  # vector body and scalar tail
    g = torch.full_like(x, 2.0)
    for act in [Act("hardtanh"), Act("hardtanh", [-0.5, 2.0]), Act("relu6")]:
        got = grad_of(lambda t: act.call(t, "exact"), x, g)
        # artderiv: 0 at NaN ("1 strictly inside, else 0"). PyTorch gives 0 or 1
        # depending on the dtype and on the element's position.
        assert_bitwise_equal(got, torch.zeros_like(x))
    for act, slope in [(Act("elu"), 1.0), (Act("elu", [0.5]), 1.0), (Act("celu", [2.0]), 1.0),
                       (Act("selu"), SELU_SCALE), (Act("hardswish"), 1.0)]:
        got = grad_of(lambda t: act.call(t, "exact"), x, g)
        torch.testing.assert_close(got, torch.full_like(x, 2.0 * slope), rtol=0, atol=0, msg=act.id)
        # PyTorch's scalar path (a one-element tensor) gives the same
        torch.testing.assert_close(grad_of(act.torch_fn(), x[:1], g[:1]), got[:1], rtol=0, atol=0, msg=act.id)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", OWN_ACT_CASES + [Act("sign")], ids=[a.id for a in OWN_ACT_CASES] + ["sign"])
def test_exact_gradient_of_activations_without_torch_function(act, dtype):
    x = act_inputs(act, dtype)
    g = rand_grad(x)
    got = grad_of(lambda t: act.call(t, "exact"), x, g)
    assert_bitwise_equal(grad_of(lambda t: act.op(t, "exact"), x, g), got)
    if act.name in ("step", "sign"):
        # exact derivative 0 everywhere: +0, whatever the gradient
        assert_bitwise_equal(got, torch.zeros_like(x))
        return
    expected = g.double() * act.der64(x)
    assert_ulp_close(got, expected, 2 if dtype in HALF_DTYPES else 4, magnitude=g,
                     magnitude_dtype=compute_dtype(dtype), msg=f"{act.id} {dtype}")


def test_exact_derivative_kinks_spelled_out():
    """PyTorch's conventions at the kinks, as numbers."""
    def d(act, xs, **kw):
        x = torch.tensor(xs, dtype=f64)
        return grad_of(lambda t: act.call(t, "exact", **kw), x, torch.ones_like(x)).tolist()

    assert d(Act("relu6"), [0.0, 6.0, 3.0, -1.0, 7.0]) == [0, 0, 1, 0, 0]
    assert d(Act("hardtanh", [-0.5, 2.0]), [-0.5, 2.0, 0.0, -1.0]) == [0, 0, 1, 0]
    assert d(Act("hardsigmoid"), [-3.0, 3.0, 0.0]) == [0, 0, pytest.approx(1 / 6, rel=1e-15)]
    assert d(Act("hardswish"), [-3.0, 3.0, 0.0, -4.0, 4.0]) == [0, 1, 0.5, 0, 1]
    assert d(Act("elu", [0.5]), [0.0]) == [0.5]
    assert d(Act("celu", [2.0]), [0.0]) == [1.0]
    assert d(Act("selu"), [0.0]) == [pytest.approx(SELU_SCALE * SELU_ALPHA, rel=1e-15)]
    assert d(Act("softplus", [2.0, 5.0]), [2.5, 2.6]) == [pytest.approx(1 / (1 + math.exp(-5)), rel=1e-15), 1]
    assert d(Act("nelu"), [0.0, -1.0, 1.0]) == [0, pytest.approx(2 * 0.05 * -1 / 4, rel=1e-15), 1]
    assert d(Act("step", [0.5]), [0.5, 0.0, 1.0]) == [0, 0, 0]


# ---------------------------------------------------------------------------
# 3. Every derivative shape equals its formula (all dtypes, parameters)
# ---------------------------------------------------------------------------

SHAPE_ACT = Act("tanh")  # a non-trivial f' for exact, exact_plus, floor


def _ulps(deriv, dtype):
    base = 2 if dtype in HALF_DTYPES else 4
    if deriv.name == "table":  # a sum of one ramp per knot interval
        base += len(deriv.kw["knots"])
    return base


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("deriv", DERIV_CASES, ids=DERIV_CASE_IDS)
def test_derivative_shape_equals_formula(deriv, dtype):
    x = shape_inputs(dtype)
    g = rand_grad(x)
    name, params = deriv.op_args()
    public = grad_of(lambda t: SHAPE_ACT.call(t, deriv.obj()), x, g)
    assert_bitwise_equal(grad_of(lambda t: SHAPE_ACT.op(t, name, params), x, g), public)
    # The formula itself, on f'(x) computed from x: save="auto" would read
    # tanh' from the rounded output for exact, exact_plus and floor (as torch
    # does; test_save_modes covers that).
    got = grad_of(lambda t: SHAPE_ACT.op(t, name, params, save="input"), x, g)
    assert got.dtype == dtype
    expected = g.double() * deriv.factor64(SHAPE_ACT, x)
    assert_ulp_close(got, expected, _ulps(deriv, dtype), magnitude=g, magnitude_dtype=compute_dtype(dtype),
                     msg=f"{deriv.id} {dtype}")
    # where the factor is exactly 0, the gradient is exactly +0 (the gate); but
    # tanh's exact derivative multiplies, as torch's tanh backward: g * 0
    zero = deriv.factor64(SHAPE_ACT, x) == 0
    if zero.any():
        want = g[zero] * 0 if deriv.name == "exact" else torch.zeros_like(got[zero])
        assert_bitwise_equal(got[zero], want)


@pytest.mark.parametrize("name", list(SHAPE_DEFAULTS))
def test_derivative_defaults_by_name_factory_and_explicit_values(name):
    """A bare name, the factory with no arguments and the documented default
    values written out all give the same gradient."""
    x = shape_inputs(f64)
    g = rand_grad(x)
    by_name = grad_of(lambda t: SHAPE_ACT.call(t, name), x, g)
    by_factory = grad_of(lambda t: SHAPE_ACT.call(t, getattr(D, name)()), x, g)
    explicit = list(SHAPE_DEFAULTS[name].values())
    by_values = grad_of(lambda t: SHAPE_ACT.op(t, name, explicit), x, g)
    assert_bitwise_equal(by_factory, by_name)
    assert_bitwise_equal(by_values, by_name)
    assert getattr(D, name)().params == SHAPE_DEFAULTS[name]


def test_shapes_are_distinct():
    """Guards the test above: no two shapes (defaults) give the same gradient."""
    x = torch.linspace(-3, 3, 97, dtype=f64)
    g = torch.ones_like(x)
    seen = {}
    for deriv in DERIV_CASES:
        key = deriv.id
        seen[key] = grad_of(lambda t: SHAPE_ACT.call(t, deriv.obj()), x, g)
    keys = list(seen)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not torch.equal(seen[a], seen[b]), (a, b)


# SpikingJelly / snnTorch backward formulas as those libraries write them
# (spikingjelly.activation_based.surrogate, snntorch.surrogate), with each
# library's own default parameters.
def _sj_sigmoid(x, alpha=4.0):
    sgax = torch.sigmoid(x * alpha)
    return (1.0 - sgax) * sgax * alpha


def _sj_atan(x, alpha=2.0):
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


def _sj_erf(x, alpha=2.0):
    return torch.exp(-((x * alpha) ** 2)) * (alpha / math.sqrt(math.pi))


def _sj_piecewise_quadratic(x, alpha=1.0):
    return (-(alpha**2) * x.abs() + alpha).masked_fill(x.abs() > 1 / alpha, 0)


def _sj_soft_sign(x, alpha=2.0):
    return 1 / (2 * alpha * (1 / alpha + x.abs()) ** 2)


def _sj_piecewise_exp(x, alpha=1.0):
    return alpha / 2 * torch.exp(-alpha * x.abs())


def _sj_piecewise_leaky_primitive_slope(x, w=1.0, c=0.01):
    # SpikingJelly's documented PiecewiseLeakyReLU: primitive g(x) = x/(2w) + 1/2
    # on [-w, w], c*x +- ... outside, so g' = 1/(2w) inside, c outside. (Its
    # hand-written backward kernel uses 1/w inside, contradicting its own
    # primitive and parameter docs; artderiv follows the documented 1/(2w).)
    return torch.where(x.abs() < w, torch.full_like(x, 1 / (2 * w)), torch.full_like(x, c))


def _snn_atan(x, alpha=2.0):
    return alpha / 2 / (1 + (torch.pi / 2 * alpha * x).pow(2))


def _snn_fast_sigmoid(x, slope=25.0):
    return 1 / (slope * torch.abs(x) + 1.0) ** 2


def _snn_sigmoid(x, slope=25.0):
    return slope * torch.exp(-slope * x) / ((torch.exp(-slope * x) + 1) ** 2)


LIBRARY_CONVENTIONS = [
    ("sigmoid_prime", {}, _sj_sigmoid, {}),
    ("atan", {}, _sj_atan, {}),
    ("atan", {}, _snn_atan, {}),
    ("erf", {}, _sj_erf, {}),
    ("triangle", {}, _sj_piecewise_quadratic, {}),
    ("softsign", {}, _sj_soft_sign, {}),
    ("exponential", {}, _sj_piecewise_exp, {}),
    ("piecewise_leaky", {}, _sj_piecewise_leaky_primitive_slope, {}),
    ("fast_sigmoid", {}, _snn_fast_sigmoid, {}),
    ("sigmoid_prime", {"alpha": 25.0}, _snn_sigmoid, {"slope": 25.0}),
    ("triangle", {"alpha": 1.5}, _sj_piecewise_quadratic, {"alpha": 1.5}),
    ("softsign", {"alpha": 3.0}, _sj_soft_sign, {"alpha": 3.0}),
    ("piecewise_leaky", {"w": 0.5, "c": 0.05}, _sj_piecewise_leaky_primitive_slope, {"w": 0.5, "c": 0.05}),
]


@pytest.mark.parametrize("case", LIBRARY_CONVENTIONS,
                         ids=[f"{c[0]}{c[1] or ''}-{c[2].__name__}" for c in LIBRARY_CONVENTIONS])
def test_surrogates_agree_with_snntorch_and_spikingjelly(case):
    name, ours, theirs, their_kw = case
    # a spiking neuron: step at threshold 0, as SpikingJelly's heaviside
    x = torch.linspace(-2.5, 2.5, 1001, dtype=f64)
    got = grad_of(lambda t: artderiv.step(t, derivative=getattr(D, name)(**ours)), x, torch.ones_like(x))
    torch.testing.assert_close(got, theirs(x, **their_kw), rtol=1e-12, atol=1e-14)


def test_center_of_step_is_its_threshold():
    """step(threshold=t) with shape d: the gradient is d(x - t)."""
    x = torch.linspace(-3, 3, 121, dtype=f64)
    g = torch.ones_like(x)
    for t in (0.5, -1.25):
        got = grad_of(lambda u: artderiv.step(u, t, D.atan(alpha=3.0)), x, g)
        torch.testing.assert_close(got, (1.5) / (1 + (math.pi * 1.5 * (x - t)) ** 2), rtol=1e-13, atol=0)
        peak = int(torch.argmax(got))
        assert x[peak].item() == pytest.approx(t)
    # every other activation is centred at 0, whatever its parameters
    got = grad_of(lambda u: artderiv.hardtanh(u, 0.5, 2.0, D.atan(alpha=3.0)), x, g)
    assert x[int(torch.argmax(got))].item() == pytest.approx(0.0, abs=1e-12)


def test_like_on_step_is_centred_on_the_threshold():
    """As documented (csrc/formulas/derivatives.h): like:<g> is a surrogate
    like the other shapes, so on step(threshold=t) it reads g'(x - t)."""
    x = torch.linspace(-3, 3, 121, dtype=f64)
    g = torch.ones_like(x)
    got = grad_of(lambda u: artderiv.step(u, 1.0, D.like("sigmoid")), x, g)
    s = torch.sigmoid(x - 1.0)
    torch.testing.assert_close(got, s * (1 - s), rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------
# 4. gradcheck: derivative="exact" is the true derivative
# ---------------------------------------------------------------------------

GRADCHECK_CASES = [Act(n) for n in ("elu", "selu", "celu", "softplus", "sigmoid", "tanh", "silu", "gelu",
                                    "gelu_tanh", "mish", "b_silu", "nelu", "hardswish")] + [
    Act("elu", [0.5]), Act("celu", [2.0]), Act("softplus", [2.0, 5.0]), Act("b_silu", [1.0]), Act("nelu", [0.5]),
]


@pytest.mark.parametrize("act", GRADCHECK_CASES, ids=[a.id for a in GRADCHECK_CASES])
def test_gradcheck_exact(act):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(60, generator=gen, dtype=f64) * 2.5
    # away from every kink: 0, +-3 (hardswish), beta*x = threshold (softplus)
    kinks = torch.tensor([0.0, 3.0, -3.0, 2.5, 20.0], dtype=f64)
    x = x[((x[:, None] - kinks[None, :]).abs() > 0.05).all(1)][:40].reshape(5, 8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: act.call(t, "exact"), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


# ---------------------------------------------------------------------------
# 5. The whole grid: every activation x every derivative, float32
# ---------------------------------------------------------------------------

GRID_ACTS = [Act(n) for n in ALL_ACTIVATIONS if n != "step"] + [Act("step", [0.5])]
GRID_DERIVS = [Deriv(n) for n in SHAPE_DEFAULTS] + [
    Deriv("table", knots=TABLE_KNOTS, values=TABLE_VALUES),
    Deriv("like:elu"),
    Deriv("like:silu"),
]


def _grid_x():
    kinks = [0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 0.5, -0.5, 0.25, 2.0, -2.0, 1.5, 0.125, 20.0, -20.0, 0.75]
    rest = torch.linspace(-7.9, 7.9, 64 - len(kinks), dtype=f64).tolist()
    return torch.tensor(kinks + rest, dtype=torch.float32)


GRID_X = _grid_x()
assert GRID_X.numel() == 64
GRID_G = (torch.linspace(0.5, 2.0, 64, dtype=torch.float32) * torch.tensor([1.0, -1.0] * 32)).flip(0)


def _check_grid(act, deriv, blend=None):
    x, g = GRID_X, GRID_G
    y = act.call(x, deriv.obj(), blend=blend)
    torch.testing.assert_close(y, act.fwd64(x).float(), equal_nan=True)
    got = grad_of(lambda t: act.call(t, deriv.obj(), blend=blend), x, g)
    d = deriv.factor64(act, x)
    if blend is not None:
        b = float(blend)
        d = (1 - b) * d + b * act.der64(x)  # blending reads the layer's own f'
    expected = g.double() * d
    torch.testing.assert_close(got, expected.float(), rtol=2e-5, atol=2e-6, msg=lambda m: f"{act.id} {deriv.id}: {m}")


@pytest.mark.parametrize("deriv", GRID_DERIVS, ids=[d.id for d in GRID_DERIVS])
@pytest.mark.parametrize("act", GRID_ACTS, ids=[a.id for a in GRID_ACTS])
def test_grid(act, deriv):
    _check_grid(act, deriv)


GRID_BLENDED = [
    (a, GRID_DERIVS[(7 * i + k) % len(GRID_DERIVS)], blend)
    for i, a in enumerate(GRID_ACTS)
    for k, blend in ((1, 0.3), (4, "tensor0.75"))
]


@pytest.mark.parametrize("case", GRID_BLENDED, ids=[f"{a.id}-{d.id}-{b}" for a, d, b in GRID_BLENDED])
def test_grid_blended(case):
    act, deriv, blend = case
    if blend == "tensor0.75":
        blend = torch.tensor(0.75, dtype=f64)
    _check_grid(act, deriv, blend)


def test_blend_with_like_uses_the_layers_own_derivative():
    """relu with like:elu and blend b: (1 - b) * elu'(x) + b * relu'(x)."""
    x = torch.linspace(-3, 3, 61, dtype=f64)
    g = torch.ones_like(x)
    got = grad_of(lambda t: artderiv.relu(t, D.like("elu", alpha=0.5), blend=0.25), x, g)
    elu_d = torch.where(x <= 0, 0.5 * torch.exp(x), torch.ones_like(x))
    relu_d = (x > 0).double()
    torch.testing.assert_close(got, 0.75 * elu_d + 0.25 * relu_d, rtol=1e-15, atol=1e-16)


BLEND_DTYPE_CASES = [
    (Act("step", [0.5]), Deriv("like:elu")),
    (Act("step", [0.5]), Deriv("triangle", alpha=2.0)),
    (Act("relu"), Deriv("like:silu")),
    (Act("nelu"), Deriv("table", knots=TABLE_KNOTS, values=TABLE_VALUES)),
    (Act("hardswish"), Deriv("erf", alpha=0.5)),
    (Act("celu", [2.0]), Deriv("floor", eps=0.25)),
    (Act("b_silu"), Deriv("exact_plus", c=0.3)),
    (Act("softplus", [2.0, 5.0]), Deriv("gaussian", sigma=2.0)),
]


@pytest.mark.parametrize("blend", [0.3, "tensor32-0.75"], ids=["0.3", "tensor32-0.75"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BLEND_DTYPE_CASES, ids=[f"{a.id}-{d.id}" for a, d in BLEND_DTYPE_CASES])
def test_blend_every_dtype(case, dtype, blend):
    act, deriv = case
    b = 0.3 if blend == 0.3 else 0.75
    blend = blend if blend == 0.3 else torch.tensor(0.75, dtype=torch.float32)
    x = shape_inputs(dtype)
    g = rand_grad(x)
    got = grad_of(lambda t: act.call(t, deriv.obj(), blend=blend), x, g)
    name, params = deriv.op_args()
    b_tensor = torch.tensor(b, dtype=f64)
    assert_bitwise_equal(grad_of(lambda t: act.op(t, name, params, b_tensor), x, g), got)
    expected = g.double() * ((1 - b) * deriv.factor64(act, x) + b * act.der64(x))
    assert_ulp_close(got, expected, _ulps(deriv, dtype), magnitude=g, magnitude_dtype=compute_dtype(dtype),
                     msg=f"{act.id} {deriv.id} {dtype} blend={b}")


def test_strided_inputs_give_the_same_gradients():
    """Non-contiguous x and grad: the same numbers as contiguous ones."""
    x = shape_inputs(torch.float32)[:800].reshape(40, 20).t()
    g = rand_grad(x.contiguous()).t().contiguous().t()
    assert not x.is_contiguous() and not g.is_contiguous()
    for act, deriv in BLEND_DTYPE_CASES:
        for blend in (None, 0.4):
            fn = lambda t: act.call(t, deriv.obj(), blend=blend)  # noqa: E731
            assert_bitwise_equal(fn(x), fn(x.contiguous()))
            assert_bitwise_equal(grad_of(fn, x, g), grad_of(fn, x.contiguous(), g.contiguous()))


# ---------------------------------------------------------------------------
# 6. Specific facts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 4.0])
def test_like_softplus_is_sigmoid_below_threshold(beta):
    x = torch.linspace(-40 / beta, 19.9 / beta, 2001, dtype=f64)  # beta * x < threshold = 20
    g = rand_grad(x)
    like = grad_of(lambda t: artderiv.relu(t, D.like("softplus", beta=beta)), x, g)
    ramp = grad_of(lambda t: artderiv.relu(t, D.sigmoid(beta=beta)), x, g)
    torch.testing.assert_close(like, ramp, rtol=1e-15, atol=1e-300)
    # float32 too
    like32 = grad_of(lambda t: artderiv.relu(t, D.like("softplus", beta=beta)), x.float(), g.float())
    ramp32 = grad_of(lambda t: artderiv.relu(t, D.sigmoid(beta=beta)), x.float(), g.float())
    torch.testing.assert_close(like32, ramp32, rtol=4e-7, atol=1e-30)
    # above the threshold softplus is linear: its derivative is exactly 1
    above = torch.tensor([20.5 / beta, 25 / beta, 100 / beta], dtype=f64)
    got = grad_of(lambda t: artderiv.relu(t, D.like("softplus", beta=beta)), above, torch.ones_like(above))
    assert got.tolist() == [1.0, 1.0, 1.0]


def _b_silu64(alpha):
    return lambda x: (x + alpha) * torch.sigmoid(x) - alpha / 2


def _nelu64(alpha):
    return lambda x: torch.where(x > 0, x, -alpha / (1 + x * x))


SUGAR_CASES = [
    ("elu", {}, lambda x: F.elu(x)),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, 0.5)),
    ("silu", {}, F.silu),
    ("gelu", {}, F.gelu),
    ("b_silu", {}, _b_silu64(1.67)),
    ("b_silu", {"alpha": 1.0}, _b_silu64(1.0)),
    ("nelu", {}, _nelu64(0.05)),
    ("nelu", {"alpha": 0.2}, _nelu64(0.2)),
]


@pytest.mark.parametrize("dtype", [f64, torch.float32], ids=dtype_id)
@pytest.mark.parametrize("case", SUGAR_CASES, ids=[f"{c[0]}{c[1] or ''}" for c in SUGAR_CASES])
def test_relu_with_like_is_the_other_activations_torch_derivative(case, dtype):
    g_name, kw, torch_fn = case
    x = act_inputs(Act("relu"), dtype, n=500)
    x = x[torch.isfinite(x)]
    gr = rand_grad(x)
    got = grad_of(lambda t: artderiv.relu(t, D.like(g_name, **kw)), x, gr)
    # torch autograd in float64 of torch's function (or of the formula)
    expected = grad_of(torch_fn, x.double(), gr.double())
    assert_ulp_close(got, expected, 4, magnitude=gr, msg=f"like:{g_name}")
    # and the relu forward is untouched
    assert_bitwise_equal(artderiv.relu(x, D.like(g_name, **kw)), torch.relu(x))


@pytest.mark.parametrize("act", [Act("step"), Act("step", [0.5]), Act("sign")], ids=["step", "step(0.5)", "sign"])
@pytest.mark.parametrize("blend", [0.25, 0.5, 0.9])
def test_blending_step_and_sign_only_scales_the_surrogate(act, blend):
    x = torch.linspace(-3, 3, 241, dtype=f64)
    g = rand_grad(x)
    for deriv in (D.atan(alpha=3.0), D.fast_sigmoid(slope=5.0), "sigmoid", D.table([-1, 0, 1], [0, 1, 0])):
        plain = grad_of(lambda t: act.call(t, deriv), x, g)
        mixed = grad_of(lambda t: act.call(t, deriv, blend=blend), x, g)
        assert plain.abs().max() > 0
        torch.testing.assert_close(mixed, (1 - blend) * plain, rtol=1e-15, atol=1e-300)
        tensor_blend = grad_of(lambda t: act.call(t, deriv, blend=torch.tensor(blend)), x, g)
        torch.testing.assert_close(tensor_blend, mixed, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_zero_factor_gives_plus_zero_even_for_nonfinite_grads(dtype):
    """Where the factor is exactly 0 the gradient is exactly +0 (inf/NaN grads too)."""
    g = torch.tensor([INF, -INF, NAN, -1.0, 1.0, -0.0, -5.0, INF], dtype=dtype)
    cases = [
        (Act("relu"), "exact", None, [-1.0, 0.0, -0.0, -2.0, -1e4, -INF, -3.0, -0.5]),
        (Act("relu6"), "exact", None, [0.0, 6.0, 7.0, -1.0, 1e4, INF, -INF, -0.0]),
        (Act("hardtanh", [-0.5, 2.0]), "exact", None, [-0.5, 2.0, 3.0, -1.0, 1e4, -INF, INF, 2.5]),
        (Act("hardsigmoid"), "exact", None, [-3.0, 3.0, 4.0, -4.0, 1e4, -INF, INF, -100.0]),
        (Act("hardswish"), "exact", None, [-3.0, -4.0, -100.0, -1e4, -3.5, -INF, -3.0, -5.0]),
        (Act("step", [0.5]), "exact", None, [0.0, 0.5, 1.0, NAN, INF, -INF, 3.0, -2.0]),
        (Act("sign"), "exact", None, [0.0, -0.0, 1.0, NAN, INF, -INF, 3.0, -2.0]),
        (Act("relu"), D.rectangle(alpha=1.0), None, [0.5, -0.5, 1.0, -3.0, INF, -INF, NAN, 0.75]),
        (Act("relu"), D.triangle(alpha=2.0), None, [0.5, -0.5, 1.0, -3.0, INF, -INF, 0.75, -0.75]),
        (Act("relu"), D.piecewise_leaky(w=1.0, c=0.0), None, [1.0, -1.0, 2.0, -3.0, INF, -INF, NAN, 1.5]),
        (Act("relu"), D.table([-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]), None, [1.0, -1.0, 2.0, -3.0, INF, -INF, 1e4, -2.0]),
        (Act("relu"), D.like("relu6"), None, [0.0, 6.0, -1.0, 7.0, INF, -INF, NAN, 100.0]),
        # blend 1: (1 - 1) * atan + 1 * 0 (at x = NaN that is 0 * NaN = NaN, by the formula)
        (Act("step"), D.atan(alpha=2.0), 1.0, [0.0, 0.5, -1.0, 7.0, 0.1, -0.1, INF, 100.0]),
        (Act("relu"), D.atan(alpha=2.0), None, [INF, -INF, INF, -INF, INF, -INF, INF, -INF]),
    ]
    for act, deriv, blend, xs in cases:
        x = torch.tensor(xs, dtype=dtype)
        got = grad_of(lambda t: act.call(t, deriv, blend=blend), x, g)
        assert got.tolist() == [0.0] * 8 and not torch.signbit(got).any(), (act.id, deriv, blend, xs, got.tolist())


def _raises_value_error(fn, *needles):
    with pytest.raises(ValueError) as info:
        fn()
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    return str(info.value)


TABLE_BAD = [  # (label, knots, values, what the error says)
    ("unsorted", [0.0, 1.0, 0.5], [0.0, 1.0, 0.0], "knots must be strictly increasing"),
    ("repeated knot", [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], "knots must be strictly increasing"),
    ("length mismatch", [0.0, 1.0, 2.0], [0.0, 1.0], "same length"),
    ("one knot", [0.0], [1.0], "2 to 16"),
    ("17 knots", [float(i) for i in range(17)], [0.5] * 17, "2 to 16"),
    ("NaN knot", [0.0, NAN, 1.0], [0.0, 1.0, 0.0], "knots must be finite, also as a float32"),
    ("NaN value", [0.0, 0.5, 1.0], [0.0, NAN, 0.0], "values must be finite, also as a float32"),
    ("inf knot", [0.0, 1.0, INF], [0.0, 1.0, 0.0], "knots must be finite"),
    # distinct in float64, one float32 (the kernels' type for float32/float16/bfloat16): slope inf, inf * 0 = NaN
    ("knots equal in float32", [0.0, 1.0, 1.00000001], [0.0, 1.0, 0.0], "strictly increasing in float32"),
    ("slope overflows float32", [0.0, 1e-30, 1.0], [0.0, 1e10, 0.0], "slopes finite in float32"),
    ("width overflows float32", [-3e38, 3e38], [0.0, 1.0], "at most 3.4e38 apart"),
]


@pytest.mark.parametrize("case", TABLE_BAD, ids=[c[0] for c in TABLE_BAD])
def test_table_validation(case):
    label, knots, values, why = case
    text = _raises_value_error(lambda: D.table(knots, values), "artderiv.derivatives.table: ", why)
    if label not in ("length mismatch", "one knot", "17 knots"):  # the op's checks: the object adds the numbers
        assert f"got knots {[float(k) for k in knots]}, values {[float(v) for v in values]}" in text, text
    x = torch.randn(5)
    # the raw op: knots then values, one list
    _raises_value_error(lambda: OPS.activation(x, "relu", [], "table", knots + values, None, "input"),
                        "artderiv.relu: argument 'derivative_params' for 'table'")
    # also when x needs a gradient, and through a module's forward
    xr = x.clone().requires_grad_(True)
    _raises_value_error(lambda: OPS.activation(xr, "step", [], "table", knots + values, None, "input"),
                        "artderiv.step", "derivative_params")


# Parameters that the double check passes but that are inf or 0 as a float32 (the
# kernels' type for float32/float16/bfloat16), where they gave NaN silently.
FLOAT32_BAD = [
    ("sigmoid beta 1e300", "relu", [], "sigmoid", [1e300], "for 'sigmoid': parameter 'beta'"),
    ("atan alpha 1e39", "step", [], "atan", [1e39], "for 'atan': parameter 'alpha'"),
    ("gaussian sigma 1e-300", "step", [], "gaussian", [1e-300], "for 'gaussian': parameter 'sigma'"),
    # subnormal in float32: 1 / sigma is inf there
    ("gaussian sigma 1e-39", "step", [], "gaussian", [1e-39], "for 'gaussian': parameter 'sigma'"),
    ("celu alpha 1e-300", "celu", [1e-300], "exact", [], "artderiv.celu: argument 'activation_params': parameter 'alpha'"),
    ("leaky_relu slope 1e300", "leaky_relu", [1e300], "exact", [], "artderiv.leaky_relu: argument 'activation_params': parameter 'negative_slope'"),
    ("table value 1e39", "relu", [], "table", [0.0, 1.0, 0.0, 1e39], "values must be finite, also as a float32"),
]


@pytest.mark.parametrize("case", FLOAT32_BAD, ids=[c[0] for c in FLOAT32_BAD])
def test_parameters_must_keep_their_constraint_as_float32(case):
    _, act, aparams, deriv, dparams, needle = case
    x = torch.randn(5, dtype=torch.float64)  # refused for every dtype: the check does not read one
    _raises_value_error(lambda: OPS.activation(x, act, aparams, deriv, dparams, None, "input"), needle, "float32")
    if deriv in ("sigmoid", "atan", "gaussian"):  # the Python objects run the op's checks, named as themselves
        name = {"sigmoid": "beta", "atan": "alpha", "gaussian": "sigma"}[deriv]
        text = _raises_value_error(lambda: getattr(D, deriv)(**{name: dparams[0]}), "float32")
        assert text.startswith(f"artderiv.derivatives.{deriv}: parameter '{name}' must be"), text
    # the float32 limits themselves pass
    OPS.activation(x, "relu", [], "sigmoid", [3.4e38], None, "input")
    OPS.activation(x, "relu", [], "sigmoid", [1.1754944e-38], None, "input")


def test_check_derivative_op():
    """The op behind the derivative objects' checks: the same checks as the op's
    derivative_params, with errors that name the object."""
    OPS.check_derivative("sigmoid", [2.0])
    OPS.check_derivative("sigmoid", [])  # the defaults
    OPS.check_derivative("like:hardtanh", [-2.0, 1.0])
    OPS.check_derivative("table", [-1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    _raises_value_error(lambda: OPS.check_derivative("sigmoid", [0.0]), "artderiv.derivatives.sigmoid: parameter 'beta'")
    _raises_value_error(lambda: OPS.check_derivative("sigmoid", [1.0, 2.0]), "artderiv.derivatives.sigmoid", "at most 1")
    _raises_value_error(lambda: OPS.check_derivative("like:hardtanh", [1.0, -1.0]),
                        "artderiv.derivatives.like('hardtanh'): min_val must be less than max_val")
    _raises_value_error(lambda: OPS.check_derivative("table", [1.0, 0.0, 0.0, 1.0]),
                        "artderiv.derivatives.table: knots must be strictly increasing")
    text = _raises_value_error(lambda: OPS.check_derivative("nope", []), "unknown derivative 'nope'", "allowed: exact")
    assert "default" not in text  # a name only the op's `derivative` argument takes
    _raises_value_error(lambda: OPS.check_derivative("default", []), "unknown derivative 'default'")
    _raises_value_error(lambda: OPS.check_derivative("like:nope", []), "'like:' takes an activation")


def test_derivative_object_errors_name_the_object():
    with pytest.raises(TypeError, match=r"^artderiv\.derivatives\.sigmoid: too many positional arguments"):
        D.sigmoid(1.0, 2.0)
    with pytest.raises(TypeError, match=r"^artderiv\.derivatives\.sigmoid: got an unexpected keyword argument 'gamma'"):
        D.sigmoid(gamma=1.0)
    with pytest.raises(TypeError, match=r"^artderiv\.derivatives\.like\('elu'\): unknown parameter\(s\) \['beta'\]"):
        D.like("elu", beta=1.0)
    with pytest.raises(TypeError, match=r"^artderiv\.derivatives\.like\('elu'\): parameter 'alpha' must be a number"):
        D.like("elu", alpha="x")
    with pytest.raises(ValueError, match=r"^artderiv\.derivatives\.like\('elu'\): parameter 'alpha' must be"):
        D.like("elu", alpha=float("inf"))


def test_like_objects_are_checked_when_made():
    """Checks between an activation's parameters run when the like:<g> object is
    made, as for the other derivative objects (not first at the call)."""
    assert D.like("hardtanh", min_val=-2, max_val=1).params == {"min_val": -2.0, "max_val": 1.0}
    _raises_value_error(lambda: D.like("hardtanh", min_val=2, max_val=1),
                        "artderiv.derivatives.like('hardtanh'): min_val must be less than max_val")


def test_zero_parameters_are_values_not_defaults():
    """0 given as a tensor, an array or a list entry is the value 0, not "use the default"."""
    x = torch.tensor([-1.0, 2.0])
    expected = torch.tensor([0.0, 2.0])
    values = [[0.0], [0], torch.tensor([0.0]), (0.0,)]
    np = pytest.importorskip("numpy")
    values.append(np.array([0.0]))
    for v in values:
        assert torch.equal(artderiv.activation(x, "leaky_relu", v), expected), v
    for scalar in (0, 0.2, torch.tensor(0.2), "0.2"):
        with pytest.raises(TypeError, match="artderiv.leaky_relu: argument 'activation_params' must be a list of numbers"):
            artderiv.activation(x, "leaky_relu", scalar)


def test_bad_python_arguments_name_the_function_and_argument():
    x = torch.randn(4)
    cases = [
        (lambda: artderiv.leaky_relu(x, "atan"),
         "artderiv.leaky_relu: argument 'negative_slope' must be a number, got 'atan'; pass the derivative by keyword"),
        (lambda: artderiv.leaky_relu(x, None), "artderiv.leaky_relu: argument 'negative_slope' must be a number, got None"),
        (lambda: artderiv.step(x, [0.5]), "artderiv.step: argument 'threshold' must be a number, got [0.5]"),
        (lambda: artderiv.leaky_relu(x, 10**400), "artderiv.leaky_relu: argument 'negative_slope' must be a number"),
        (lambda: artderiv.relu(x, blend=[0.5]), "artderiv.relu: argument 'blend' must be a number, got [0.5]"),
        (lambda: artderiv.relu(x, blend=0.5j), "artderiv.relu: argument 'blend' must be a number"),
        (lambda: artderiv.activation(x, "leaky_relu", [torch.tensor([0.2, 0.3])]),
         "artderiv.leaky_relu: argument 'activation_params' must be a number"),
    ]
    for call, message in cases:
        with pytest.raises(TypeError) as info:
            call()
        assert message in str(info.value), (message, str(info.value))
    # every digit where the short form would look valid
    for blend in (1.0000001, torch.tensor(1.0000001, dtype=torch.float64)):
        _raises_value_error(lambda: artderiv.relu(x, blend=blend), "argument 'blend' must be in [0, 1], got 1.0000001")


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's beta/prototype notes on sparse CSR and nested
def test_non_dense_inputs_are_refused_by_name():
    x = torch.randn(4, 4)
    nested = torch.nested.nested_tensor([torch.randn(3), torch.randn(2)])
    for t, kind in ((x.to_sparse(), "Sparse"), (x.to_sparse_csr(), "SparseCsr"), (nested, "nested")):
        for requires_grad in (False, True):
            with pytest.raises(TypeError, match=f"artderiv.relu: argument 'x' is a {kind} tensor; allowed: dense"):
                artderiv.relu(t.clone().requires_grad_(requires_grad))


def test_number_blend_is_checked_under_compile():
    """A number blend outside [0, 1] is refused also when compiled without a
    gradient (no backward, where the op reads a blend tensor)."""
    fn = torch.compile(lambda t: artderiv.relu(t, blend=2.0), backend="eager", fullgraph=False)
    with torch.no_grad():
        _raises_value_error(lambda: fn(torch.randn(4)), "artderiv.relu: argument 'blend' must be in [0, 1], got 2")


def test_table_limits_are_accepted():
    x = torch.linspace(-4, 4, 33, dtype=f64)
    for n in (2, 16):
        knots = [-3.0 + 6.0 * i / (n - 1) for i in range(n)]
        values = [float(i % 3) / 2 for i in range(n)]
        got = grad_of(lambda t: artderiv.relu(t, D.table(knots, values)), x, torch.ones_like(x))
        torch.testing.assert_close(got, table64(knots, values, x), rtol=1e-14, atol=1e-15)


def test_table_is_constant_beyond_the_last_knot():
    """Outside the knots a table is its end value: exactly, so a table that
    ends at 0 gives a zero factor (and +0 gradients, even for inf grads)."""
    cases = [
        (torch.float32, [-2.0, -1.5, 0.0], [0.0, 0.2, 0.0]),
        (torch.float64, [-2.0, -1.5, -0.3], [0.0, 0.7, 0.0]),
        (torch.float64, [-9.0, -3.4, -0.2, 0.3, 0.7, 2.4, 3.0, 9.4],
         [0.968, 0.358, 0.892, 0.218, 0.139, 0.14, 0.095, 0.0]),
    ]
    for dtype, knots, values in cases:
        x = torch.tensor([knots[-1] + 1.0, 1e6, INF, INF], dtype=dtype)
        g = torch.tensor([1.0, 1.0, 1.0, INF], dtype=dtype)
        got = grad_of(lambda t: artderiv.relu(t, D.table(knots, values)), x, g)
        assert got.tolist() == [0.0, 0.0, 0.0, 0.0], (dtype, knots, values, got.tolist())



PARAM_BAD = [
    ("celu", [0.0], "alpha"),
    ("celu", [INF], "alpha"),
    ("hardtanh", [1.0, 1.0], "min_val"),
    ("hardtanh", [2.0, 1.0], "min_val"),
    ("hardtanh", [-INF, 1.0], "min_val"),
    ("hardtanh", [-1.0, NAN], "max_val"),
    ("softplus", [0.0], "beta"),
    ("softplus", [-1.0], "beta"),
    ("softplus", [1.0, INF], "threshold"),
    ("softplus", [NAN], "beta"),
    ("elu", [INF], "alpha"),
    ("leaky_relu", [NAN], "negative_slope"),
    ("step", [NAN], "threshold"),
    ("step", [-INF], "threshold"),
    ("b_silu", [INF], "alpha"),
    ("nelu", [NAN], "alpha"),
]


@pytest.mark.parametrize("case", PARAM_BAD, ids=[f"{c[0]}{c[1]}" for c in PARAM_BAD])
def test_activation_parameter_validation(case):
    name, params, pname = case
    x = torch.randn(4, dtype=f64)
    needles = (f"artderiv.{name}", "activation_params", pname)
    _raises_value_error(lambda: getattr(artderiv, name)(x, *params), *needles)
    _raises_value_error(lambda: OPS.activation(x, name, params, "default", [], None, "input"), *needles)
    _raises_value_error(lambda: OPS.activation_forward(x, name, params), *needles)
    xr = x.clone().requires_grad_(True)
    _raises_value_error(lambda: getattr(artderiv, name)(xr, *params, derivative="exact"), *needles)


def test_like_validates_the_other_activations_parameters():
    x = torch.randn(4)
    _raises_value_error(lambda: D.like("celu", alpha=0.0), "alpha")
    _raises_value_error(lambda: D.like("nope"), "nope")
    _raises_value_error(lambda: OPS.activation(x, "relu", [], "like:celu", [0.0], None, "input"),
                        "artderiv.relu", "alpha")
    _raises_value_error(lambda: OPS.activation(x, "relu", [], "like:hardtanh", [1.0, 0.0], None, "input"),
                        "artderiv.relu", "min_val")
    _raises_value_error(lambda: OPS.activation(x, "relu", [], "like:nope", [], None, "input"), "like:nope")


# ---------------------------------------------------------------------------
# 7. TorchScript and torch.compile
# ---------------------------------------------------------------------------


class CatalogNet(nn.Module):
    """Several activations and derivatives: table, like:<g>, a nonzero blend."""

    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(6, 16)
        self.a1 = ann.ReLU(derivative=D.table([-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]))
        self.lin2 = nn.Linear(16, 16)
        self.a2 = ann.ELU(0.5, derivative=D.like("silu"))
        self.a2.set_blend(0.25)
        self.a3 = ann.Step(threshold=0.1, derivative=D.atan(alpha=3.0))
        self.a4 = ann.GELU("tanh", derivative=D.triangle(alpha=0.5))
        self.a5 = ann.Hardtanh(-2.0, 2.0, derivative="exact_plus")
        self.a6 = ann.NeLU(derivative=D.like("b_silu", alpha=1.0))
        self.a6.set_blend(0.5)
        self.a7 = ann.Softplus(beta=2.0, derivative=D.gaussian(sigma=1.0))
        self.lin3 = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a1(self.lin1(x))
        h = self.a2(self.lin2(h))
        h = self.a3(h) + self.a4(h) + self.a5(h) * self.a7(h)
        return self.lin3(self.a6(h))


def _run(model, x, g):
    leaf = x.detach().clone().requires_grad_(True)
    for p in model.parameters():
        p.grad = None
    y = model(leaf)
    y.backward(g)
    return y.detach(), leaf.grad, [p.grad.clone() for p in model.parameters()]


def _make_net_and_data():
    torch.manual_seed(0)
    model = CatalogNet()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 6, generator=gen) * 2
    g = torch.randn(9, 3, generator=gen)
    return model, x, g


def _assert_runs_equal(a, b, rtol=1e-6, atol=1e-6):
    (ya, xa, pa), (yb, xb, pb) = a, b
    torch.testing.assert_close(ya, yb, rtol=rtol, atol=atol)
    torch.testing.assert_close(xa, xb, rtol=rtol, atol=atol)
    for u, v in zip(pa, pb):
        torch.testing.assert_close(u, v, rtol=rtol, atol=atol)


def test_catalog_net_gradient_is_not_trivial():
    """Guards the two deployment tests: the derivatives matter to this model."""
    model, x, g = _make_net_and_data()
    base = _run(model, x, g)
    assert base[1].abs().max() > 0
    model.a1.set_derivative("exact")
    artderiv.set_blend(model, 0.0)
    other = _run(model, x, g)
    torch.testing.assert_close(other[0], base[0])
    assert not torch.allclose(other[1], base[1])


def test_torchscript_save_load(tmp_path):
    model, x, g = _make_net_and_data()
    eager = _run(model, x, g)
    scripted = torch.jit.script(model)
    path = tmp_path / "catalog_net.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    graph = str(loaded.a1.graph) + str(loaded.a2.graph)
    assert "artderiv::activation" in graph
    _assert_runs_equal(_run(scripted, x, g), eager)
    _assert_runs_equal(_run(loaded, x, g), eager)
    # the blend buffer and derivative attributes survive the round trip
    assert loaded.a2.derivative_name == "like:silu" and float(loaded.a2.blend) == 0.25
    assert loaded.a1.derivative_name == "table" and list(loaded.a1.derivative_params) == [-1, 0, 1, 0, 1, 0]


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    try:
        model, x, g = _make_net_and_data()
        compiled = torch.compile(model, fullgraph=True)
        _assert_runs_equal(_run(compiled, x, g), _run(model, x, g), rtol=1e-5, atol=1e-6)
        # a new blend (a buffer updated in place) reaches the compiled graph
        artderiv.set_blend(model, 0.75)
        _assert_runs_equal(_run(compiled, x, g), _run(model, x, g), rtol=1e-5, atol=1e-6)
    finally:
        torch._dynamo.reset()


# ---------------------------------------------------------------------------
# 8. Discoverability: list_*, the command line, BlendSchedule
# ---------------------------------------------------------------------------

SHAPE_NAMES = set(SHAPE_DEFAULTS) | {"table", "like"}


def test_list_activations():
    acts = artderiv.list_activations()
    assert set(acts) == set(ALL_ACTIVATIONS)
    for name, defaults in ACT_DEFAULTS.items():
        assert list(acts[name]["params"]) == ACT_PARAM_NAMES.get(name, []), name
        assert list(acts[name]["params"].values()) == defaults, name
        assert acts[name]["default_derivative"] in SHAPE_NAMES, name
    # torch's own defaults, read from torch.nn
    assert acts["leaky_relu"]["params"]["negative_slope"] == nn.LeakyReLU().negative_slope
    assert acts["elu"]["params"]["alpha"] == nn.ELU().alpha
    assert acts["celu"]["params"]["alpha"] == nn.CELU().alpha
    assert acts["softplus"]["params"]["beta"] == nn.Softplus().beta
    assert acts["softplus"]["params"]["threshold"] == nn.Softplus().threshold
    assert acts["hardtanh"]["params"]["min_val"] == nn.Hardtanh().min_val
    assert acts["hardtanh"]["params"]["max_val"] == nn.Hardtanh().max_val
    # and the functional API has every activation with those defaults
    for name in ALL_ACTIVATIONS:
        if name == "gelu_tanh":
            assert inspect.signature(artderiv.gelu).parameters["approximate"].default == "none"
            continue
        sig_params = inspect.signature(getattr(artderiv, name)).parameters
        for pname, default in zip(ACT_PARAM_NAMES.get(name, []), ACT_DEFAULTS[name]):
            assert sig_params[pname].default == default, (name, pname)
        assert "derivative" in sig_params and sig_params["blend"].kind is inspect.Parameter.KEYWORD_ONLY


def test_list_derivatives():
    derivs = artderiv.list_derivatives()
    assert set(derivs) == SHAPE_NAMES
    for name, defaults in SHAPE_DEFAULTS.items():
        assert derivs[name]["params"] == defaults, name
        assert derivs[name]["formula"] and derivs[name]["source"], name
    assert derivs["table"]["params"] == {} and derivs["like"]["params"] == {}


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "artderiv", *args], cwd=_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_list():
    out = _cli("list")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for name in ALL_ACTIVATIONS + sorted(SHAPE_NAMES):
        assert f" {name} " in text or f" {name}\n" in text, name
    for snippet in ("alpha=1.67", "alpha=0.05", "negative_slope=0.01", "beta=1, threshold=20", "min_val=-1, max_val=1",
                    "slope=25", "w=1, c=0.01", "sigma=0.5", "eps=0.01", "c=0.05", "knots"):
        assert snippet in text, snippet
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert "alpha=4" in lines["sigmoid_prime"] and "alpha=2" in lines["atan"] and "threshold=0" in lines["step"]


def test_cli_plot(tmp_path):
    path = tmp_path / "relu.png"
    out = _cli("plot", "relu", "--derivative", "sigmoid:beta=2", "-o", str(path))
    assert out.returncode == 0, out.stderr
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, text", [
    (["relu", "-d", "sigmoid:beta=abc"], "'beta' must be a number"),
    (["relu", "0.3"], "takes at most 0 value"),
    (["leaky_relu", "x"], "activation parameters must be numbers"),
    (["relu", "-d", "nope"], "'nope'"),
    (["relu", "-d", "sigmoid:gamma=1"], "unknown parameter"),
    (["relu", "-d", "sigmoid:beta"], "'beta' is not name=value"),
    (["relu", "-d", "table:knots=0,values=1"], "knots and values must have the same length, 2 to"),
    (["relu", "-d", "table:knots=0/1,values=1/0,foo=2"], "table takes knots=a/b/... and values=a/b/...; got ['foo']"),
    (["relu", "-d", "like:elu:alpha=0.5:junk"], "like:<activation> takes its parameters after one more ':'"),
])
def test_cli_plot_bad_arguments_give_a_message(args, text, tmp_path):
    out = _cli("plot", *args, "-o", str(tmp_path / "p.png"))
    assert out.returncode == 2
    assert out.stderr.startswith("artderiv plot: error:") and text in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_cli_plot_unwritable_output_gives_a_message(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "missing" / "p.png"
    out = _cli("plot", "relu", "-o", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"artderiv plot: error: cannot write {str(path)!r}"), out.stderr


def test_cli_curves_are_the_chosen_derivative():
    """What `plot` draws: f, f' and the artificial derivative."""
    from artderiv.cli import curves, parse_derivative

    d = parse_derivative("sigmoid:beta=2")
    assert d == D.sigmoid(beta=2.0)
    assert parse_derivative("like:elu:alpha=0.5") == D.like("elu", alpha=0.5)
    assert parse_derivative("table:knots=-1/0/1,values=0/1/0") == D.table([-1, 0, 1], [0, 1, 0])
    x, f, exact, artificial = curves("relu", [], d)
    torch.testing.assert_close(f, torch.relu(x))
    torch.testing.assert_close(exact, (x > 0).double())
    torch.testing.assert_close(artificial, torch.sigmoid(2 * x), rtol=1e-14, atol=0)
    x, f, exact, artificial = curves("step", [0.5], D.atan(alpha=4.0))
    torch.testing.assert_close(artificial, 2.0 / (1 + (2 * math.pi * (x - 0.5)) ** 2), rtol=1e-14, atol=0)


def _two_module_model():
    return nn.Sequential(nn.Linear(3, 3), ann.ReLU(), nn.Linear(3, 3), ann.Step(derivative="atan"))


def test_blend_schedule_linear_in_place():
    model = _two_module_model()
    buffers = [model[1].blend, model[3].blend]
    ptrs = [b.data_ptr() for b in buffers]
    schedule = artderiv.BlendSchedule(model, steps=4)
    assert schedule.value() == 0.0 and all(float(b) == 0.0 for b in buffers)
    values = [schedule.step() for _ in range(6)]
    assert values == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert model[1].blend is buffers[0] and model[3].blend is buffers[1]
    assert [b.data_ptr() for b in buffers] == ptrs
    assert all(float(b) == 1.0 for b in buffers)
    # decreasing, from a start other than 0
    schedule = artderiv.BlendSchedule(model, start=0.8, end=0.2, steps=3)
    assert float(model[1].blend) == pytest.approx(0.8)
    assert [schedule.step() for _ in range(3)] == pytest.approx([0.6, 0.4, 0.2])
    assert float(model[3].blend) == pytest.approx(0.2)


def test_blend_schedule_cosine_and_gradient():
    model = _two_module_model()
    schedule = artderiv.BlendSchedule(model, start=0.1, end=0.9, steps=5, shape="cosine")
    for t in range(1, 8):
        v = schedule.step()
        f = min(t, 5) / 5
        assert v == pytest.approx(0.1 + 0.8 * (0.5 - 0.5 * math.cos(math.pi * f)), abs=1e-15)
        assert float(model[1].blend) == pytest.approx(v, abs=1e-7)
    # the schedule's value reaches the backward: relu with sigmoid, blend b
    model = _two_module_model()
    schedule = artderiv.BlendSchedule(model, steps=4)
    schedule.step()  # 0.25
    x = torch.linspace(-2, 2, 9)
    got = grad_of(model[1], x, torch.ones_like(x))
    torch.testing.assert_close(got, 0.75 * torch.sigmoid(x) + 0.25 * (x > 0).float())


def test_blend_schedule_state_dict_resumes():
    model = _two_module_model()
    schedule = artderiv.BlendSchedule(model, start=0.1, end=0.9, steps=10, shape="cosine")
    for _ in range(3):
        schedule.step()
    state = schedule.state_dict()
    assert state == {"start": 0.1, "end": 0.9, "steps": 10, "shape": "cosine", "t": 3}
    # a fresh model and schedule, as after loading a checkpoint (blend is not in the model's state_dict)
    model2 = _two_module_model()
    resumed = artderiv.BlendSchedule(model2, steps=2)
    resumed.load_state_dict(state)
    assert resumed.value() == schedule.value() and float(model2[1].blend) == pytest.approx(schedule.value())
    assert [resumed.step() for _ in range(3)] == [schedule.step() for _ in range(3)]
    assert float(model2[3].blend) == pytest.approx(schedule.value())
    with pytest.raises(ValueError, match="steps must be >= 1"):
        resumed.load_state_dict(dict(state, steps=0))


@pytest.mark.parametrize("kwargs", [{"start": -0.1}, {"start": 1.5}, {"end": 2.0}, {"end": -1.0}, {"steps": 0},
                                    {"steps": -3}, {"shape": "exponential"}],
                         ids=["start<0", "start>1", "end>1", "end<0", "steps0", "steps<0", "shape"])
def test_blend_schedule_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        artderiv.BlendSchedule(_two_module_model(), **kwargs)


def test_blend_schedule_steps_are_whole_numbers():
    model = _two_module_model()
    np = pytest.importorskip("numpy")
    # numbers with no fraction are fine, whatever their type (a checkpoint may hold tensors)
    for steps in (10, 1e1, np.int64(10), np.float32(10), torch.tensor(10), torch.tensor(10.0)):
        assert artderiv.BlendSchedule(model, steps=steps).steps == 10, steps
    for steps in (1.9, float("inf"), float("nan"), torch.tensor(2.5)):
        with pytest.raises(ValueError, match="artderiv.BlendSchedule: steps must be a whole number"):
            artderiv.BlendSchedule(model, steps=steps)
    for steps in ("10", None, [10]):
        with pytest.raises(TypeError, match="artderiv.BlendSchedule: steps must be a whole number"):
            artderiv.BlendSchedule(model, steps=steps)


def test_blend_schedule_needs_artderiv_modules():
    with pytest.raises(ValueError, match="no artderiv modules"):
        artderiv.BlendSchedule(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


# ---------------------------------------------------------------------------
# 9. Modules: torch.nn's forward and arguments; convert / restore
# ---------------------------------------------------------------------------

# (artderiv class, torch.nn class, non-default keyword arguments)
NN_CASES = [
    (ann.ReLU, nn.ReLU, None),
    (ann.ReLU6, nn.ReLU6, None),
    (ann.LeakyReLU, nn.LeakyReLU, {"negative_slope": 0.2}),
    (ann.ELU, nn.ELU, {"alpha": 0.5}),
    (ann.SELU, nn.SELU, None),
    (ann.CELU, nn.CELU, {"alpha": 2.0}),
    (ann.Softplus, nn.Softplus, {"beta": 2.0, "threshold": 5.0}),
    (ann.Sigmoid, nn.Sigmoid, None),
    (ann.Hardsigmoid, nn.Hardsigmoid, None),
    (ann.Tanh, nn.Tanh, None),
    (ann.Hardtanh, nn.Hardtanh, {"min_val": -2.0, "max_val": 0.5}),
    (ann.SiLU, nn.SiLU, None),
    (ann.Hardswish, nn.Hardswish, None),
    (ann.GELU, nn.GELU, {"approximate": "tanh"}),
    (ann.Mish, nn.Mish, None),
]
TORCH_ARGS = {
    nn.LeakyReLU: ["negative_slope"], nn.ELU: ["alpha"], nn.CELU: ["alpha"], nn.Softplus: ["beta", "threshold"],
    nn.Hardtanh: ["min_val", "max_val"], nn.GELU: ["approximate"],
}


def _module_x(dtype):
    gen = torch.Generator().manual_seed(11)
    head = torch.tensor([0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 2.5, -2.0, 0.5, 20.0, -20.0, NAN], dtype=f64)
    return torch.cat([head, torch.randn(300, generator=gen, dtype=f64) * 4]).to(dtype)


def _assert_same_forward(ours, theirs, x, piecewise):
    y, expected = ours(x), theirs(x)
    if piecewise:
        assert_bitwise_equal(y, expected)
    else:
        torch.testing.assert_close(y, expected, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, f64, torch.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("case", NN_CASES, ids=[c[1].__name__ for c in NN_CASES])
def test_module_forward_equals_torch_nn(case, dtype):
    ours_cls, theirs_cls, kwargs = case
    assert ours_cls.__name__ == theirs_cls.__name__
    x = _module_x(dtype)
    piecewise = theirs_cls in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh)
    ours, theirs = ours_cls(), theirs_cls()
    for arg in TORCH_ARGS.get(theirs_cls, []):
        assert getattr(ours, arg) == getattr(theirs, arg), arg  # torch.nn's defaults
    _assert_same_forward(ours, theirs, x, piecewise)
    if kwargs:
        _assert_same_forward(ours_cls(**kwargs), theirs_cls(**kwargs), x, piecewise)
        args = list(kwargs.values())  # torch.nn's positional order
        _assert_same_forward(ours_cls(*args), theirs_cls(*args), x, piecewise)
        for arg, v in kwargs.items():
            assert getattr(ours_cls(**kwargs), arg) == v


@pytest.mark.parametrize("case", [("Step", {"threshold": 0.5}), ("Sign", {}), ("BSiLU", {"alpha": 1.0}),
                                  ("NeLU", {"alpha": 0.5})], ids=lambda c: c[0])
def test_modules_without_torch_counterpart(case):
    cls_name, kwargs = case
    name = {"Step": "step", "Sign": "sign", "BSiLU": "b_silu", "NeLU": "nelu"}[cls_name]
    cls = getattr(ann, cls_name)
    assert getattr(nn, cls_name, None) is None
    x = _module_x(f64)
    for kw in ({}, kwargs):
        act = Act(name, list(kw.values()) if kw else None)
        torch.testing.assert_close(cls(**kw)(x), act.fwd64(x), equal_nan=True, rtol=1e-15, atol=1e-300)
        # the chosen derivative reaches the module's backward
        finite = x[torch.isfinite(x)]
        g = rand_grad(finite)
        if name in ("step", "sign"):
            got = grad_of(cls(**kw, derivative=D.atan(alpha=3.0)), finite, g)
            expected = g * 1.5 / (1 + (1.5 * math.pi * (finite - act.center)) ** 2)
        else:
            got = grad_of(cls(**kw, derivative="exact"), finite, g)
            expected = g * act.der64(finite)
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)


def _zoo():
    acts = [
        nn.ReLU(), nn.ReLU6(), nn.LeakyReLU(0.2), nn.ELU(alpha=0.5), nn.SELU(), nn.CELU(alpha=2.0),
        nn.Softplus(beta=2.0, threshold=5.0), nn.Sigmoid(), nn.Hardsigmoid(), nn.Tanh(), nn.Hardtanh(-2.0, 0.5),
        nn.SiLU(), nn.Hardswish(), nn.GELU(approximate="tanh"), nn.Mish(),
    ]
    torch.manual_seed(1)
    layers = []
    for a in acts:
        layers += [nn.Linear(6, 6), a]
    inner = nn.Sequential(*layers[:10])
    outer = nn.Sequential(inner, nn.ModuleList(layers[10:20]), nn.ModuleDict({"rest": nn.Sequential(*layers[20:])}))
    return outer


class _ZooNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = _zoo()

    def forward(self, x):
        x = self.body[0](x)
        for m in self.body[1]:
            x = m(x)
        return self.body[2]["rest"](x)


ALL_TORCH_TYPES = [nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Sigmoid,
                   nn.Hardsigmoid, nn.Tanh, nn.Hardtanh, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish]


def _activation_modules(model):
    return [m for m in model.modules() if type(m) in ALL_TORCH_TYPES or isinstance(m, ann.Activation)]


def _describe(m):
    args = {a: getattr(m, a) for a in TORCH_ARGS.get(type(m), [])}
    return type(m).__name__, args


def test_convert_restore_round_trip():
    model = _ZooNet()
    x = torch.randn(5, 6, dtype=torch.float32, generator=torch.Generator().manual_seed(2)) * 2
    before = [(type(m), _describe(m)) for m in _activation_modules(model)]
    assert [t for t, _ in before] == ALL_TORCH_TYPES
    y0 = model(x)
    g0 = grad_of(model, x, torch.ones(5, 6))

    converted = artderiv.convert(model, activations=ALL_TORCH_TYPES)
    assert converted is model
    mods = _activation_modules(model)
    assert all(isinstance(m, ann.Activation) for m in mods)
    assert [_describe(m)[0] for m in mods] == [d[0] for _, d in before]
    for m, (_, (_, args)) in zip(mods, before):
        for a, v in args.items():
            assert getattr(m, a) == v
    torch.testing.assert_close(model(x), y0, rtol=1e-6, atol=1e-7)
    # the converted model has artificial derivatives (relu's default: sigmoid)
    assert not torch.allclose(grad_of(model, x, torch.ones(5, 6)), g0)

    restored = artderiv.restore(model)
    assert restored is model
    after = [(type(m), _describe(m)) for m in _activation_modules(model)]
    assert after == before
    assert not any(isinstance(m, ann.Activation) for m in model.modules())
    torch.testing.assert_close(model(x), y0, rtol=0, atol=0)
    torch.testing.assert_close(grad_of(model, x, torch.ones(5, 6)), g0, rtol=0, atol=0)


def test_convert_by_names_is_the_same():
    names = [t.__name__ for t in ALL_TORCH_TYPES]
    a, b = _ZooNet(), _ZooNet()
    artderiv.convert(a, activations=ALL_TORCH_TYPES)
    artderiv.convert(b, activations=names)
    assert [type(m) for m in _activation_modules(a)] == [type(m) for m in _activation_modules(b)]
