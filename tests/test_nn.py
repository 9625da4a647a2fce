"""The module layer: artderiv.nn modules, convert / restore, set_derivative / set_blend.

Expected gradients come from the documented formulas (docs/ops.md), written
here with torch ops in float64 from the configuration the test *asked for*,
never read back from the module under test.
"""

import copy
import math
import os
import pickle
import sys
import warnings

import pytest
import torch
from torch import nn

# The extension is built in place; make the checkout importable without conftest.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import artderiv  # noqa: E402
from layer_refs import SPECS, factor64, make_parallel, rand  # noqa: E402
import artderiv.nn as ann  # noqa: E402
from artderiv import derivatives as D  # noqa: E402

_nn_mod = sys.modules["artderiv.nn"]

INPLACE_WARNING = "inplace=True is computed out of place"


# ---------------------------------------------------------------------------
# Independent float64 reference of the documented formulas
# ---------------------------------------------------------------------------


def input_grad(fn, x, g):
    leaf = x.detach().clone().requires_grad_(True)
    y = fn(leaf)
    y.backward(g)
    return y.detach(), leaf.grad


def assert_bitwise(actual, expected):
    """Same dtype/shape, NaN at the same places, equal values, same sign on zeros."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert torch.equal(actual.isnan(), expected.isnan())
    keep = ~expected.isnan()
    assert torch.equal(actual[keep], expected[keep])
    assert torch.equal(torch.signbit(actual[keep]), torch.signbit(expected[keep]))


SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-40, -1e-40, 1.0, -1.0, 50.0, -50.0]


def x_with_specials(dtype, n=257, seed=0):
    return torch.cat([torch.tensor(SPECIAL, dtype=dtype), rand(n, dtype=dtype, seed=seed)])


@pytest.fixture
def no_inplace_warning(monkeypatch):
    """Pretend the once-per-process warning was already given."""
    monkeypatch.setattr(_nn_mod, "_warned_inplace", True)


# (artderiv module factory, torch.nn counterpart, activation name, params)
MODULE_CASES = [
    (lambda **kw: ann.ReLU(**kw), nn.ReLU(), "relu", []),
    (lambda **kw: ann.LeakyReLU(**kw), nn.LeakyReLU(), "leaky_relu", [0.01]),
    (lambda **kw: ann.LeakyReLU(0.2, **kw), nn.LeakyReLU(0.2), "leaky_relu", [0.2]),
    (lambda **kw: ann.LeakyReLU(-1.5, **kw), nn.LeakyReLU(-1.5), "leaky_relu", [-1.5]),
    (lambda **kw: ann.Sigmoid(**kw), nn.Sigmoid(), "sigmoid", []),
    (lambda **kw: ann.Tanh(**kw), nn.Tanh(), "tanh", []),
]
MODULE_IDS = ["relu", "leaky_relu", "leaky_relu(0.2)", "leaky_relu(-1.5)", "sigmoid", "tanh"]
RELU_FAMILY = ("relu", "leaky_relu")

# (derivative as passed, name, params with defaults filled)
DERIV_CASES = [
    (None, None, None),
    ("default", None, None),
    ("exact", "exact", []),
    ("sigmoid", "sigmoid", [1.0]),
    (D.sigmoid(beta=4.0), "sigmoid", [4.0]),
    ("exact_plus", "exact_plus", [0.05]),
    (D.exact_plus(c=0.3), "exact_plus", [0.3]),
    ("atan", "atan", [2.0]),
    (D.atan(alpha=3.0), "atan", [3.0]),
]
DERIV_IDS = ["None", "'default'", "exact", "'sigmoid'", "sigmoid(4)", "'exact_plus'", "exact_plus(0.3)",
             "'atan'", "atan(3)"]


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", MODULE_CASES, ids=MODULE_IDS)
def test_forward_equals_torch_nn(case, dtype):
    make, reference, act, _ = case
    x = x_with_specials(dtype).reshape(2, -1)  # 2 x 134
    for derivative in (None, "atan"):  # the derivative never changes the forward
        module = make(derivative=derivative)
        y = module(x)
        expected = reference(x)
        if act in RELU_FAMILY:
            assert_bitwise(y, expected)
        else:
            torch.testing.assert_close(y, expected, equal_nan=True)
            assert y.dtype == dtype and y.shape == x.shape


def test_forward_keeps_shape_and_layout():
    x = rand(2, 3, 4, 5, dtype=torch.float32).contiguous(memory_format=torch.channels_last)
    for module, ref in [(ann.ReLU(), nn.ReLU()), (ann.Tanh(), nn.Tanh())]:
        y = module(x)
        assert y.shape == x.shape
        assert y.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, ref(x))


# ---------------------------------------------------------------------------
# Backward: the chosen derivative
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("deriv_case", DERIV_CASES, ids=DERIV_IDS)
@pytest.mark.parametrize("case", MODULE_CASES, ids=MODULE_IDS)
def test_gradient_is_chosen_derivative(case, deriv_case):
    make, _, act, act_params = case
    derivative, name, params = deriv_case
    module = make(derivative=derivative)
    x = rand(64, dtype=torch.float64, seed=3)
    g = rand(64, dtype=torch.float64, seed=4, scale=1.0)
    _, grad = input_grad(module, x, g)
    expected = g * factor64(act, act_params, name, params, x)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", MODULE_CASES, ids=MODULE_IDS)
def test_gradient_float32(case):
    make, _, act, act_params = case
    module = make(derivative=D.atan(alpha=3.0))
    x = rand(300, dtype=torch.float32, seed=5)
    g = rand(300, dtype=torch.float32, seed=6, scale=1.0)
    _, grad = input_grad(module, x, g)
    assert grad.dtype == torch.float32
    expected = (g.double() * factor64(act, act_params, "atan", [3.0], x)).float()
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", MODULE_CASES, ids=MODULE_IDS)
def test_exact_derivative_matches_torch_autograd(case):
    make, reference, _, _ = case
    x = rand(500, dtype=torch.float32, seed=7)
    g = rand(500, dtype=torch.float32, seed=8, scale=1.0)
    y, grad = input_grad(make(derivative="exact"), x, g)
    y_ref, grad_ref = input_grad(reference, x, g)
    # torch computes 1 - tanh(x)^2 from the rounded float32 output: absolute error ~eps
    torch.testing.assert_close(grad, grad_ref, rtol=2e-6, atol=1e-6)


def test_default_derivative_is_not_exact():
    """The default really is artificial: ReLU's gradient is nonzero below 0."""
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], dtype=torch.float64)
    _, grad = input_grad(ann.ReLU(), x, torch.ones_like(x))
    torch.testing.assert_close(grad, torch.sigmoid(x), rtol=1e-12, atol=0)
    assert (grad[:2] > 0).all()


@pytest.mark.parametrize("blend", [0.0, 0.25, 0.7, 1.0])
@pytest.mark.parametrize("case", MODULE_CASES, ids=MODULE_IDS)
def test_blend_mixes_artificial_and_exact(case, blend):
    make, _, act, act_params = case
    module = make(derivative=D.sigmoid(beta=2.0))
    module.set_blend(blend)
    x = rand(64, dtype=torch.float64, seed=9)
    g = rand(64, dtype=torch.float64, seed=10, scale=1.0)
    _, grad = input_grad(module, x, g)
    b32 = float(torch.tensor(blend, dtype=torch.float32))  # the buffer is float32
    expected = g * factor64(act, act_params, "sigmoid", [2.0], x, blend=b32)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)


def test_blend_buffer():
    m = ann.LeakyReLU(0.2)
    assert isinstance(m.blend, torch.Tensor)
    assert m.blend.dim() == 0 and m.blend.dtype == torch.float32 and float(m.blend) == 0.0
    assert dict(m.named_buffers()) == {"blend": m.blend}
    assert "blend" not in m.state_dict()  # non-persistent: torch.nn state_dicts load into converted models
    buf = m.blend
    m.set_blend(0.5)
    assert m.blend is buf and float(buf) == 0.5  # set in place, no new tensor


@pytest.mark.parametrize("bad", [-0.01, 1.01, -1.0, 2.0, math.nan, math.inf])
def test_module_set_blend_out_of_range_raises(bad):
    m = ann.ReLU()
    m.set_blend(0.4)
    with pytest.raises(ValueError, match="blend"):
        m.set_blend(bad)
    assert float(m.blend) == pytest.approx(0.4)  # unchanged


def test_module_in_float64_and_after_dtype_cast():
    module = ann.Tanh(derivative=D.atan(alpha=2.0))
    module.set_blend(0.5)
    module = module.double()
    x = rand(40, dtype=torch.float64, seed=11)
    g = torch.ones_like(x)
    _, grad = input_grad(module, x, g)
    torch.testing.assert_close(grad, factor64("tanh", [], "atan", [2.0], x, blend=0.5), rtol=1e-7, atol=1e-9)


def test_gradient_flows_to_parameters_through_module():
    torch.manual_seed(0)
    lin = nn.Linear(3, 4).double()
    act = ann.ReLU(derivative=D.sigmoid(beta=4.0))
    x = rand(5, 3, seed=12)
    h = lin(x)
    act(h).sum().backward()
    d = factor64("relu", [], "sigmoid", [4.0], h.detach())
    torch.testing.assert_close(lin.weight.grad, d.t() @ x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lin.bias.grad, d.sum(0), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# Attributes, derivative property, set_derivative on a module
# ---------------------------------------------------------------------------


def test_module_attributes():
    m = ann.LeakyReLU(0.2, derivative=D.atan(alpha=3.0))
    assert m.activation_name == "leaky_relu"
    assert m.activation_params == [0.2]
    assert m.negative_slope == 0.2 and m.inplace is False
    assert m.derivative_name == "atan" and m.derivative_params == [3.0]
    assert m.derivative == D.atan(alpha=3.0)
    assert ann.ReLU().derivative == D.sigmoid(beta=1.0)
    assert ann.LeakyReLU().derivative == D.sigmoid()
    assert ann.Sigmoid().derivative == D.exact_plus(c=0.05)
    assert ann.Tanh().derivative == D.exact_plus()
    assert ann.Tanh(derivative="exact").derivative_params == []
    # a bare name means that shape with its default parameters, filled in
    assert ann.ReLU(derivative="sigmoid").derivative_params == [1.0]
    assert isinstance(m, ann.Activation) and isinstance(m, nn.Module)


def test_module_set_derivative_changes_gradient():
    m = ann.LeakyReLU(0.1, derivative="exact")
    x = rand(50, seed=13)
    g = torch.ones_like(x)
    for derivative, name, params in [
        (D.atan(alpha=3.0), "atan", [3.0]),
        ("sigmoid", "sigmoid", [1.0]),
        (D.sigmoid(beta=5.0), "sigmoid", [5.0]),  # same shape, new parameter
        (None, "sigmoid", [1.0]),  # back to the activation's default
        ("exact_plus", "exact_plus", [0.05]),
    ]:
        m.set_derivative(derivative)
        assert m.derivative_name == name and m.derivative_params == params
        _, grad = input_grad(m, x, g)
        torch.testing.assert_close(grad, factor64("leaky_relu", [0.1], name, params, x), rtol=1e-12, atol=1e-14)


def test_bad_derivative_argument_raises():
    with pytest.raises(ValueError, match="nope"):
        ann.ReLU(derivative="nope")
    with pytest.raises(TypeError, match="derivative"):
        ann.ReLU(derivative=3.0)
    with pytest.raises(TypeError, match="derivative"):
        ann.Sigmoid(derivative=nn.Sigmoid())
    m = ann.Tanh(derivative="atan")
    with pytest.raises(ValueError, match="nope"):
        m.set_derivative("nope")
    assert m.derivative == D.atan()  # unchanged after the failed call


# ---------------------------------------------------------------------------
# torch.nn compatibility of the constructors, repr
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs, names",
    [(ann.ReLU, nn.ReLU, ["inplace"]), (ann.LeakyReLU, nn.LeakyReLU, ["negative_slope", "inplace"]),
     (ann.Sigmoid, nn.Sigmoid, []), (ann.Tanh, nn.Tanh, [])],
    ids=["relu", "leaky_relu", "sigmoid", "tanh"],
)
def test_constructor_arguments_follow_torch_nn(ours, theirs, names, no_inplace_warning):
    # defaults equal torch.nn's
    a, t = ours(), theirs()
    for name in names:
        assert getattr(a, name) == getattr(t, name), name
    # torch.nn's order, positionally and by keyword
    values = {"negative_slope": 0.25, "inplace": True}
    args = [values[n] for n in names]
    for m, ref in [(ours(*args), theirs(*args)), (ours(**{n: values[n] for n in names}), theirs(*args))]:
        for name in names:
            assert getattr(m, name) == getattr(ref, name), name
    # derivative is keyword-only: one positional argument too many is an error
    with pytest.raises(TypeError):
        ours(*(args + ["sigmoid"]))
    with pytest.raises(TypeError):
        ours(no_such_argument=1)
    assert ours(derivative="atan").derivative == D.atan()


def test_positional_and_keyword_arguments_as_torch_nn(no_inplace_warning):
    m = ann.LeakyReLU(0.2, True)
    assert m.negative_slope == 0.2 and m.inplace is True and m.activation_params == [0.2]
    m = ann.LeakyReLU(negative_slope=0.3, inplace=False)
    assert m.negative_slope == 0.3 and m.inplace is False
    assert ann.LeakyReLU().negative_slope == nn.LeakyReLU().negative_slope
    assert ann.ReLU(True).inplace is True
    assert ann.ReLU(inplace=True).inplace is True
    assert ann.ReLU().inplace is False
    x = rand(20, dtype=torch.float32, seed=14)
    assert_bitwise(ann.LeakyReLU(0.2, True)(x), nn.LeakyReLU(0.2)(x))
    with pytest.raises(TypeError):
        ann.ReLU(False, "sigmoid")  # derivative is keyword-only
    with pytest.raises(TypeError):
        ann.LeakyReLU(0.2, False, "atan")
    with pytest.raises(TypeError, match="multiple values for argument 'negative_slope'"):
        ann.LeakyReLU(0.1, negative_slope=0.2)  # as torch.nn.LeakyReLU(0.1, negative_slope=0.2)
    with pytest.raises(TypeError, match="multiple values for argument 'inplace'"):
        ann.ELU(1.0, True, inplace=False)


def test_repr(no_inplace_warning):
    assert repr(ann.LeakyReLU(0.2, derivative=D.atan(alpha=2))) == (
        "LeakyReLU(negative_slope=0.2, derivative=atan(alpha=2))"
    )
    assert repr(ann.LeakyReLU(0.2, derivative="atan")) == "LeakyReLU(negative_slope=0.2, derivative=atan(alpha=2))"
    assert repr(ann.LeakyReLU()) == "LeakyReLU(negative_slope=0.01, derivative=sigmoid(beta=1))"
    assert repr(ann.ReLU()) == "ReLU(derivative=sigmoid(beta=1))"
    assert repr(ann.ReLU(derivative=D.sigmoid(beta=4.0))) == "ReLU(derivative=sigmoid(beta=4))"
    assert repr(ann.Sigmoid()) == "Sigmoid(derivative=exact_plus(c=0.05))"
    assert repr(ann.Tanh(derivative=D.exact_plus(c=0.3))) == "Tanh(derivative=exact_plus(c=0.3))"
    assert repr(ann.ReLU(derivative="exact")).startswith("ReLU(derivative=exact")
    assert repr(ann.ReLU(inplace=True)) == "ReLU(inplace=True, derivative=sigmoid(beta=1))"
    assert repr(ann.LeakyReLU(0.2, True, derivative=D.atan(alpha=3.0))) == (
        "LeakyReLU(negative_slope=0.2, inplace=True, derivative=atan(alpha=3))"
    )
    m = ann.ReLU(derivative="atan")
    m.set_blend(0.25)
    assert repr(m) == "ReLU(derivative=atan(alpha=2), blend=0.25)"
    m.set_derivative(D.sigmoid(beta=0.5))
    m.set_blend(0.0)
    assert repr(m) == "ReLU(derivative=sigmoid(beta=0.5))"
    # short where that is exact, every digit where it is not: the repr rebuilds the object
    assert repr(ann.LeakyReLU(0.1234567891)) == "LeakyReLU(negative_slope=0.1234567891, derivative=sigmoid(beta=1))"
    d = D.sigmoid(beta=1.0000001)
    assert repr(d) == "sigmoid(beta=1.0000001)" and eval(repr(d), vars(D)) == d
    # inside a container, like torch.nn
    seq = nn.Sequential(nn.Linear(2, 2), ann.Tanh())
    assert "(1): Tanh(derivative=exact_plus(c=0.05))" in repr(seq)


# ---------------------------------------------------------------------------
# inplace=True
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, reference",
    [(lambda: ann.ReLU(inplace=True), nn.ReLU()), (lambda: ann.LeakyReLU(0.2, True), nn.LeakyReLU(0.2))],
    ids=["relu", "leaky_relu"],
)
def test_inplace_computes_out_of_place(make, reference, no_inplace_warning):
    m = make()
    assert m.inplace is True
    x = x_with_specials(torch.float32)
    before = x.clone()
    y = m(x)
    assert_bitwise(y, reference(before))
    assert y.data_ptr() != x.data_ptr()
    assert_bitwise(x, before)  # input not modified
    # the backward still uses the (unmodified) input: a non-leaf input works too
    leaf = rand(30, seed=15).requires_grad_(True)
    h = leaf * 1.0
    m(h).sum().backward()
    slope = [0.2] if isinstance(m, ann.LeakyReLU) else []
    torch.testing.assert_close(leaf.grad, factor64(m.activation_name, slope, "sigmoid", [1.0], leaf.detach()))


def _inplace_warnings(record):
    return [w for w in record if INPLACE_WARNING in str(w.message)]


def test_inplace_warns_once_per_process(monkeypatch):
    monkeypatch.setattr(_nn_mod, "_warned_inplace", False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ann.ReLU(inplace=True)
        ann.LeakyReLU(0.2, True)
        ann.ReLU(True)
    found = _inplace_warnings(record)
    assert len(found) == 1, [str(w.message) for w in record]
    assert issubclass(found[0].category, UserWarning)
    assert found[0].filename == __file__  # points at the user's line
    assert _nn_mod._warned_inplace is True
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ann.LeakyReLU(inplace=True)
        ann.ReLU(inplace=True)(torch.randn(3))
    assert _inplace_warnings(record) == []


def test_no_warning_without_inplace(monkeypatch):
    monkeypatch.setattr(_nn_mod, "_warned_inplace", False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ann.ReLU()
        ann.LeakyReLU(0.2, False)
        ann.Sigmoid()
        ann.Tanh()
        ann.ReLU()(torch.randn(3))
    assert _inplace_warnings(record) == []
    assert _nn_mod._warned_inplace is False


# ---------------------------------------------------------------------------
# convert / restore
# ---------------------------------------------------------------------------


class Nested(nn.Module):
    """Activations nested in containers, plus an attribute and a Sigmoid gate."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                nn.ModuleDict(
                    {
                        "body": nn.Sequential(
                            nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.LeakyReLU(0.2, inplace=True)
                        ),
                        "skip": nn.Identity(),
                    }
                ),
                nn.Linear(8, 8),
            ]
        )
        self.act = nn.ReLU(inplace=True)
        self.gate = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
        self.squash = nn.Tanh()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.blocks[0]["body"](x)
        h = self.act(self.blocks[1](h))
        h = h * self.gate(h)
        return self.head(self.squash(h))


def make_nested():
    torch.manual_seed(0)
    return Nested()


def relu_locations(model):
    return {
        "relu": model.blocks[0]["body"][1],
        "leaky": model.blocks[0]["body"][3],
        "act": model.act,
        "gate": model.gate[1],
        "tanh": model.squash,
    }


def artderiv_modules(model):
    return [m for m in model.modules() if isinstance(m, ann.Activation)]


def forward_and_grad(model, x):
    xi = x.detach().clone().requires_grad_(True)
    y = model(xi)
    y.backward(torch.ones_like(y))
    return y.detach(), xi.grad


def test_convert_default_converts_relu_family_only(no_inplace_warning):
    original = make_nested()
    model = copy.deepcopy(original)
    out = artderiv.convert(model)
    assert out is model  # in place
    loc = relu_locations(model)
    assert type(loc["relu"]) is ann.ReLU and loc["relu"].inplace is False
    assert type(loc["leaky"]) is ann.LeakyReLU
    assert loc["leaky"].negative_slope == 0.2 and loc["leaky"].inplace is True
    assert type(loc["act"]) is ann.ReLU and loc["act"].inplace is True
    assert type(loc["gate"]) is nn.Sigmoid  # gates stay
    assert type(loc["tanh"]) is nn.Tanh
    assert len(artderiv_modules(model)) == 3
    assert not any(type(m) in (nn.ReLU, nn.LeakyReLU) for m in model.modules())
    for m in artderiv_modules(model):
        assert m.derivative == D.sigmoid(beta=1.0)  # each activation's default
    # same forward, bitwise; the backward is no longer torch's
    x = rand(16, 6, dtype=torch.float32, seed=16) * 0.5
    y0, g0 = forward_and_grad(original, x)
    y1, g1 = forward_and_grad(model, x)
    assert_bitwise(y1, y0)
    assert not torch.allclose(g1, g0)
    # parameters untouched, state_dict compatible both ways
    assert model.state_dict().keys() == original.state_dict().keys()
    fresh = artderiv.convert(make_nested())
    fresh.load_state_dict(original.state_dict())
    assert_bitwise(fresh(x), y0)


@pytest.mark.parametrize(
    "activations",
    [[nn.Sigmoid], ["sigmoid"], ("Sigmoid",), [nn.ReLU, nn.LeakyReLU, "sigmoid"], ["relu", "leaky_relu", "sigmoid", "tanh"]],
    ids=["type", "name", "name-case", "mixed", "all-names"],
)
def test_convert_selected_activations(activations, no_inplace_warning):
    original = make_nested()
    model = artderiv.convert(copy.deepcopy(original), activations=activations)
    loc = relu_locations(model)
    wanted = set()
    for a in activations:
        wanted.add(a if isinstance(a, type) else
                   {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[a.lower()])
    assert type(loc["gate"]) is ann.Sigmoid
    assert loc["gate"].derivative == D.exact_plus(c=0.05)
    for key, torch_type, ours in [("relu", nn.ReLU, ann.ReLU), ("leaky", nn.LeakyReLU, ann.LeakyReLU),
                                  ("act", nn.ReLU, ann.ReLU), ("tanh", nn.Tanh, ann.Tanh)]:
        assert type(loc[key]) is (ours if torch_type in wanted else torch_type), key
    x = rand(16, 6, dtype=torch.float32, seed=17)
    torch.testing.assert_close(model(x), original(x))


def test_convert_with_derivative_sets_it_everywhere(no_inplace_warning):
    model = artderiv.convert(make_nested(), derivative=D.atan(alpha=3.0), activations=["relu", "leaky_relu", "sigmoid", "tanh"])
    mods = artderiv_modules(model)
    assert len(mods) == 5
    for m in mods:
        assert m.derivative == D.atan(alpha=3.0)
        assert (m.derivative_name, m.derivative_params) == ("atan", [3.0])
    model = artderiv.convert(make_nested(), derivative="exact")
    assert [m.derivative_name for m in artderiv_modules(model)] == ["exact"] * 3
    # with exact everywhere the converted model has torch's gradients
    x = rand(8, 6, dtype=torch.float32, seed=18)
    y0, g0 = forward_and_grad(make_nested(), x)
    y1, g1 = forward_and_grad(model, x)
    assert_bitwise(y1, y0)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)


def test_convert_derivative_reaches_the_gradient():
    model = artderiv.convert(nn.Sequential(nn.ReLU()), derivative=D.sigmoid(beta=4.0))
    x = rand(40, seed=19)
    _, grad = input_grad(model, x, torch.ones_like(x))
    torch.testing.assert_close(grad, torch.sigmoid(4.0 * x), rtol=1e-12, atol=1e-14)


def test_convert_bare_module(no_inplace_warning):
    r = artderiv.convert(nn.ReLU())
    assert type(r) is ann.ReLU and r.inplace is False and r.derivative == D.sigmoid()
    r = artderiv.convert(nn.ReLU(inplace=True), derivative="atan")
    assert type(r) is ann.ReLU and r.inplace is True and r.derivative == D.atan()
    lk = artderiv.convert(nn.LeakyReLU(0.3, True))
    assert type(lk) is ann.LeakyReLU and lk.negative_slope == 0.3 and lk.inplace is True
    s = nn.Sigmoid()
    assert artderiv.convert(s) is s  # not converted by default
    assert type(artderiv.convert(nn.Sigmoid(), activations=["sigmoid"])) is ann.Sigmoid
    assert type(artderiv.convert(nn.Tanh(), activations=[nn.Tanh])) is ann.Tanh


def test_convert_is_idempotent_and_skips_subclasses(no_inplace_warning):
    model = artderiv.convert(make_nested(), derivative="atan")
    ids = [id(m) for m in artderiv_modules(model)]
    artderiv.convert(model, derivative="exact")
    assert [id(m) for m in artderiv_modules(model)] == ids  # already converted: untouched
    assert all(m.derivative == D.atan() for m in artderiv_modules(model))


@pytest.mark.parametrize(
    "bad, exc, text",
    [
        (["no_such_activation"], ValueError, "no_such_activation"),
        (["relu", "bogus"], ValueError, "bogus"),
        ([nn.PReLU], TypeError, "PReLU"),
        ([nn.Softmax], TypeError, "Softmax"),
        ([nn.ReLU()], TypeError, "ReLU"),
        ([ann.ReLU], TypeError, "ReLU"),
        ([3], TypeError, "3"),
        ([None], TypeError, "None"),
    ],
    ids=["unknown-name", "one-unknown", "learnable-type", "unsupported-type", "instance", "artderiv-type", "int", "None"],
)
def test_convert_bad_activations_raise(bad, exc, text):
    model = make_nested()
    before = [type(m) for m in model.modules()]
    with pytest.raises(exc) as info:
        artderiv.convert(model, activations=bad)
    msg = str(info.value)
    assert "activations" in msg and text in msg
    assert "allowed" in msg
    assert [type(m) for m in model.modules()] == before  # nothing converted


@pytest.mark.parametrize("bare", ["sigmoid", nn.Sigmoid], ids=["str", "type"])
def test_convert_bare_selector_works_or_raises_clearly(bare):
    model = make_nested()
    try:
        artderiv.convert(model, activations=bare)
    except TypeError as e:  # "must be a list/iterable of types or names"
        assert "activations" in str(e)
        return
    loc = relu_locations(model)  # or: accepted as one selector
    assert type(loc["gate"]) is ann.Sigmoid and type(loc["relu"]) is nn.ReLU


def test_convert_bad_derivative_raises():
    model = make_nested()
    with pytest.raises(ValueError, match="nope"):
        artderiv.convert(model, derivative="nope")
    with pytest.raises(TypeError, match="derivative"):
        artderiv.convert(nn.ReLU(), derivative=1.5)


def test_restore_returns_torch_nn(no_inplace_warning):
    original = make_nested()
    x = rand(16, 6, dtype=torch.float32, seed=20)
    y0 = original(x)
    model = artderiv.convert(copy.deepcopy(original), derivative="atan", activations=["relu", "leaky_relu", "sigmoid", "tanh"])
    assert len(artderiv_modules(model)) == 5
    out = artderiv.restore(model)
    assert out is model
    assert artderiv_modules(model) == []
    loc = relu_locations(model)
    assert type(loc["relu"]) is nn.ReLU and loc["relu"].inplace is False
    assert type(loc["leaky"]) is nn.LeakyReLU
    assert loc["leaky"].negative_slope == 0.2 and loc["leaky"].inplace is True
    assert type(loc["act"]) is nn.ReLU and loc["act"].inplace is True
    assert type(loc["gate"]) is nn.Sigmoid
    assert type(loc["tanh"]) is nn.Tanh
    assert [type(m) for m in model.modules()] == [type(m) for m in original.modules()]
    assert_bitwise(model(x), y0)
    # gradients are torch's again
    _, g0 = forward_and_grad(original, x)
    _, g1 = forward_and_grad(model, x)
    assert_bitwise(g1, g0)


def test_restore_bare_modules_and_to_torch(no_inplace_warning):
    r = artderiv.restore(ann.ReLU(True, derivative="atan"))
    assert type(r) is nn.ReLU and r.inplace is True
    lk = artderiv.restore(ann.LeakyReLU(0.3))
    assert type(lk) is nn.LeakyReLU and lk.negative_slope == 0.3 and lk.inplace is False
    assert type(artderiv.restore(ann.Sigmoid())) is nn.Sigmoid
    assert type(artderiv.restore(ann.Tanh())) is nn.Tanh
    assert type(ann.LeakyReLU(0.5, True).to_torch()) is nn.LeakyReLU
    # from_torch / to_torch round trip
    m = ann.LeakyReLU.from_torch(nn.LeakyReLU(0.4, True), D.sigmoid(beta=2.0))
    assert m.negative_slope == 0.4 and m.inplace is True and m.derivative == D.sigmoid(beta=2.0)
    back = m.to_torch()
    assert back.negative_slope == 0.4 and back.inplace is True
    # a torch-only model is returned unchanged
    plain = nn.Sequential(nn.Linear(2, 2), nn.GELU())
    assert artderiv.restore(plain) is plain and type(plain[1]) is nn.GELU


# ---------------------------------------------------------------------------
# set_derivative / set_blend on eager models
# ---------------------------------------------------------------------------


def parallel_expected(xs, g, derivs, blends=(0.0, 0.0, 0.0, 0.0)):
    """derivs: per row (name or None for the default, params)."""
    rows = []
    for i, (act, p) in enumerate(SPECS):
        name, params = derivs[i]
        rows.append(g[i] * factor64(act, p, name, params, xs[i], blend=blends[i]))
    return torch.stack(rows)


def test_set_derivative_on_model():
    model = make_parallel()
    xs = rand(4, 50, seed=21)
    g = rand(4, 50, seed=22, scale=1.0)
    _, grad = input_grad(model, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [(None, None)] * 4), rtol=1e-12, atol=1e-14)

    out = artderiv.set_derivative(model, D.atan(alpha=3.0))
    assert out is model
    assert all(m.derivative == D.atan(alpha=3.0) for m in model.acts)
    _, grad = input_grad(model, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("atan", [3.0])] * 4), rtol=1e-12, atol=1e-14)

    artderiv.set_derivative(model, "exact")
    _, grad = input_grad(model, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("exact", [])] * 4), rtol=1e-12, atol=1e-14)

    artderiv.set_derivative(model, None)  # each activation's own default
    assert [m.derivative_name for m in model.acts] == ["sigmoid", "sigmoid", "exact_plus", "exact_plus"]
    _, grad = input_grad(model, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [(None, None)] * 4), rtol=1e-12, atol=1e-14)


def test_set_derivative_leaves_torch_modules_alone():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), ann.Tanh())
    artderiv.set_derivative(model, "atan")
    assert type(model[1]) is nn.ReLU
    assert model[2].derivative == D.atan()
    with pytest.raises(ValueError, match="nope"):
        artderiv.set_derivative(model, "nope")
    with pytest.raises(TypeError, match="derivative"):
        artderiv.set_derivative(model, 2.0)


def test_set_blend_on_model():
    model = make_parallel()
    artderiv.set_derivative(model, D.sigmoid(beta=2.0))
    xs = rand(4, 50, seed=23)
    g = rand(4, 50, seed=24, scale=1.0)
    derivs = [("sigmoid", [2.0])] * 4
    for b in (0.3, 1.0, 0.0, 0.65):
        out = artderiv.set_blend(model, b)
        assert out is model
        assert all(float(m.blend) == pytest.approx(b) for m in model.acts)
        _, grad = input_grad(model, xs, g)
        torch.testing.assert_close(grad, parallel_expected(xs, g, derivs, [b] * 4), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [-0.1, 1.5, 2, math.nan, -math.inf])
def test_set_blend_out_of_range_raises(bad):
    model = make_parallel()
    artderiv.set_blend(model, 0.2)
    with pytest.raises(ValueError, match="blend"):
        artderiv.set_blend(model, bad)
    assert all(float(m.blend) == pytest.approx(0.2) for m in model.acts)  # unchanged


def test_model_deepcopy_keeps_configuration():
    model = make_parallel()
    artderiv.set_derivative(model, D.atan(alpha=3.0))
    artderiv.set_blend(model, 0.4)
    clone = copy.deepcopy(model)
    xs = rand(4, 20, seed=25)
    g = torch.ones_like(xs)
    _, g0 = input_grad(model, xs, g)
    _, g1 = input_grad(clone, xs, g)
    assert_bitwise(g1, g0)
    artderiv.set_blend(clone, 0.0)  # the copy has its own buffers
    assert float(model.acts[0].blend) == pytest.approx(0.4)


# ---------------------------------------------------------------------------
# Every torch.nn type the library maps (as many as this build's catalog has)
# ---------------------------------------------------------------------------


def _mapped_torch_types():
    """torch.nn types whose artderiv module's activation is in the loaded catalog."""
    in_catalog = {a["name"] for a in artderiv.catalog()["activations"]}
    found = []
    for torch_type, ours in ann.MODULE_FOR_TORCH.items():
        names = [n for n in in_catalog if getattr(ann, "module_class", lambda n: None)(n) is ours]
        if names or ours in (ann.ReLU, ann.LeakyReLU, ann.Sigmoid, ann.Tanh):
            found.append(torch_type)
    return sorted(found, key=lambda t: t.__name__)


MAPPED = _mapped_torch_types()


@pytest.mark.parametrize("torch_type", MAPPED, ids=[t.__name__ for t in MAPPED])
def test_every_mapped_type_converts_and_restores(torch_type):
    original = torch_type()
    model = nn.Sequential(nn.Linear(4, 6), original)
    x = rand(9, 4, dtype=torch.float32, seed=30)
    y0 = model(x)
    converted = artderiv.convert(copy.deepcopy(model), activations=[torch_type], derivative="exact")
    assert type(converted[1]) is ann.MODULE_FOR_TORCH[torch_type]
    assert converted[1].derivative_name == "exact"
    y1 = converted(x)
    torch.testing.assert_close(y1, y0)
    # exact derivative: torch's input gradient
    _, g0 = forward_and_grad(model, x)
    _, g1 = forward_and_grad(converted, x)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)
    restored = artderiv.restore(converted)
    assert type(restored[1]) is torch_type
    assert vars(restored[1]).keys() >= {k for k in vars(original) if not k.startswith("_")}
    for k, v in vars(original).items():
        if not k.startswith("_"):
            assert getattr(restored[1], k) == v, k
    torch.testing.assert_close(restored(x), y0)


# ---------------------------------------------------------------------------
# convert / restore: shared modules, hooks, training mode, TorchScript,
# modules without a torch.nn counterpart, errors leave the model unchanged
# ---------------------------------------------------------------------------


def test_convert_and_restore_keep_a_shared_module_shared():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    artderiv.convert(model, derivative="atan")
    assert type(model[1]) is ann.ReLU and model[3] is model[1]  # one replacement, in both places
    artderiv.restore(model)
    assert type(model[1]) is nn.ReLU and model[3] is model[1]


def test_convert_and_restore_carry_hooks_and_training():
    calls = []
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    act = model[1]
    handles = [
        act.register_forward_pre_hook(lambda m, args: calls.append("pre")),
        act.register_forward_pre_hook(lambda m, args, kwargs: calls.append("pre_kw"), with_kwargs=True),
        act.register_forward_hook(lambda m, args, out: calls.append("fwd")),
        act.register_forward_hook(lambda m, args, kwargs, out: calls.append("fwd_kw"), with_kwargs=True,
                                  always_call=True),
        act.register_full_backward_pre_hook(lambda m, g: calls.append("bwd_pre")),
        act.register_full_backward_hook(lambda m, gi, go: calls.append("bwd")),
    ]
    model.eval()
    x = rand(4, 3, dtype=torch.float32, seed=40).requires_grad_(True)
    expected = ["pre", "pre_kw", "fwd", "fwd_kw", "bwd_pre", "bwd"]
    for change, kind in ((artderiv.convert, ann.ReLU), (artderiv.restore, nn.ReLU)):
        change(model)
        assert type(model[1]) is kind
        assert model[1].training is False
        calls.clear()
        model(x).sum().backward()
        assert calls == expected, kind
    artderiv.convert(model)
    for h in handles:  # the handles still remove the hooks from the replacement
        h.remove()
    calls.clear()
    model(x).sum().backward()
    assert calls == []
    assert artderiv.convert(nn.ReLU().eval()).training is False


def test_convert_and_restore_reject_torchscript(no_inplace_warning):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation
        scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        scripted_ours = torch.jit.script(nn.Sequential(nn.Linear(2, 2), ann.ReLU()))
    with pytest.raises(TypeError, match="convert the eager model before"):
        artderiv.convert(scripted)
    with pytest.raises(TypeError, match="restore the eager model before"):
        artderiv.restore(scripted_ours)


def test_restore_leaves_modules_without_torch_counterpart():
    model = artderiv.convert(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3)))
    model.append(ann.Step(0.5))
    artderiv.restore(model)
    assert type(model[1]) is nn.ReLU and type(model[3]) is ann.Step
    step = ann.Sign()
    assert artderiv.restore(step) is step
    for m in (ann.Step(), ann.Sign(), ann.Activation("relu", [], "atan")):
        with pytest.raises(TypeError, match=f"artderiv.nn.{type(m).__name__} has no torch.nn counterpart"):
            m.to_torch()


def test_convert_moves_hooks_off_the_replaced_module():
    """A module another model still holds keeps no hooks that would fire for
    the converted model's replacement (the dicts move, they are not shared)."""
    relu = nn.ReLU()
    a, b = nn.Sequential(nn.Linear(2, 2), relu), nn.Sequential(nn.Linear(2, 2), relu)
    artderiv.convert(a)
    calls = []
    a[1].register_forward_hook(lambda *args: calls.append("a"))
    b(torch.randn(1, 2))
    assert calls == [] and b[1] is relu and not relu._forward_hooks


def test_module_pickled_before_blend_was_stored_keeps_its_blend():
    m = ann.ReLU()
    m.set_blend(0.25)
    del m.__dict__["_blend"]  # as an instance pickled by an earlier version
    m2 = pickle.loads(pickle.dumps(m))
    m2.blend.fill_(0.9)  # garbage, as after to_empty()
    m2.reset_parameters()
    assert float(m2.blend) == 0.25


def test_convert_error_leaves_the_model_unchanged():
    model = nn.Sequential(nn.ReLU(), nn.Softplus(beta=0.0))  # accepted by torch.nn, not by the op
    with pytest.raises(ValueError, match="beta"):
        artderiv.convert(model, activations=["relu", "softplus"])
    assert [type(m) for m in model] == [nn.ReLU, nn.Softplus]


# ---------------------------------------------------------------------------
# set_derivative / set_blend / BlendSchedule: no silent no-ops
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cast", [lambda m: m.double(), lambda m: m.half(), lambda m: m.to(torch.float64)],
                         ids=["double", "half", "to"])
def test_blend_schedule_follows_a_cast_model(cast):
    model = artderiv.convert(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU()))
    schedule = artderiv.BlendSchedule(model, steps=4)
    cast(model)  # new blend buffers in the modules
    for _ in range(2):
        schedule.step()
    assert [float(model[i].blend) for i in (1, 3)] == [0.5, 0.5]
    assert schedule.buffers[0] is model[1].blend and schedule.buffers[1] is model[3].blend


def test_set_derivative_and_set_blend_without_artderiv_modules_raise():
    plain = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match="set_derivative: the model has no artderiv modules"):
        artderiv.set_derivative(plain, "atan")
    with pytest.raises(ValueError, match="set_blend: the model has no artderiv modules"):
        artderiv.set_blend(plain, 0.5)
    # a frozen TorchScript model has its artderiv modules folded into the graph
    model = artderiv.convert(nn.Sequential(nn.Linear(2, 2), nn.ReLU())).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.freeze(torch.jit.script(model))
    with pytest.raises(ValueError, match="freeze"):
        artderiv.set_derivative(frozen, "exact")
    with pytest.raises(ValueError, match="freeze"):
        artderiv.set_blend(frozen, 1.0)


# ---------------------------------------------------------------------------
# Constructors: argument checks, GELU.approximate, meta-device initialisation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, arg",
    [(lambda: ann.ReLU("atan"), "inplace"), (lambda: ann.ReLU(D.atan()), "inplace"),
     (lambda: ann.LeakyReLU(0.2, "atan"), "inplace"), (lambda: ann.LeakyReLU("atan"), "negative_slope"),
     (lambda: ann.ELU(D.sigmoid()), "alpha")],
    ids=["relu-str", "relu-object", "leaky-inplace", "leaky-slope", "elu-object"],
)
def test_positional_derivative_is_a_type_error(make, arg):
    with pytest.raises(TypeError, match=f"ReLU|ELU: argument '{arg}' must be .*pass the derivative by keyword"):
        make()


def test_repr_survives_a_hand_assigned_derivative_name():
    m = ann.ReLU()
    m.derivative_name = "foo"  # bypassing set_derivative: the forward refuses it, repr still works
    assert repr(m) == "ReLU(derivative_name='foo', derivative_params=[1.0])"
    with pytest.raises(ValueError, match="unknown derivative 'foo'; allowed: exact"):
        m.derivative


def test_derivative_property_refuses_hand_assigned_extra_parameters():
    """More derivative_params than the shape takes: the op refuses them, and so
    does the derivative property (it used to drop the extra ones silently)."""
    m = ann.ReLU()
    m.derivative_params = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"artderiv.derivatives.sigmoid takes at most 1 value\(s\) \(beta\), got 2"):
        m.derivative
    with pytest.raises(ValueError, match="takes at most 1 value"):
        m(torch.randn(3))
    assert repr(m) == "ReLU(derivative_name='sigmoid', derivative_params=[1.0, 2.0])"


def test_parameter_attribute_takes_numbers_only():
    m = ann.LeakyReLU()
    m.negative_slope = 0.3
    assert m.activation_params == [0.3]
    with pytest.raises(TypeError, match="artderiv.nn.LeakyReLU: 'negative_slope' must be a number, got 'abc'"):
        m.negative_slope = "abc"
    assert m.activation_params == [0.3]


def test_inplace_takes_what_torch_nn_takes(no_inplace_warning):
    """Any value torch.nn's inplace takes (it is only truth-tested), so that
    convert() copies it over; only a str or a derivative object is an error."""
    np = pytest.importorskip("numpy")
    for value, want in ((1, True), (0, False), (np.True_, True), (np.int64(0), False), (torch.tensor(True), True),
                        (None, False)):
        assert ann.ReLU(inplace=value).inplace is want, value
        converted = artderiv.convert(nn.Sequential(nn.ReLU(inplace=value)))
        assert type(converted[0]) is ann.ReLU and converted[0].inplace is want, value


@pytest.mark.parametrize(
    "make, text",
    [(lambda: ann.Hardtanh(1.0, -1.0), "min_val must be less than max_val"),
     (lambda: ann.Hardtanh(0.5, 0.5), "min_val must be less than max_val"),
     (lambda: ann.Softplus(beta=0.0), "'activation_params': parameter 'beta' must be positive"),
     (lambda: ann.CELU(0.0), "'activation_params': parameter 'alpha' must be non-zero")],
    ids=["hardtanh-reversed", "hardtanh-empty", "softplus-beta0", "celu-alpha0"],
)
def test_bad_activation_parameters_raise_at_construction(make, text):
    with pytest.raises(ValueError, match=text):
        make()


def test_gelu_approximate_is_assignable():
    x = rand(50, dtype=torch.float64, seed=41)
    g = ann.GELU(derivative="exact")
    g.approximate = "tanh"
    assert g.activation_name == "gelu_tanh" and repr(g) == "GELU(approximate='tanh', derivative=exact())"
    torch.testing.assert_close(g(x), nn.GELU(approximate="tanh")(x), rtol=1e-12, atol=1e-14)
    _, grad = input_grad(g, x, torch.ones_like(x))
    _, expected = input_grad(nn.GELU(approximate="tanh"), x, torch.ones_like(x))
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    assert type(artderiv.restore(g)) is nn.GELU and artderiv.restore(g).approximate == "tanh"
    g.approximate = "none"
    assert g.activation_name == "gelu" and g.approximate == "none"
    torch.testing.assert_close(g(x), nn.GELU()(x), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="'approximate' is 'fast'"):
        g.approximate = "fast"
    assert g.approximate == "none"


def test_gelu_scripts_saves_and_loads(tmp_path):
    g = ann.GELU("tanh", derivative="atan")
    x = rand(30, seed=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(g)
        scripted.save(str(tmp_path / "gelu.pt"))
        loaded = torch.jit.load(str(tmp_path / "gelu.pt"))
    for m in (scripted, loaded):
        assert m.activation_name == "gelu_tanh"
        y0, g0 = input_grad(g, x, torch.ones_like(x))
        y1, g1 = input_grad(m, x, torch.ones_like(x))
        assert_bitwise(y1, y0)
        assert_bitwise(g1, g0)


def test_meta_device_initialisation():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(2, 2), ann.ReLU(derivative="atan"), nn.Linear(2, 2), ann.Tanh())
        model[1].set_blend(0.25)
    assert model[1].blend.is_meta
    assert "(1): ReLU(derivative=atan(alpha=2), blend=0.25)" in repr(model)  # no value read from meta
    model.to_empty(device="cpu")
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    assert float(model[1].blend) == 0.25 and float(model[3].blend) == 0.0  # the configured blends
    m = ann.ReLU()
    artderiv.set_blend(nn.Sequential(m), 0.75)  # set through the model: also the value reset restores
    m.blend.fill_(math.nan)
    m.reset_parameters()
    assert float(m.blend) == 0.75
