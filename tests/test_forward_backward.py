"""Numerics: the forward is PyTorch's, the backward is the chosen derivative.

Every comparison is against an independent reference: the native PyTorch
function (forward, exact gradient) or the documented formula of the derivative
shape written with torch ops in float64 (conftest.py).
"""

import pytest
import torch

import artderiv
from conftest import (
    ACT_IDS,
    ACTIVATIONS,
    DERIV_IDS,
    DERIVATIVES,
    DTYPES,
    HALF_DTYPES,
    OPS,
    assert_bitwise_equal,
    assert_ulp_close,
    compute_dtype,
    dtype_id,
    expected_grad64,
    grad_of,
    make_grad,
    make_x,
)

RELU_FAMILY = ("relu", "leaky_relu")


def python_api(act):
    """The public Python function of an activation case: fn(x, derivative=None, blend=None)."""
    if act.name == "relu":
        return lambda x, derivative=None, blend=None: artderiv.relu(x, derivative, blend=blend)
    if act.name == "leaky_relu":
        if act.params:
            return lambda x, derivative=None, blend=None: artderiv.leaky_relu(
                x, act.params[0], derivative, blend=blend
            )
        return lambda x, derivative=None, blend=None: artderiv.leaky_relu(x, derivative=derivative, blend=blend)
    if act.name == "sigmoid":
        return lambda x, derivative=None, blend=None: artderiv.sigmoid(x, derivative, blend=blend)
    if act.name == "tanh":
        return lambda x, derivative=None, blend=None: artderiv.tanh(x, derivative, blend=blend)
    raise AssertionError(act.name)


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_forward_equals_torch(act, dtype):
    x = make_x(dtype, n=4099).reshape(-1)  # special values first, odd length
    expected = act.torch_fn(x)
    outputs = {
        "python": python_api(act)(x),
        "activation(name)": artderiv.activation(x, act.name, act.params),
        "op": OPS.activation(x, act.name, act.params),
        "forward op": OPS.activation_forward(x, act.name, act.params),
    }
    for label, y in outputs.items():
        assert y.dtype == dtype and y.shape == x.shape, label
        if act.name in RELU_FAMILY:
            assert_bitwise_equal(y, expected)
        else:
            torch.testing.assert_close(y, expected, equal_nan=True, msg=lambda m: f"{label}: {m}")
            # Signed zeros: tanh(-0.0) is -0.0, as in torch.
            zeros = expected == 0
            assert torch.equal(torch.signbit(y[zeros]), torch.signbit(expected[zeros])), label


def test_forward_special_values_explicitly():
    """Spelled-out expectations, independent of torch's functions."""
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, -2.0, 3.0])
    y = artderiv.relu(x)
    assert torch.isnan(y[0]) and y[1] == float("inf") and y[2] == 0
    assert y[3] == 0 and torch.signbit(y[3]), "relu(-0.0) must stay -0.0 like torch.relu"
    assert y[4] == 0 and not torch.signbit(y[4])
    assert y[5].item() == 0.0 and y[6].item() == 3.0
    yl = artderiv.leaky_relu(x, 0.5)
    assert torch.isnan(yl[0]) and yl[1] == float("inf") and yl[2] == -float("inf")
    assert torch.signbit(yl[3]) and yl[5].item() == -1.0 and yl[6].item() == 3.0
    ys = artderiv.sigmoid(x)
    assert torch.isnan(ys[0]) and ys[1].item() == 1.0 and ys[2].item() == 0.0 and ys[4].item() == 0.5
    yt = artderiv.tanh(x)
    assert torch.isnan(yt[0]) and yt[1].item() == 1.0 and yt[2].item() == -1.0 and torch.signbit(yt[3])


# ---------------------------------------------------------------------------
# derivative="exact" reproduces torch autograd
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("save", ["input", "auto"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_exact_gradient_equals_torch_autograd(act, dtype, save):
    x = make_x(dtype, n=4099)
    g = make_grad(x)
    expected = grad_of(act.torch_fn, x, g)
    got_op = grad_of(lambda t: OPS.activation(t, act.name, act.params, "exact", [], None, save), x, g)
    if save == "auto":  # what the Python API passes
        assert_bitwise_equal(grad_of(lambda t: python_api(act)(t, "exact"), x, g), got_op)
    if act.name in RELU_FAMILY:
        # Piecewise constant derivative: exactly torch's, kinks and NaN included
        # (the sign of zero gradients aside: grad * 0 vs torch's select).
        assert_bitwise_equal(got_op, expected, zero_sign=False)
    else:
        # Float32/64: a couple of ulp. Half types with save="input": torch
        # computes sigmoid/tanh backward from the rounded half output, artderiv
        # from x in float, so both are within ~1 half-eps of the (O(1))
        # intermediates: 2 ulp of the dtype, scaled to the magnitude of the
        # result or of the gradient. save="auto" reads the output, as torch.
        assert_ulp_close(got_op, expected, 2, magnitude=g, msg=f"{act.id} {dtype}")


# Activations whose f' follows from the output, and the shapes that read only f'.
OUTPUT_ACTS = ["relu", "sigmoid", "tanh"]
OUTPUT_SHAPES = [("exact", []), ("exact_plus", [0.1]), ("floor", [0.05]), ("identity", [])]


@pytest.mark.parametrize("blend", [None, 0.3], ids=["noblend", "blend0.3"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", OUTPUT_ACTS)
def test_save_output_gradient(act, dtype, blend):
    """save="output" keeps y and computes f' from it: the same gradient as
    save="input" up to the rounding of y (exactly torch's own for `exact`),
    and "auto" picks it for these activation/shape pairs. 40000 values: over
    one parallel grain, so split over threads (test_op_contract checks that
    results do not depend on sizes, placements or threads)."""
    x = make_x(dtype, n=40000)
    g = make_grad(x)
    b = None if blend is None else torch.tensor(blend, dtype=torch.float64)
    torch_fn = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[act]
    for shape, params in OUTPUT_SHAPES:
        def call(t, save):
            return OPS.activation(t, act, [], shape, params, b, save)

        from_output = grad_of(lambda t: call(t, "output"), x, g)
        assert_bitwise_equal(grad_of(lambda t: call(t, "auto"), x, g), from_output)
        # The backward op fed the output gives the same.
        y = call(x.detach(), "input")
        direct = OPS.activation_backward(g, y, "output", act, [], shape, params, b)
        assert_bitwise_equal(direct, from_output)
        from_input = grad_of(lambda t: call(t, "input"), x, g)
        if act == "relu" or dtype == torch.float64:
            # relu'(relu(x)) == relu'(x); float64 rounding of y is negligible
            tol = 0 if act == "relu" else 1e-12
            torch.testing.assert_close(from_output, from_input, rtol=tol, atol=tol, equal_nan=True)
        # The factor f'(y) (plus c, floored, blended) against float64 math on the rounded y.
        y64 = torch_fn(x.detach()).double()
        exact = {"relu": (y64 > 0).double(), "sigmoid": (1 - y64) * y64, "tanh": 1 - y64 * y64}[act]
        if act == "relu":
            exact = torch.where(y64.isnan(), torch.ones_like(y64), exact)
        factor = {"exact": exact, "exact_plus": exact + 0.1, "floor": exact.clamp_min(0.05),
                  "identity": torch.ones_like(exact)}[shape]
        if blend is not None:
            factor = (1 - blend) * factor + blend * exact
        assert_ulp_close(from_output, g.double() * factor, 4, magnitude=g,
                         magnitude_dtype=torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype,
                         msg=f"{act}:{shape} {dtype}")


def test_save_auto_chooses_by_formula():
    """"auto" saves the output only where the backward needs nothing else;
    autograd then rejects an in-place change of y (as for torch.sigmoid), and
    an in-place change of x no longer matters."""
    x = torch.randn(64, dtype=torch.float64, requires_grad=True)
    y = OPS.activation(x, "sigmoid", [], "exact_plus", [], None, "auto")
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # relu with the sigmoid shape reads x: "auto" saves x, so changing y is fine.
    x2 = torch.randn(64, dtype=torch.float64, requires_grad=True)
    y2 = OPS.activation(x2 * 1, "relu", [], "sigmoid", [], None, "auto")
    y2.mul_(2)
    y2.sum().backward()
    assert x2.grad is not None


def test_python_api_saves_output_for_sigmoid_and_tanh():
    x = torch.randn(64, dtype=torch.float64, requires_grad=True)
    for fn in (artderiv.sigmoid, artderiv.tanh):
        y = fn(x)  # default derivative exact_plus: reads only f'
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    layer = artderiv.nn.Sigmoid()
    y = layer(x)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_exact_relu_blocks_nonfinite_gradient_like_torch():
    x = torch.tensor([-1.0, -1.0, 0.0, 2.0])
    g = torch.tensor([float("inf"), float("nan"), float("nan"), float("inf")])
    expected = grad_of(torch.relu, x, g)
    assert expected.tolist()[:3] == [0.0, 0.0, 0.0]
    assert_bitwise_equal(grad_of(lambda t: artderiv.relu(t, "exact"), x, g), expected, zero_sign=False)


def test_relu_family_kink_conventions():
    """relu'(0) = 0 (also for -0.0), relu'(NaN) passes; leaky'(0) = slope."""
    x = torch.tensor([0.0, -0.0, float("nan"), 1e-30, -1e-30], dtype=torch.float64)
    g = torch.full_like(x, 3.0)
    gr = grad_of(lambda t: artderiv.relu(t, "exact"), x, g)
    assert gr.tolist() == [0.0, 0.0, 3.0, 3.0, 0.0]
    gl = grad_of(lambda t: artderiv.leaky_relu(t, 0.25, "exact"), x, g)
    assert gl.tolist() == [0.75, 0.75, 0.75, 3.0, 0.75]


# ---------------------------------------------------------------------------
# Every derivative shape x every activation x every dtype x blend
# ---------------------------------------------------------------------------

BLENDS = [
    None,
    ("float", 0.0),
    ("float", 0.3),
    ("float", 1.0),
    ("tensor64", 0.0),
    ("tensor64", 0.3),
    ("tensor32", 1.0),
]
BLEND_IDS = ["noblend" if b is None else f"{b[0]}{b[1]:g}" for b in BLENDS]
PARAM_NAMES = {"sigmoid": "beta", "exact_plus": "c", "atan": "alpha"}


def _derivative_object(deriv):
    if not deriv.params:
        return deriv.name  # a bare name: the shape with its default parameters
    return artderiv.Derivative(deriv.name, **{PARAM_NAMES[deriv.name]: deriv.params[0]})


@pytest.mark.parametrize("blend", BLENDS, ids=BLEND_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("deriv", DERIVATIVES, ids=DERIV_IDS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_derivative_matches_reference(act, deriv, dtype, blend):
    x = make_x(dtype, n=1024)
    g = make_grad(x)
    if blend is None:
        b_value, b_tensor = None, None
        got = grad_of(lambda t: OPS.activation(t, act.name, act.params, deriv.name, deriv.params, None, "input"), x, g)
    elif blend[0] == "float":
        b_value = blend[1]
        b_tensor = torch.tensor(b_value, dtype=torch.float64)
        # The Python API: a Derivative object (or name) and a float blend. It
        # passes save="auto" (f' from the rounded output where possible: see
        # test_save_output_gradient); the formula is checked on save="input".
        public = grad_of(
            lambda t: artderiv.activation(t, act.name, act.params, _derivative_object(deriv), blend=b_value), x, g
        )
        assert_bitwise_equal(
            public,
            grad_of(lambda t: OPS.activation(t, act.name, act.params, deriv.name, deriv.params, b_tensor, "auto"), x, g),
        )
        got = grad_of(
            lambda t: OPS.activation(t, act.name, act.params, deriv.name, deriv.params, b_tensor, "input"), x, g
        )
    else:
        b_value = blend[1]
        b_tensor = torch.tensor(b_value, dtype=torch.float64 if blend[0] == "tensor64" else torch.float32)
        got = grad_of(
            lambda t: OPS.activation(t, act.name, act.params, deriv.name, deriv.params, b_tensor, "input"), x, g
        )
    assert got.dtype == dtype
    expected = expected_grad64(act, deriv.name, deriv.params, x, g, b_value)
    # Half types are computed in float and rounded once; the magnitude term
    # covers the absolute error of O(1) intermediates (1 - tanh^2) in that type.
    ulps = 2 if dtype in HALF_DTYPES else 4
    assert_ulp_close(
        got, expected, ulps, magnitude=g, magnitude_dtype=compute_dtype(dtype), msg=f"{act.id} {deriv.id} {dtype}"
    )
    # The helper op computes the same thing without autograd.
    direct = OPS.activation_backward(g, x, "input", act.name, act.params, deriv.name, deriv.params, b_tensor)
    assert_bitwise_equal(direct, got)


def test_derivative_reference_is_not_trivial():
    """Guards the reference test: the shapes differ from each other and from exact."""
    x = make_x(torch.float64, n=256, specials=False)
    g = torch.ones_like(x)
    results = {}
    for deriv in DERIVATIVES:
        results[deriv.id] = grad_of(lambda t: OPS.activation(t, "relu", [], deriv.name, deriv.params), x, g)
    ids = list(results)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            assert not torch.equal(results[a], results[b]), (a, b)
    # blend moves the factor linearly from d(x) to f'(x)
    d = results["atan(3)"]
    e = results["exact"]
    mid = grad_of(lambda t: artderiv.relu(t, artderiv.derivatives.atan(alpha=3.0), blend=0.5), x, g)
    torch.testing.assert_close(mid, 0.5 * d + 0.5 * e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_python_api_passes_derivative_and_blend(act):
    """Wrappers with Derivative objects, names and a tensor blend reach the op unchanged."""
    x = make_x(torch.float64, n=300)
    g = make_grad(x)
    fn = python_api(act)
    cases = [
        (artderiv.derivatives.atan(alpha=3.0), 0.3, "atan", [3.0]),
        (artderiv.derivatives.sigmoid(4.0), None, "sigmoid", [4.0]),
        (artderiv.derivatives.exact_plus(c=0.3), torch.tensor(0.7), "exact_plus", [0.3]),
        ("atan", None, "atan", []),
        (artderiv.derivatives.exact(), None, "exact", []),
    ]
    for derivative, blend, name, params in cases:
        got = grad_of(lambda t: fn(t, derivative, blend), x, g)
        b = None if blend is None else float(blend)
        expected = expected_grad64(act, name, params, x, g, b)
        assert_ulp_close(got, expected, 4, magnitude=g, msg=f"{act.id} {derivative!r} blend={blend}")


# ---------------------------------------------------------------------------
# gradcheck: derivative="exact" is the true derivative
# ---------------------------------------------------------------------------


def _away_from_kinks(shape=(4, 6), seed=3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    return (x + torch.sign(x) * 1e-2).requires_grad_(True)  # |x| > 1e-2 >> gradcheck's eps


EXACT_EQUIVALENTS = [
    ("exact", None, None),
    ("exact_plus(c=0)", artderiv.derivatives.exact_plus(c=0.0), None),
    ("sigmoid+blend1", "sigmoid", 1.0),
    ("atan+blend1tensor", artderiv.derivatives.atan(alpha=5.0), "tensor1"),
]


@pytest.mark.parametrize("case", EXACT_EQUIVALENTS, ids=[c[0] for c in EXACT_EQUIVALENTS])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_gradcheck_exact(act, case):
    label, derivative, blend = case
    if derivative is None:
        derivative = "exact"
    if blend == "tensor1":
        blend = torch.tensor(1.0, dtype=torch.float64)
    x = _away_from_kinks()
    fn = python_api(act)
    assert torch.autograd.gradcheck(lambda t: fn(t, derivative, blend), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_gradcheck_detects_artificial_derivative(act):
    """The default (artificial) derivative is not the true one: gradcheck must say so."""
    x = _away_from_kinks()
    fn = python_api(act)
    ok = torch.autograd.gradcheck(lambda t: fn(t), (x,), eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=False)
    assert ok is False


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------

DEFAULT_DERIVATIVES = {"relu": ("sigmoid", [1.0]), "leaky_relu": ("sigmoid", [1.0]), "sigmoid": ("exact_plus", [0.05]), "tanh": ("exact_plus", [0.05])}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)
def test_default_derivative(act, dtype):
    x = make_x(dtype, n=1000)
    g = make_grad(x)
    name, params = DEFAULT_DERIVATIVES[act.name]
    # The Python API passes save="auto"; the op's schema default is "input".
    via_none = grad_of(lambda t: python_api(act)(t), x, g)
    assert_bitwise_equal(
        via_none, grad_of(lambda t: OPS.activation(t, act.name, act.params, name, params, None, "auto"), x, g)
    )
    via_default_name = grad_of(lambda t: OPS.activation(t, act.name, act.params, "default", [], None, "input"), x, g)
    via_schema_default = grad_of(lambda t: OPS.activation(t, act.name, act.params), x, g)
    explicit = grad_of(lambda t: OPS.activation(t, act.name, act.params, name, params, None, "input"), x, g)
    for got in (via_default_name, via_schema_default):
        assert_bitwise_equal(got, explicit)
    expected = expected_grad64(act, name, params, x, g)
    ulps = 2 if dtype in HALF_DTYPES else 4
    assert_ulp_close(explicit, expected, ulps, magnitude=g, magnitude_dtype=compute_dtype(dtype))
    # Not vacuous: the default is not the exact derivative.
    exact = grad_of(lambda t: python_api(act)(t, "exact"), x, g)
    assert not torch.equal(via_none.nan_to_num(), exact.nan_to_num())


def test_default_derivatives_spelled_out():
    x = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    g = torch.ones_like(x)
    sig = 1 / (1 + torch.exp(-x))
    torch.testing.assert_close(grad_of(artderiv.relu, x, g), sig, rtol=1e-15, atol=0)
    torch.testing.assert_close(grad_of(artderiv.leaky_relu, x, g), sig, rtol=1e-15, atol=0)
    torch.testing.assert_close(grad_of(artderiv.sigmoid, x, g), sig * (1 - sig) + 0.05, rtol=1e-14, atol=0)
    t = torch.tanh(x)
    torch.testing.assert_close(grad_of(artderiv.tanh, x, g), 1 - t * t + 0.05, rtol=1e-14, atol=0)
