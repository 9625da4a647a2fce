"""The op contract: registrations, layouts, modes, determinism, errors, catalog."""

import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import artderiv
from conftest import (
    ACTIVATIONS,
    DTYPES,
    OPS,
    SPECIALS,
    assert_bitwise_equal,
    assert_ulp_close,
    dtype_id,
    expected_grad64,
    grad_of,
    make_grad,
    make_x,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (activation, activation_params, derivative, derivative_params, blend or None)
COMBOS = [
    ("relu", [], "default", [], None),
    ("leaky_relu", [0.2], "atan", [3.0], None),
    ("sigmoid", [], "exact_plus", [0.1], 0.3),
    ("tanh", [], "exact", [], None),
    ("relu", [], "sigmoid", [4.0], 1.0),
]
COMBO_IDS = [f"{a}-{d}" + ("" if b is None else f"-blend{b:g}") for a, _, d, _, b in COMBOS]


def _blend(b, dtype=torch.float64):
    return None if b is None else torch.tensor(b, dtype=dtype)




def make_layout(kind, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)

    if kind == "contiguous":
        return randn(3, 4, 5)
    if kind == "transposed":
        return randn(3, 5, 4).transpose(1, 2)
    if kind == "sliced":
        return randn(6, 9)[1::2, 2:7]
    if kind == "channels_last":
        return randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    if kind == "expanded":
        return randn(1, 5).expand(4, 5)
    raise AssertionError(kind)


LAYOUTS = ["contiguous", "transposed", "sliced", "channels_last"]

# ---------------------------------------------------------------------------
# opcheck
# ---------------------------------------------------------------------------

# The default test_utils minus test_aot_dispatch_dynamic, which is tested
# separately below (it fails: see test_opcheck_dynamic_shapes).
STATIC_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_static")


@pytest.mark.parametrize("requires_grad", [False, True], ids=["nograd", "grad"])
@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_opcheck_activation(layout, combo, requires_grad):
    act, ap, deriv, dp, b = combo
    x = make_layout(layout).requires_grad_(requires_grad)
    torch.library.opcheck(OPS.activation.default, (x, act, ap, deriv, dp, _blend(b), "input"), test_utils=STATIC_UTILS)


# save="output" and "auto" (which picks output here): y is saved instead of x.
SAVE_COMBOS = [("sigmoid", "exact_plus", [0.1], None, "output"), ("tanh", "exact", [], 0.3, "auto"),
               ("relu", "floor", [0.05], None, "output")]


@pytest.mark.parametrize("combo", SAVE_COMBOS, ids=[f"{a}-{d}-{s}" for a, d, _, _, s in SAVE_COMBOS])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_save_output(layout, combo):
    act, deriv, dp, b, save = combo
    x = make_layout(layout).requires_grad_()
    torch.library.opcheck(OPS.activation.default, (x, act, [], deriv, dp, _blend(b), save), test_utils=STATIC_UTILS)
    y = OPS.activation(x.detach(), act, [], "exact", [], None, "input")
    g = make_layout(layout, seed=1)
    torch.library.opcheck(OPS.activation_backward.default, (g, y, "output", act, [], deriv, dp, _blend(b)))


@pytest.mark.parametrize("combo", COMBOS[:4], ids=COMBO_IDS[:4])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_opcheck_helper_ops(layout, combo):
    act, ap, deriv, dp, b = combo
    x = make_layout(layout)
    torch.library.opcheck(OPS.activation_forward.default, (x, act, ap), test_utils=STATIC_UTILS)
    g = make_layout(layout, seed=1)
    # activation_backward passes the full default set, dynamic shapes included.
    torch.library.opcheck(OPS.activation_backward.default, (g, x, "input", act, ap, deriv, dp, _blend(b)))




@pytest.mark.parametrize("op", ["activation-nograd", "activation-grad", "activation_forward"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_dynamic_shapes(layout, op):
    x = make_layout(layout).requires_grad_(op == "activation-grad")
    if op == "activation_forward":
        overload, args = OPS.activation_forward.default, (x, "leaky_relu", [0.2])
    else:
        overload, args = OPS.activation.default, (x, "relu", [], "sigmoid", [2.0], None, "input")
    torch.library.opcheck(overload, args, test_utils="test_aot_dispatch_dynamic")


# activation.plain(x, activation, derivative, activation_params): the op with its defaults and
# save="auto", a shorter schema for eager Python calls (see csrc/ops.cpp).
PLAIN_CASES = [("relu", [], "default"), ("relu", [], "sigmoid"), ("sigmoid", [], "exact_plus"), ("tanh", [], "exact"),
               ("step", [0.5], "atan"), ("leaky_relu", [0.2], "default"), ("silu", [], "like:elu")]


@pytest.mark.parametrize("requires_grad", [False, True], ids=["nograd", "grad"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_plain_overload(layout, requires_grad):
    x = make_layout(layout).requires_grad_(requires_grad)
    torch.library.opcheck(OPS.activation.plain, (x, "relu", "sigmoid"), test_utils=STATIC_UTILS)
    torch.library.opcheck(OPS.activation.plain, (x, "leaky_relu", "atan", [0.2]), test_utils=STATIC_UTILS)
    torch.library.opcheck(OPS.activation.plain, (x, "sigmoid", "exact_plus"), test_utils="test_aot_dispatch_dynamic")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("case", PLAIN_CASES, ids=[f"{a}-{d}" for a, _, d in PLAIN_CASES])
def test_plain_overload_is_the_op(case, dtype):
    act, params, deriv = case
    x = make_layout("transposed", dtype)
    g = make_grad(x)
    # Same forward and backward as the op with save="auto" (for sigmoid, tanh
    # and relu with an f'-only shape: the backward reads y), directly and
    # through the public function, whose eager calls use it.
    want = lambda t: OPS.activation.default(t, act, params, deriv, [], None, "auto")  # noqa: E731
    for call in (lambda t: OPS.activation.plain(t, act, deriv, params),
                 lambda t: getattr(artderiv, act)(t, *params, derivative=deriv)):
        assert_bitwise_equal(call(x), want(x))
        assert_bitwise_equal(grad_of(call, x, g), grad_of(want, x, g))
    assert "ActivationFunction" in OPS.activation.plain(x.detach().requires_grad_(), act, deriv, params).grad_fn.name()
    # It checks its arguments as the op does.
    with pytest.raises(ValueError, match=f"artderiv.{act}: argument 'derivative' is 'nope'"):
        OPS.activation.plain(x, act, "nope", params)
    with pytest.raises(ValueError, match=f"artderiv.{act}: argument 'activation_params'"):
        OPS.activation.plain(x, act, deriv, [math.nan] * 3)


def test_plain_overload_saves_by_auto():
    # save="auto": y where the backward needs only f' (sigmoid with
    # exact_plus), x where the shape reads x (relu with sigmoid).
    for act, deriv, saves_output in (("sigmoid", "exact_plus", True), ("relu", "sigmoid", False)):
        x = torch.randn(5, dtype=torch.float64, requires_grad=True)
        packed = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
            y = OPS.activation.plain(x, act, deriv)
        assert len(packed) == 1 and torch.equal(packed[0], y if saves_output else x)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated", "ignore:`torch.jit.save` is deprecated",
                            "ignore:`torch.jit.load` is deprecated")
def test_traced_function_records_the_plain_overload():
    # The eager functions call activation.plain (the speed of RESULTS.md
    # item 3); a trace records it, and the saved trace trains the same.
    x = make_layout("contiguous")
    g = make_grad(x)
    fn = lambda t: artderiv.step(t, 0.5, "atan")  # noqa: E731
    traced = torch.jit.trace(fn, x.clone().requires_grad_())
    (node,) = [n for n in traced.graph.nodes() if n.kind() == "artderiv::activation"]
    assert node.schema().startswith("artderiv::activation.plain(")
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    assert_bitwise_equal(loaded(x), fn(x))
    assert_bitwise_equal(grad_of(loaded, x, g), grad_of(fn, x, g))


PARAMETRISED = [a for a in artderiv.catalog()["activations"] if a["params"]]


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
@pytest.mark.parametrize("spec", PARAMETRISED, ids=[a["name"] for a in PARAMETRISED])
def test_parameters_left_at_defaults_are_not_passed(spec):
    # An eager call that leaves every parameter at its default passes no
    # parameter list (parsing one costs about a microsecond); the result is
    # the op's with the defaults, and any explicit value is still passed.
    name, defaults = spec["name"], [p["default"] for p in spec["params"]]
    equal_copies = [d * 1.0 for d in defaults]  # equal values, other objects than the defaults: passed
    assert all(c is not d for c, d in zip(equal_copies, defaults))
    fn = getattr(artderiv, name)
    x = make_layout("transposed")
    g = make_grad(x)
    for deriv in (None, "atan"):
        want = lambda t: OPS.activation.default(t, name, defaults, deriv or "default", [], None, "auto")  # noqa: E731
        for call in (lambda t: fn(t, derivative=deriv), lambda t: fn(t, *equal_copies, deriv)):
            assert_bitwise_equal(call(x), want(x))
            assert_bitwise_equal(grad_of(call, x, g), grad_of(want, x, g))

    def params_passed(call):
        (node,) = [n for n in torch.jit.trace(call, x).graph.nodes() if n.kind() == "artderiv::activation"]
        assert node.schema().startswith("artderiv::activation.plain(")
        return [i.toIValue() for i in list(node.inputs())[3].node().inputs()]

    assert params_passed(lambda t: fn(t)) == []
    assert params_passed(lambda t: fn(t, derivative="atan")) == []
    changed = [d + 0.25 for d in defaults]
    assert params_passed(lambda t: fn(t, *changed)) == changed
    assert params_passed(lambda t: fn(t, *equal_copies)) == defaults


def relu_sigmoid_plain(t: torch.Tensor) -> torch.Tensor:  # module level: jit.script reads its source
    # (TorchScript takes no overload name: the arguments select the overload)
    return torch.ops.artderiv.activation(t, "relu", "sigmoid")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_plain_overload_in_torchscript():
    scripted = torch.jit.script(relu_sigmoid_plain)
    (node,) = [n for n in scripted.graph.nodes() if n.kind() == "artderiv::activation"]
    assert node.schema().startswith("artderiv::activation.plain(")
    x = make_layout("contiguous")
    g = make_grad(x)
    eager = lambda t: OPS.activation.default(t, "relu", [], "sigmoid", [], None, "auto")  # noqa: E731
    assert_bitwise_equal(scripted(x), eager(x))
    assert_bitwise_equal(grad_of(scripted, x, g), grad_of(eager, x, g))


@pytest.mark.parametrize("op", ["activation", "activation_forward"])
def test_symbolic_shape_tracing(op):
    fn = (lambda t: OPS.activation(t, "relu")) if op == "activation" else (lambda t: OPS.activation_forward(t, "relu", []))
    gm = make_fx(fn, tracing_mode="symbolic")(torch.randn(4, 5))
    assert f"artderiv.{op}" in gm.code


def test_torch_compile_static_matches_eager():
    x = make_layout("channels_last", torch.float32)
    g = make_grad(x)

    atan3 = artderiv.derivatives.atan(alpha=3.0)  # built outside: its catalog lookup is not traceable

    def f(t):
        return artderiv.leaky_relu(t, 0.2, atan3, blend=0.3)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True, dynamic=False)
    assert_bitwise_equal(compiled(x), f(x))
    # 2 ulp, not bitwise: the compiled backward may hand the kernel a gradient
    # of another layout or dtype path.
    got, want = grad_of(compiled, x, g), grad_of(f, x, g)
    assert_ulp_close(got, want, 2)
    assert_ulp_close(got, expected_grad64(ACTIVATIONS[2], "atan", [3.0], x, g, 0.3), 4, magnitude=g)


def test_torch_compile_traces_the_direct_call():
    # The common calls go to the op's C++ callable, not the OpOverload; dynamo
    # must still put the op into the graph (fullgraph: a graph break raises).
    x = make_layout("contiguous", torch.float32)
    g = make_grad(x)

    def f(t):
        return artderiv.relu(t) + artderiv.sigmoid(t, derivative="exact_plus") + artderiv.elu(t, 0.5)

    graphs = []

    def keep_graph(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    try:
        compiled = torch.compile(f, backend="aot_eager", fullgraph=True, dynamic=False)
        assert_bitwise_equal(compiled(x), f(x))
        assert_ulp_close(grad_of(compiled, x, g), grad_of(f, x, g), 2)
        # The graph holds the op overload, not the eager shortcut's boxed call.
        torch._dynamo.reset()
        torch.compile(f, backend=keep_graph, fullgraph=True, dynamic=False)(x)
    finally:
        torch._dynamo.reset()
    (gm,) = graphs
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.artderiv.activation.default) == 3
    assert not [t for t in targets if "dispatch_call_boxed" in str(t)]


class LoggedTensor(torch.Tensor):
    """Records each __torch_function__ call as (func, args after the tensor, kwargs)."""

    calls = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append((func, args[1:], kwargs))
        return super().__torch_function__(func, types, args, kwargs or {})


@contextlib.contextmanager
def compiled_autograd_captures():
    """Backward passes in the block run under compiled autograd; yields its counters."""
    from torch._dynamo import compiled_autograd
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    try:
        with compiled_autograd._enable(torch.compile(backend="eager")):
            yield counters["compiled_autograd"]
    finally:
        torch._dynamo.reset()


def test_torch_function_subclasses_and_modes_see_the_call():
    # The eager shortcut of the functions and modules (a boxed dispatcher
    # call) is only for plain tensors: a __torch_function__ subclass or an
    # active torch function mode still sees the op and decides what it returns.
    from torch.overrides import TorchFunctionMode

    op = torch.ops.artderiv.activation.default
    seen = LoggedTensor.calls

    x = torch.randn(6, dtype=torch.float64)
    for call in (lambda t: artderiv.relu(t), lambda t: artderiv.relu(t, derivative="sigmoid"),
                 lambda t: artderiv.leaky_relu(t, 0.2, "atan")):
        seen.clear()
        y = call(x.as_subclass(LoggedTensor))
        assert [func for func, _, _ in seen] == [op] and type(y) is LoggedTensor
        assert_bitwise_equal(y.as_subclass(torch.Tensor), call(x))

    # The modules' eager shortcut likewise (they call the op packet).
    module = artderiv.nn.LeakyReLU(0.2, derivative="atan")
    seen.clear()
    y = module(x.as_subclass(LoggedTensor))
    assert [func for func, _, _ in seen] == [torch.ops.artderiv.activation] and type(y) is LoggedTensor
    assert_bitwise_equal(y.as_subclass(torch.Tensor), module(x))

    ours = (op, torch.ops.artderiv.activation)

    class Doubling(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            return out * 2 if func in ours else out

    with Doubling():
        y = artderiv.elu(x, 0.5, "atan")
        ym = module(x)
    assert_bitwise_equal(y, artderiv.elu(x, 0.5, "atan") * 2)
    assert_bitwise_equal(ym, module(x) * 2)


def test_eager_shortcut_inputs():
    # Where torch has what the shortcut needs, it is on (or every speed figure
    # in RESULTS.md item 3 silently disappears).
    if hasattr(torch.compiler, "substitute_in_graph") and hasattr(torch._C, "_dispatch_call_boxed"):
        assert artderiv._library.boxed_ops is not None
    x = torch.randn(7, dtype=torch.float64)
    want = artderiv.leaky_relu(x, 0.2, "atan")
    # A subclass sees the same short call as before the shortcut.
    seen = LoggedTensor.calls
    seen.clear()
    artderiv.leaky_relu(x.as_subclass(LoggedTensor), 0.2, "atan")
    assert [(args, kwargs) for _, args, kwargs in seen] == [(("leaky_relu", [0.2], "atan"), {"save": "auto"})]
    # Parameters and subclasses with torch function disabled: plain results.
    assert_bitwise_equal(artderiv.leaky_relu(torch.nn.Parameter(x), 0.2, "atan").detach(), want)
    with torch._C.DisableTorchFunctionSubclass():
        y = artderiv.leaky_relu(x.as_subclass(LoggedTensor), 0.2, "atan")
    assert_bitwise_equal(y.as_subclass(torch.Tensor), want)
    # A module whose blend became a Parameter takes the op's usual path.
    module = artderiv.nn.LeakyReLU(0.2, derivative="atan")
    module.blend = torch.nn.Parameter(torch.zeros(()), requires_grad=False)
    assert_bitwise_equal(module(x), want)


@pytest.mark.parametrize("combo", COMBOS + [("sigmoid", [], "exact_plus", [], None)], ids=COMBO_IDS + ["sigmoid-save-output"])
def test_compiled_autograd_matches_eager(combo):
    # Compiled autograd reads what the C++ node saved (names, parameter lists,
    # save mode) to key its graph, and runs the node's backward from it.
    act, aparams, deriv, dparams, blend = combo
    x = make_layout("contiguous", torch.float32).requires_grad_()
    g = make_grad(x)

    def f(t):
        return torch.ops.artderiv.activation(t, act, aparams, deriv, dparams, _blend(blend), "auto")

    (want,) = torch.autograd.grad(f(x), x, g)
    y = f(x)
    with compiled_autograd_captures() as captured:
        y.backward(g)
        assert captured["captures"] == 1
    assert_bitwise_equal(x.grad, want)


def test_compiled_autograd_tells_saved_parameters_apart():
    # One compiled-autograd context, two backward passes that differ only in a
    # saved derivative parameter: two graphs, each with its own gradient.
    x = torch.randn(30, dtype=torch.float64, requires_grad=True)
    g = torch.randn(30, dtype=torch.float64)
    grads = []
    with compiled_autograd_captures() as captured:
        for beta in (4.0, 2.0):
            x.grad = None
            artderiv.relu(x, artderiv.derivatives.sigmoid(beta=beta)).backward(g)
            grads.append(x.grad.clone())
        assert captured["captures"] == 2
    xd = x.detach()
    for beta, got in zip((4.0, 2.0), grads):
        torch.testing.assert_close(got, g * torch.sigmoid(beta * xd), rtol=1e-14, atol=0)


# torch.autograd.forward_ad scripts helpers at import: torch's own warning, a
# FutureWarning in torch 2.14 and a DeprecationWarning in 2.11.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_forward_mode_ad_raises():
    # No tangent rule: a dual input must not silently lose its tangent.
    import torch.autograd.forward_ad as fwAD

    for requires_grad in (False, True):
        with fwAD.dual_level():
            x = fwAD.make_dual(torch.randn(5, dtype=torch.float64).requires_grad_(requires_grad), torch.ones(5, dtype=torch.float64))
            with pytest.raises(NotImplementedError, match="artderiv.leaky_relu: forward-mode AD"):
                artderiv.leaky_relu(x, 0.2, "atan")
    # torch.func.jvp (functorch's forward AD) reaches the same check.
    with pytest.raises(NotImplementedError, match="artderiv.relu: forward-mode AD"):
        torch.func.jvp(artderiv.relu, (torch.randn(4, dtype=torch.float64),), (torch.ones(4, dtype=torch.float64),))
    # Forward over reverse (a dual gradient into the backward op) raises too.
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = artderiv.relu(x)
    with fwAD.dual_level():
        g = fwAD.make_dual(torch.ones(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
        with pytest.raises(NotImplementedError, match="artderiv.relu: forward-mode AD"):
            torch.autograd.grad(y, x, g)


def test_backward_after_the_forward_thread_exits():
    # The node's saved names may come from a per-thread cache of the forward's
    # thread; the node must own them when that thread and its cache are gone.
    import threading

    def live_threads():
        return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None

    before = live_threads()
    x = torch.randn(40, dtype=torch.float64, requires_grad=True)
    g = torch.randn(40, dtype=torch.float64)
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("y", artderiv.leaky_relu(x, 0.2, "atan")))
    worker.start()
    worker.join()
    for _ in range(200):  # join() returns before the thread's C++ thread_locals are destroyed
        if live_threads() == before:
            break
        time.sleep(0.01)
    # Other threads allocate (and cache) names, reusing any freed memory.
    others = [threading.Thread(target=lambda: artderiv.elu(x, 0.5, "sigmoid").sum().backward()) for _ in range(4)]
    for t in others:
        t.start()
    for t in others:
        t.join()
    (got,) = torch.autograd.grad(out["y"], x, g)
    xd = x.detach()
    # atan with its default alpha = 2: (alpha/2) / (1 + (pi*alpha*x/2)^2)
    torch.testing.assert_close(got, g / (1 + (math.pi * xd) ** 2), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------
# Strides / memory format
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("layout", LAYOUTS + ["expanded"])
def test_output_strides_follow_empty_like(layout, dtype):
    x = make_layout(layout, dtype)
    want = torch.empty_like(x).stride()
    g = make_layout(layout, dtype, seed=1)
    for act, ap, deriv, dp, b in COMBOS:
        y = OPS.activation(x, act, ap, deriv, dp, _blend(b), "input")
        assert y.stride() == want, (layout, act)
        # Values do not depend on the layout.
        assert_bitwise_equal(y, OPS.activation(x.contiguous(), act, ap, deriv, dp, _blend(b), "input"))
        assert OPS.activation_forward(x, act, ap).stride() == want
        gx = OPS.activation_backward(g, x, "input", act, ap, deriv, dp, _blend(b))
        assert gx.stride() == want
        gx_contiguous = OPS.activation_backward(g.contiguous(), x.contiguous(), "input", act, ap, deriv, dp, _blend(b))
        assert_bitwise_equal(gx, gx_contiguous)
        # Meta: same strides without data.
        xm, gm = x.to("meta"), g.to("meta")
        for out in (
            OPS.activation(xm, act, ap, deriv, dp, _blend(b), "input"),
            OPS.activation_forward(xm, act, ap),
            OPS.activation_backward(gm, xm, "input", act, ap, deriv, dp, _blend(b)),
        ):
            assert out.device.type == "meta" and out.dtype == dtype and out.shape == x.shape
            assert out.stride() == want, (layout, act, "meta")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_autograd_gradient_keeps_layout(layout):
    x = make_layout(layout, torch.float32).requires_grad_(True)
    g = make_layout(layout, torch.float32, seed=1)
    y = artderiv.relu(x, "atan")
    assert y.stride() == torch.empty_like(x).stride()
    (gx,) = torch.autograd.grad(y, x, g)
    assert gx.stride() == torch.empty_like(x).stride()
    assert_bitwise_equal(gx, OPS.activation_backward(g, x.detach(), "input", "relu", [], "atan", [], None))


# ---------------------------------------------------------------------------
# Modes and graph shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_grad_disabled_modes(mode):
    x = make_x(torch.float32, n=100).requires_grad_(True)
    ctx = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
    with ctx:
        outs = [
            artderiv.relu(x),
            artderiv.tanh(x, "atan", blend=0.5),
            OPS.activation(x, "leaky_relu", [0.2], "sigmoid", [2.0], torch.tensor(0.3), "input"),
        ]
        refs = [torch.relu(x), torch.tanh(x), torch.nn.functional.leaky_relu(x, 0.2)]
    for y, ref in zip(outs, refs):
        assert not y.requires_grad and y.grad_fn is None
        if mode == "inference_mode":
            assert torch.is_inference(y)
        torch.testing.assert_close(y, ref, equal_nan=True)
    assert_bitwise_equal(outs[0], refs[0])


def test_inference_tensor_input():
    with torch.inference_mode():
        x = make_x(torch.float32, n=50)
        y = artderiv.sigmoid(x)
        assert torch.is_inference(y)
    torch.testing.assert_close(y, torch.sigmoid(x), equal_nan=True)


def test_non_leaf_and_view_inputs():
    leaf = torch.linspace(-3, 3, 13, dtype=torch.float64).requires_grad_(True)
    x = leaf * 2 + 0.25  # non-leaf
    y = artderiv.relu(x[1:])  # view of a non-leaf
    g = torch.arange(12, dtype=torch.float64)
    y.backward(g)
    xs = (leaf.detach() * 2 + 0.25)[1:]
    expected = torch.zeros(13, dtype=torch.float64)
    expected[1:] = 2 * g * torch.sigmoid(xs)
    torch.testing.assert_close(leaf.grad, expected, rtol=1e-14, atol=0)
    # and the output of one call feeds the next
    leaf.grad = None
    z = artderiv.tanh(artderiv.sigmoid(leaf, "exact"), "exact")
    z.sum().backward()
    ref_leaf = leaf.detach().clone().requires_grad_(True)
    torch.tanh(torch.sigmoid(ref_leaf)).sum().backward()
    torch.testing.assert_close(leaf.grad, ref_leaf.grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_stride_zero_gradients(dtype):
    x = make_layout("channels_last", dtype)
    # y.sum().backward() feeds an expanded (stride 0) gradient to the backward.
    leaf = x.detach().clone().requires_grad_(True)
    artderiv.sigmoid(leaf, "atan").sum().backward()
    ones = grad_of(lambda t: artderiv.sigmoid(t, "atan"), x, torch.ones_like(x))
    assert_bitwise_equal(leaf.grad, ones)
    assert leaf.grad.abs().sum() > 0
    # Explicitly expanded gradients given to the helper op.
    for g in (torch.tensor(1.5, dtype=dtype).expand(x.shape), make_grad(torch.empty(1, 3, 1, 5, dtype=dtype)).expand(x.shape)):
        assert 0 in g.stride()
        got = OPS.activation_backward(g, x, "input", "relu", [], "sigmoid", [2.0], None)
        assert_bitwise_equal(got, OPS.activation_backward(g.contiguous(), x, "input", "relu", [], "sigmoid", [2.0], None))
        assert got.stride() == torch.empty_like(x).stride()
        blended = OPS.activation_backward(g, x, "input", "tanh", [], "atan", [], torch.tensor(0.3))
        assert_bitwise_equal(
            blended, OPS.activation_backward(g.contiguous(), x, "input", "tanh", [], "atan", [], torch.tensor(0.3))
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", [(0,), (3, 0, 2)], ids=["0", "3x0x2"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_empty_tensors(act, shape, dtype):
    x = torch.empty(shape, dtype=dtype, requires_grad=True)
    y = artderiv.activation(x, act, None, "atan", blend=0.5)
    assert y.shape == shape and y.dtype == dtype and y.numel() == 0
    y.sum().backward()
    assert x.grad.shape == shape and x.grad.dtype == dtype
    gx = OPS.activation_backward(torch.empty(shape, dtype=dtype), x.detach(), "input", act, [], "exact", [], None)
    assert gx.shape == shape
    assert OPS.activation(x.detach().to("meta"), act).shape == shape


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=[a.id for a in ACTIVATIONS])
def test_zero_dim_tensors(act, dtype):
    for value in (-0.75, 1.25):
        x = torch.tensor(value, dtype=dtype)
        y = OPS.activation(x, act.name, act.params)
        assert y.shape == () and y.dtype == dtype
        torch.testing.assert_close(y, act.torch_fn(x))
        g = torch.tensor(-2.0, dtype=dtype)
        got = grad_of(lambda t: OPS.activation(t, act.name, act.params, "sigmoid", [3.0], None, "input"), x, g)
        assert got.shape == ()
        expected = expected_grad64(act, "sigmoid", [3.0], x, g).to(dtype)
        torch.testing.assert_close(got, expected)


def test_blend_tensor_shapes():
    x = make_x(torch.float32, n=20, specials=False)
    g = make_grad(x)
    ref = grad_of(lambda t: artderiv.relu(t, "atan", blend=0.25), x, g)
    for b in (torch.tensor(0.25), torch.tensor([0.25]), torch.tensor([[0.25]], dtype=torch.float64), torch.tensor(0.25, dtype=torch.float16)):
        assert_bitwise_equal(grad_of(lambda t: artderiv.relu(t, "atan", blend=b), x, g), ref)


# ---------------------------------------------------------------------------
# Independence from size, alignment and thread count
# ---------------------------------------------------------------------------

PERIOD = 97  # prime: every value lands on every SIMD lane and block position
SIZES = [1, 7, 17, 1000003]
PLACEMENTS = ["offset0", "offset1", "offset3", "stride2"]
# Fractional blends are excluded here; test_fractional_blend_position_independence covers them.
DET_COMBOS = [
    ("relu", [], "sigmoid", [2.0], None),
    ("leaky_relu", [0.2], "atan", [], None),
    ("sigmoid", [], "exact_plus", [], None),
    ("tanh", [], "exact", [], 1.0),
    ("tanh", [], "exact_plus", [0.1], None, "output"),  # the backward reads y
]
DET_IDS = [f"{c[0]}-{c[2]}" + (f"-{c[5]}" if len(c) > 5 else "") for c in DET_COMBOS]


def _pattern(dtype):
    vals = torch.cat([torch.tensor(SPECIALS, dtype=torch.float64), torch.linspace(-9, 9, PERIOD - len(SPECIALS), dtype=torch.float64)])
    grads = torch.linspace(-2, 3, PERIOD, dtype=torch.float64)[torch.randperm(PERIOD, generator=torch.Generator().manual_seed(0))]
    return vals.to(dtype), grads.to(dtype)


def _placed(pattern, n, placement):
    """A tensor of n values from the pattern at a given offset/stride in a buffer, and each one's pattern index."""
    if placement == "stride2":
        idx = torch.arange(2 * n) % PERIOD
        return pattern[idx][::2], idx[::2]
    off = int(placement[len("offset") :])
    idx = torch.arange(n + off) % PERIOD
    return pattern[idx][off:], idx[off:]


def _one_element_tables(vals, grads, combo):
    """y and grad_x of each pattern value computed alone: the reference for
    every position, size and placement."""
    singles = [_run(vals[i : i + 1].clone(), grads[i : i + 1].clone(), combo) for i in range(PERIOD)]
    return torch.cat([s[0] for s in singles]), torch.cat([s[1] for s in singles])


def _run(x, g, combo):
    act, ap, deriv, dp, b, *rest = combo
    save = rest[0] if rest else "input"
    y = OPS.activation_forward(x, act, ap)
    gx = OPS.activation_backward(g, y if save == "output" else x, save, act, ap, deriv, dp, _blend(b))
    return y, gx


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("combo", DET_COMBOS, ids=DET_IDS)
def test_elementwise_independence(combo, dtype, n, placement):
    vals, grads = _pattern(dtype)
    y_table, g_table = _one_element_tables(vals, grads, combo)
    x, idx = _placed(vals, n, placement)
    g, gidx = _placed(grads, n, placement)
    assert torch.equal(idx, gidx) and x.shape == (n,)
    if placement.startswith("offset"):
        assert x.storage_offset() == int(placement[len("offset") :])
    else:
        assert x.stride() == (2,)
    y, gx = _run(x, g, combo)
    assert_bitwise_equal(y, y_table[idx])
    assert_bitwise_equal(gx, g_table[idx])


# Every length up to past two whole packs of the widest build (the kernels
# work on packs of 4 vectors, csrc/cpu/lanes.h; AVX512 float and bfloat16: 64
# values), so that every tail length is a partial pack, after none, one and
# two whole packs (that a partial pack touches nothing past the tail is
# test_cpu_blocks.py's, under AddressSanitizer). The
# bfloat16 blocks widen in lane order (csrc/cpu/half_io.h), which spreads a
# tail over both float vectors, and the f' buffer of a shape or a blend must
# follow that order: with the first len floats of a tail stored and read
# back, tails of 5-11 values (AVX2) got a wrong gradient.
LENGTH_COMBOS = DET_COMBOS + [
    ("relu", [], "sigmoid", [2.0], 0.3),  # blend: the layer's f' through a buffer
    ("tanh", [], "exact_plus", [0.1], 0.3, "output"),  # f'(y) through a buffer
    ("relu", [], "like:tanh", [], 0.3),  # two buffers: tanh's f' and relu's
]
LENGTH_IDS = DET_IDS + ["relu-sigmoid-blend", "tanh-exact_plus-output-blend", "relu-like_tanh-blend"]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("combo", LENGTH_COMBOS, ids=LENGTH_IDS)
def test_every_vector_length(combo, dtype):
    vals, grads = _pattern(dtype)
    y_table, g_table = _one_element_tables(vals, grads, combo)
    wrong = []
    for n in range(1, 2 * 64 + 9):
        idx = (torch.arange(n) * 7 + n) % PERIOD  # other values at each length
        y, gx = _run(vals[idx], grads[idx], combo)
        if not (torch.equal(y.view(torch.uint8), y_table[idx].view(torch.uint8))
                and torch.equal(gx.view(torch.uint8), g_table[idx].view(torch.uint8))):
            wrong.append(n)
    assert not wrong, f"lengths whose values differ from one-element calls: {wrong}"


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("combo", DET_COMBOS, ids=DET_IDS)
def test_thread_count_independence(combo, dtype, restore_threads):
    n = 1000003
    x = make_x(dtype, n=n, seed=5)
    g = make_grad(x, seed=6)
    xs = x[1:].as_strided((n // 2,), (2,))  # a strided view too
    gs = g[1:].as_strided((n // 2,), (2,))
    results = {}
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        assert torch.get_num_threads() == threads
        results[threads] = _run(x, g, combo) + _run(xs, gs, combo)
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), f"{threads} threads differ from 1"


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc here")
def test_dense_calls_use_torchs_thread_pool():
    """Dense tensors are split over threads by libtorch's at::parallel_for,
    reached through torch's stable torch_parallel_for: the op library has no
    OpenMP code of its own (no GOMP_* / __kmpc_* calls, no runtime linked),
    a large dense call on 2 threads starts torch's pool, and the process maps
    torch's OpenMP runtime only (none, or MKL's, where torch does not use
    OpenMP). In a fresh process: other packages of the test run
    (scikit-learn) bring their own."""
    lib = artderiv.library_path()
    undefined = subprocess.run(["nm", "-D", "--undefined-only", lib], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\btorch_parallel_for\b", undefined), "the op library does not split work with torch_parallel_for"
    assert not re.search(r"\b(GOMP_|__kmpc_|omp_)\w*", undefined), "the op library has OpenMP code of its own"
    needed = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    assert not re.search(r"lib(g|i)?omp", needed), "the op library links an OpenMP runtime"
    code = textwrap.dedent("""
        import json, os, torch, artderiv
        torch.set_num_threads(1)  # torch's own ops start no thread here
        x = torch.randn(1 << 20)
        want = torch.relu(x)
        torch.set_num_threads(2)
        before = len(os.listdir("/proc/self/task"))
        y = artderiv.relu(x)
        after = len(os.listdir("/proc/self/task"))
        assert torch.equal(y, want)
        with open("/proc/self/maps") as f:
            runtimes = sorted({l.split()[-1] for l in f if "gomp" in l or "libomp" in l or "libiomp" in l})
        print(json.dumps({"threads": [before, after], "runtimes": runtimes}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    runtimes = seen["runtimes"]
    if torch.backends.openmp.is_available():
        assert len(runtimes) == 1, f"OpenMP runtimes with torch and artderiv loaded: {runtimes}"
    else:
        assert len(runtimes) <= 1, f"OpenMP runtimes with torch and artderiv loaded: {runtimes}"
    before, after = seen["threads"]
    assert after > before, f"a 2^20-value dense call on 2 threads started no thread ({before} -> {after})"


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_fractional_blend_position_independence(dtype):
    """The same element gives the same gradient in a full vector and in a short tail."""
    n = 1200
    x = make_x(dtype, n=n, specials=False)
    g = make_grad(x)
    failures = []
    for act in ("relu", "leaky_relu", "sigmoid", "tanh"):
        for deriv, dp in (("sigmoid", []), ("exact_plus", []), ("atan", [3.0])):
            combo = (act, [], deriv, dp, 0.3)
            full = _run(x, g, combo)[1]
            # 3-element calls: every element in a partial vector
            chunks = torch.cat([_run(x[i : i + 3].clone(), g[i : i + 3].clone(), combo)[1] for i in range(0, n, 3)])
            if not torch.equal(full, chunks):
                i = int(torch.nonzero(full != chunks)[0])
                failures.append(
                    f"{act}/{deriv}{dp} blend=0.3: x={x[i].item()!r} grad={g[i].item()!r}: "
                    f"{full[i].item()!r} in a {n}-element call, {chunks[i].item()!r} alone"
                )
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# Double backward
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_double_backward_raises(act):
    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    y = artderiv.activation(x, act, None, "exact")
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert gx.requires_grad
    with pytest.raises(RuntimeError, match="double backward") as info:
        torch.autograd.grad(gx.sum(), x)
    assert f"artderiv.{act}" in str(info.value)
    # Hessian-vector products hit the same error.
    x2 = torch.randn(5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.functional.hvp(lambda t: artderiv.activation(t, act, None, "atan").pow(2).sum(), x2, torch.ones(5, dtype=torch.float64))


def test_create_graph_first_order_still_works():
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    g = torch.randn(50, dtype=torch.float64)
    y = artderiv.relu(x, artderiv.derivatives.sigmoid(beta=2.0))
    (with_graph,) = torch.autograd.grad(y, x, g, create_graph=True)
    (plain,) = torch.autograd.grad(artderiv.relu(x, artderiv.derivatives.sigmoid(beta=2.0)), x, g)
    assert_bitwise_equal(with_graph.detach(), plain)
    torch.testing.assert_close(plain, g * torch.sigmoid(2 * x.detach()), rtol=1e-14, atol=0)
    # A penalty on a gradient that reaches artderiv only at first order:
    # gw = d/dw sum(relu(x) * w^2) = 2 w sum(relu(x)); d(gw)/dx = 2 w d(x).
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    out = (artderiv.relu(x) * w**2).sum()
    (gw,) = torch.autograd.grad(out, w, create_graph=True)
    gw.backward()
    xd = x.detach()
    torch.testing.assert_close(x.grad, 2 * 1.5 * torch.sigmoid(xd), rtol=1e-14, atol=0)
    torch.testing.assert_close(w.grad, 2 * torch.relu(xd).sum(), rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------
# torch.func
# ---------------------------------------------------------------------------
# Observed with torch 2.14: artderiv::activation's autograd is a C++
# torch::autograd::Function, which functorch cannot transform. torch.func.grad
# (and vjp, jacrev, jvp) raise a RuntimeError saying so; torch.func.vmap of the
# forward works through PyTorch's batched fallback (a slow per-example loop,
# with a performance warning) and gives the eager result, and ordinary autograd
# through a vmapped forward still uses the artificial derivative.


FUNCTORCH_ERROR = "cannot use C\\+\\+ torch::autograd::Function with functorch transforms"


@pytest.mark.parametrize(
    "transform",
    ["grad", "vjp", "jacrev", "vmap_of_grad"],
)
def test_torch_func_gradient_transforms_raise_clearly(transform):
    x = torch.randn(6, dtype=torch.float64)
    f = lambda t: artderiv.relu(t).sum()  # noqa: E731
    calls = {
        "grad": lambda: torch.func.grad(f)(x),
        "vjp": lambda: torch.func.vjp(artderiv.relu, x)[1](torch.ones_like(x)),
        "jacrev": lambda: torch.func.jacrev(artderiv.relu)(x),
        "vmap_of_grad": lambda: torch.func.vmap(torch.func.grad(f))(x.view(2, 3)),
    }
    with pytest.raises(RuntimeError, match=FUNCTORCH_ERROR):
        calls[transform]()


def test_torch_func_vmap_forward_matches_eager():
    x = make_x(torch.float32, n=45, specials=False).view(5, 3, 3)
    for fn in (artderiv.relu, lambda t: artderiv.leaky_relu(t, 0.2, "atan", blend=0.3), artderiv.tanh):
        assert_bitwise_equal(torch.func.vmap(fn)(x), fn(x))
        assert_bitwise_equal(torch.func.vmap(fn, in_dims=1, out_dims=1)(x), fn(x))


def test_vmapped_forward_backpropagates_artificial_derivative():
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.func.vmap(artderiv.relu)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.sigmoid(x.detach()), rtol=1e-15, atol=0)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _x(mode):
    x = torch.randn(3, 4)
    if mode == "meta":
        return x.to("meta")
    if mode == "autograd":
        return x.requires_grad_(True)
    return x


ALLOWED_DERIVS = ["default", "exact", "sigmoid", "exact_plus", "atan"]
ALLOWED_DTYPES = ["float32", "float64", "float16", "bfloat16"]

# id -> (call(x), exception type, substrings of the message)
BAD_CALLS = {
    "int64": (lambda x: artderiv.relu(torch.arange(4, device=x.device)), TypeError, ["artderiv.relu", "'x'", "Long", *ALLOWED_DTYPES]),
    "bool": (lambda x: artderiv.tanh(x > 0), TypeError, ["artderiv.tanh", "'x'", "Bool", *ALLOWED_DTYPES]),
    "complex": (lambda x: artderiv.sigmoid(torch.complex(x.detach(), x.detach())), TypeError, ["artderiv.sigmoid", "'x'", "Complex", *ALLOWED_DTYPES]),
    "int64-forward-op": (lambda x: OPS.activation_forward(torch.arange(4, device=x.device), "leaky_relu", []), TypeError, ["artderiv.leaky_relu", "'x'"]),
    "unknown-derivative": (lambda x: artderiv.relu(x, "no_such_shape"), ValueError, ["artderiv.relu", "'derivative'", "no_such_shape", *ALLOWED_DERIVS]),
    "unknown-derivative-op": (lambda x: OPS.activation(x, "tanh", [], "Atan"), ValueError, ["artderiv.tanh", "'derivative'", *ALLOWED_DERIVS]),
    "unknown-activation": (lambda x: OPS.activation(x, "no_such_activation"), ValueError, ["artderiv", "'activation'", "no_such_activation", "relu", "leaky_relu", "sigmoid", "tanh"]),
    "unknown-activation-forward-op": (lambda x: OPS.activation_forward(x, "Relu", []), ValueError, ["'activation'", "Relu", "leaky_relu"]),
    "beta=0": (lambda x: OPS.activation(x, "relu", [], "sigmoid", [0.0]), ValueError, ["artderiv.relu", "'derivative_params'", "'beta'", "positive"]),
    "beta=-1": (lambda x: OPS.activation(x, "relu", [], "sigmoid", [-1.0]), ValueError, ["artderiv.relu", "'derivative_params'", "'beta'", "-1"]),
    "beta=inf": (lambda x: OPS.activation(x, "leaky_relu", [], "sigmoid", [math.inf]), ValueError, ["artderiv.leaky_relu", "'derivative_params'", "'beta'", "inf"]),
    "beta=nan": (lambda x: OPS.activation(x, "relu", [], "sigmoid", [math.nan]), ValueError, ["artderiv.relu", "'derivative_params'", "'beta'", "nan"]),
    "alpha=0": (lambda x: OPS.activation(x, "tanh", [], "atan", [0.0]), ValueError, ["artderiv.tanh", "'derivative_params'", "'alpha'"]),
    "c=-1": (lambda x: OPS.activation(x, "sigmoid", [], "exact_plus", [-1.0]), ValueError, ["artderiv.sigmoid", "'derivative_params'", "'c'", "non-negative"]),
    "c=inf": (lambda x: OPS.activation(x, "tanh", [], "exact_plus", [math.inf]), ValueError, ["artderiv.tanh", "'derivative_params'", "'c'"]),
    "too-many-derivative-params": (lambda x: OPS.activation(x, "relu", [], "sigmoid", [1.0, 2.0]), ValueError, ["artderiv.relu", "'derivative_params'", "at most 1", "got 2"]),
    "params-for-exact": (lambda x: OPS.activation(x, "sigmoid", [], "exact", [1.0]), ValueError, ["artderiv.sigmoid", "'derivative_params'", "at most 0"]),
    "too-many-activation-params": (lambda x: artderiv.activation(x, "leaky_relu", [0.1, 0.2]), ValueError, ["artderiv.leaky_relu", "'activation_params'", "at most 1"]),
    "params-for-relu": (lambda x: artderiv.activation(x, "relu", [0.1]), ValueError, ["artderiv.relu", "'activation_params'"]),
    "slope=nan": (lambda x: artderiv.leaky_relu(x, math.nan), ValueError, ["artderiv.leaky_relu", "'activation_params'", "'negative_slope'", "finite"]),
    "blend-2-elements": (lambda x: artderiv.relu(x, blend=torch.tensor([0.1, 0.2])), ValueError, ["artderiv.relu", "'blend'", "one-element"]),
    "blend-empty": (lambda x: artderiv.sigmoid(x, blend=torch.tensor([])), ValueError, ["artderiv.sigmoid", "'blend'"]),
    "blend-int": (lambda x: artderiv.tanh(x, blend=torch.tensor(1)), TypeError, ["artderiv.tanh", "'blend'", "floating"]),
    "save=unknown": (lambda x: OPS.activation(x, "sigmoid", [], "default", [], None, "outputs"), ValueError, ["artderiv.sigmoid", "'save'", "outputs", "input, output, auto"]),
    "save=output-activation": (lambda x: OPS.activation(x, "elu", [], "exact", [], None, "output"), ValueError, ["artderiv.elu", "'save'", "'output'", "relu, sigmoid, tanh", "'auto'"]),
    "save=output-shape": (lambda x: OPS.activation(x, "relu", [], "sigmoid", [], None, "output"), ValueError, ["artderiv.relu", "'save'", "reads the input", "exact, exact_plus, floor, identity"]),
    "save=output-like": (lambda x: OPS.activation(x, "tanh", [], "like:elu", [], None, "output"), ValueError, ["artderiv.tanh", "'save'", "reads the input"]),
    "derivative-wrong-type": (lambda x: artderiv.relu(x, 3), TypeError, ["'derivative'"]),
    "x-not-a-tensor": (lambda x: artderiv.relu(3.0), RuntimeError, ["artderiv::activation", "'x'", "Tensor"]),
    "x-not-a-tensor-module": (lambda x: artderiv.nn.ReLU()([1.0]), RuntimeError, ["artderiv::activation", "'x'", "Tensor"]),
    "backward-op-grad-dtype": (lambda x: OPS.activation_backward(torch.ones(3, 4, dtype=torch.float64, device=x.device), x.detach(), "input", "relu", [], "exact", [], None), TypeError, ["artderiv.relu", "'grad'", "dtype"]),
    "backward-op-grad-shape": (lambda x: OPS.activation_backward(torch.ones(4, 3, device=x.device), x.detach(), "input", "relu", [], "exact", [], None), ValueError, ["artderiv.relu", "'grad'", "shape"]),
    "backward-op-save-auto": (lambda x: OPS.activation_backward(torch.ones(3, 4, device=x.device), x.detach(), "auto", "sigmoid", [], "exact", [], None), ValueError, ["artderiv.sigmoid", "'save'", "activation_backward", "input, output"]),
    "backward-op-save": (lambda x: OPS.activation_backward(torch.ones(3, 4, device=x.device), x.detach(), "output", "tanh", [], "atan", [], None), ValueError, ["artderiv.tanh", "'save'"]),
    "backward-op-beta=0": (lambda x: OPS.activation_backward(torch.ones(3, 4, device=x.device), x.detach(), "input", "relu", [], "sigmoid", [0.0], None), ValueError, ["artderiv.relu", "'derivative_params'", "'beta'"]),
}
MODES = ["autograd", "no_grad", "inference_mode", "meta"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_input_raises(case, mode):
    call, exc, substrings = BAD_CALLS[case]
    x = _x(mode)
    ctx = {"no_grad": torch.no_grad(), "inference_mode": torch.inference_mode()}.get(mode)
    with pytest.raises(exc) as info:
        if ctx is None:
            call(x)
        else:
            with ctx:
                call(x)
    message = str(info.value)
    for s in substrings:
        assert s in message, f"{s!r} not in {message!r}"


@pytest.mark.parametrize(
    "blend",
    [1.5, -0.1, math.nan, torch.tensor(2.0), torch.tensor(-1e-3, dtype=torch.float32)],
    ids=["1.5", "-0.1", "nan", "tensor2", "tensor-1e-3"],
)
def test_blend_out_of_range_raises_by_backward(blend):
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(ValueError) as info:
        artderiv.relu(x, blend=blend).sum().backward()
    assert "artderiv.relu" in str(info.value) and "'blend'" in str(info.value) and "[0, 1]" in str(info.value)
    # and the helper op rejects it too
    b = blend if isinstance(blend, torch.Tensor) else torch.tensor(blend, dtype=torch.float64)
    with pytest.raises(ValueError, match="'blend'"):
        OPS.activation_backward(torch.ones(3, 4), x.detach(), "input", "tanh", [], "exact", [], b)


@pytest.mark.parametrize("mode", ["autograd", "inference_mode"])
@pytest.mark.parametrize("kind", ["float", "tensor"])
def test_blend_out_of_range_raises_at_call(kind, mode):
    x = _x(mode)
    blend = 1.5 if kind == "float" else torch.tensor(1.5)
    ctx = torch.inference_mode() if mode == "inference_mode" else torch.enable_grad()
    with pytest.raises(ValueError, match="'blend'"):
        with ctx:
            artderiv.relu(x, blend=blend)


def test_blend_that_requires_grad_raises():
    """No gradient flows to blend (a schedule): one that asks for one is an
    error, not a silently missing gradient. Without grad mode there is nothing
    to miss."""
    x = torch.randn(3, 4, requires_grad=True)
    blend = torch.nn.Parameter(torch.tensor(0.3))
    for call in (lambda: artderiv.relu(x, blend=blend), lambda: OPS.activation(x.detach(), "relu", [], "sigmoid", [], blend)):
        with pytest.raises(ValueError, match=r"artderiv.relu: argument 'blend' requires grad.*blend.detach\(\)"):
            call()
    with torch.no_grad():
        torch.testing.assert_close(artderiv.relu(x, blend=blend), torch.relu(x))
    y = artderiv.relu(x, blend=blend.detach())
    y.sum().backward()
    torch.testing.assert_close(x.grad, 0.7 * torch.sigmoid(x.detach()) + 0.3 * (x.detach() > 0).float())


def test_derivative_constructor_errors():
    d = artderiv.derivatives
    for make, what in [
        (lambda: d.sigmoid(beta=-1), "'beta'"),
        (lambda: d.sigmoid(beta=0.0), "'beta'"),
        (lambda: d.sigmoid(math.inf), "'beta'"),
        (lambda: d.atan(alpha=math.nan), "'alpha'"),
        (lambda: d.exact_plus(c=-1), "'c'"),
        (lambda: artderiv.Derivative("no_such_shape"), "no_such_shape"),
    ]:
        with pytest.raises(ValueError) as info:
            make()
        assert "artderiv.derivatives" in str(info.value) and what in str(info.value)
    for make, what in [
        (lambda: d.sigmoid(gamma=1.0), "gamma"),
        (lambda: d.exact(c=1.0), "'c'"),
        (lambda: d.sigmoid(1.0, 2.0), "positional"),
        (lambda: d.sigmoid(beta="big"), "'beta'"),
        (lambda: artderiv.Derivative("sigmoid", gamma=1.0), "gamma"),
    ]:
        with pytest.raises(TypeError) as info:
            make()
        assert what in str(info.value)


def test_derivative_objects():
    d = artderiv.derivatives
    assert d.sigmoid().args() == ("sigmoid", [1.0])
    assert d.sigmoid(4).args() == ("sigmoid", [4.0])
    assert d.exact_plus().args() == ("exact_plus", [0.05])
    assert d.atan(alpha=3).args() == ("atan", [3.0])
    assert d.exact().args() == ("exact", [])
    assert d.exact_plus(c=0).args() == ("exact_plus", [0.0])  # c >= 0 allowed
    assert d.sigmoid(beta=2.0) == artderiv.Derivative("sigmoid", beta=2.0)
    assert d.sigmoid(beta=2.0) != d.sigmoid(beta=3.0)
    assert len({d.atan(), d.atan(alpha=2.0)}) == 1
    assert repr(d.atan(alpha=3.0)) == "atan(alpha=3)"


_NO_CRASH_SCRIPT = textwrap.dedent(
    """
    import math, sys, warnings
    warnings.simplefilter("ignore")
    sys.path.insert(0, sys.argv[1])
    import torch, artderiv
    A = torch.ops.artderiv
    x = torch.randn(3, 4)
    calls = [
        lambda: artderiv.relu(x.to_sparse()),
        lambda: artderiv.relu(x.to_sparse().requires_grad_()),
        lambda: artderiv.relu(torch.nested.nested_tensor([torch.randn(2), torch.randn(3)])),
        lambda: artderiv.relu(x, blend=torch.tensor(0.3, device="meta")),
        lambda: artderiv.relu(x.clone().requires_grad_(), blend=torch.tensor(0.3, device="meta")),
        lambda: A.activation_backward(torch.ones(3, 4, device="meta"), x, "input", "relu", [], "exact", [], None),
        lambda: A.activation_backward(torch.ones(3, 4), x.long(), "input", "relu", [], "exact", [], None),
        lambda: A.activation_backward(torch.ones(3, 4), x, "input", "relu", [], "exact", [], torch.tensor([])),
        lambda: A.activation_backward(torch.ones(12), x, "input", "relu", [], "exact", [], None),
        lambda: A.activation(x, "relu", [1e308] * 100, "sigmoid", [math.nan] * 100),
        lambda: A.activation(x, "", [], "", []),
        lambda: A.activation(x, "relu", [], "sigmoid", [], None, ""),
        lambda: A.activation(x, "relu\\x00", []),
        lambda: artderiv.relu(x.clone().requires_grad_(), blend=float("inf")).sum().backward(),
        lambda: artderiv.relu(torch.randn(2, dtype=torch.complex128, requires_grad=True)),
    ]
    for i, call in enumerate(calls):
        try:
            call()
        except Exception as e:
            print(i, type(e).__name__)
        else:
            print(i, "NO-ERROR")
    print("survived")
    """
)


def test_bad_input_never_crashes_the_process():
    proc = subprocess.run(
        [sys.executable, "-c", _NO_CRASH_SCRIPT, ROOT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "survived"
    results = dict(line.split(" ", 1) for line in lines[:-1])
    assert len(results) == 15
    assert "NO-ERROR" not in results.values(), results


# ---------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------


# The four activations and four derivative shapes of the first release. The
# catalog may grow (new names); these entries must stay as they are.
CATALOG_ACTIVATIONS = {
    "relu": {"params": [], "default_derivative": "sigmoid"},
    "leaky_relu": {
        "params": [{"name": "negative_slope", "default": 0.01, "constraint": "finite"}],
        "default_derivative": "sigmoid",
    },
    "sigmoid": {"params": [], "default_derivative": "exact_plus"},
    "tanh": {"params": [], "default_derivative": "exact_plus"},
}
CATALOG_DERIVATIVES = {
    "exact": {"params": [], "uses_exact": True},
    "sigmoid": {"params": [{"name": "beta", "default": 1.0, "constraint": "positive"}], "uses_exact": False},
    "exact_plus": {"params": [{"name": "c", "default": 0.05, "constraint": "nonnegative"}], "uses_exact": True},
    "atan": {"params": [{"name": "alpha", "default": 2.0, "constraint": "positive"}], "uses_exact": False},
}


def test_catalog_json():
    data = json.loads(OPS.catalog())
    assert set(data) >= {"activations", "derivatives"}
    acts = {a["name"]: a for a in data["activations"]}
    derivs = {d["name"]: d for d in data["derivatives"]}
    assert len(acts) == len(data["activations"]) and len(derivs) == len(data["derivatives"]), "duplicate names"
    assert set(acts) >= set(CATALOG_ACTIVATIONS)
    assert set(derivs) >= set(CATALOG_DERIVATIVES)
    for name, want in CATALOG_ACTIVATIONS.items():
        assert acts[name]["params"] == want["params"], name
        assert acts[name]["default_derivative"] == want["default_derivative"], name
    for name, want in CATALOG_DERIVATIVES.items():
        assert derivs[name]["params"] == want["params"], name
        assert derivs[name]["uses_exact"] is want["uses_exact"], name
        assert derivs[name]["formula"] and derivs[name]["source"], name
    # Internal consistency of the whole catalog.
    for a in acts.values():
        assert a["default_derivative"] in derivs
    for entry in list(acts.values()) + list(derivs.values()):
        for p in entry["params"]:
            assert isinstance(p["name"], str) and p["name"] and isinstance(p["constraint"], str)
            assert math.isfinite(p["default"])
            if p["constraint"] == "positive":
                assert p["default"] > 0
            if p["constraint"] == "nonnegative":
                assert p["default"] >= 0


def test_python_catalog_views():
    acts = artderiv.list_activations()
    for name, want in CATALOG_ACTIVATIONS.items():
        assert acts[name] == {
            "params": {p["name"]: p["default"] for p in want["params"]},
            "default_derivative": want["default_derivative"],
        }
    derivs = artderiv.list_derivatives()
    for name, want in CATALOG_DERIVATIVES.items():
        assert derivs[name]["params"] == {p["name"]: p["default"] for p in want["params"]}
    for name in CATALOG_DERIVATIVES:
        factory = getattr(artderiv.derivatives, name)
        assert factory().args() == (name, list(derivs[name]["params"].values()))
    assert artderiv.cpu_kernel_isa() in {"DEFAULT", "AVX2", "AVX512", "AVX512BF16"}


ELEMENTARY_FORWARDS = ["relu", "relu6", "leaky_relu", "hardtanh", "step", "sign"]


def test_elementary_float_forwards_run_the_avx2_build_on_avx512():
    """Forwards that are only compares and selects are bound by memory; on
    AVX512 CPUs their float and double loops come from the AVX2 build (as
    ATen's own), every other forward and every half-type one from the best."""
    best = artderiv.cpu_kernel_isa()
    for name in CATALOG_ACTIVATIONS:
        for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
            elementary = name in ELEMENTARY_FORWARDS and dtype in (torch.float32, torch.float64)
            want = "AVX2" if elementary and best in ("AVX512", "AVX512BF16") else best
            assert artderiv.cpu_kernel_isa(name, dtype) == want, (name, dtype)
    with pytest.raises(ValueError, match="cpu_kernel_isa: give both 'activation' and 'dtype'"):
        artderiv.cpu_kernel_isa("relu")
    with pytest.raises(ValueError, match="argument 'activation' is 'nope'; allowed: .*relu"):
        artderiv.cpu_kernel_isa("nope", torch.float32)
    with pytest.raises(TypeError, match="cpu_kernel_isa: argument 'dtype' is Long; allowed: float32"):
        artderiv.cpu_kernel_isa("relu", torch.int64)


def test_bfloat16_results_near_zero_round_as_torch():
    """bfloat16 outputs whose float value is subnormal round as torch rounds
    them. The AVX512BF16 build's rounding instruction reads a subnormal as
    zero (1.1754942e-38 would give 0, where torch gives FLT_MIN), so a pair
    of vectors holding one takes the software rounding."""
    tiny = torch.finfo(torch.float32).tiny
    gen = torch.Generator().manual_seed(0)
    n = 4096
    g = (torch.rand(n, generator=gen) * 4 - 2) * tiny  # bfloat16 grads around FLT_MIN, some subnormal
    g[::7] = torch.randn(n, generator=gen)[::7]  # ordinary values in the same vectors
    g = g.bfloat16()
    x = (torch.randn(n, generator=gen) * 4).bfloat16().requires_grad_()
    (got,) = torch.autograd.grad(artderiv.relu(x, derivative="sigmoid"), x, g)
    products = g.float() * torch.sigmoid(x.detach().float())
    assert ((products.abs() < tiny) & (products != 0)).sum() > 1000  # the case under test: subnormal in float
    assert_bitwise_equal(got, products.bfloat16(), zero_sign=False)
    xs = ((torch.rand(n, generator=gen) * 4 - 2) * tiny).bfloat16()
    assert_bitwise_equal(artderiv.relu(xs), torch.relu(xs))


# ---------------------------------------------------------------------------
# The other CPU kernel builds (DEFAULT, AVX2, and AVX512 where AVX512BF16 runs): same numerics tests
# ---------------------------------------------------------------------------

_ISA_ORDER = ["DEFAULT", "AVX2", "AVX512"]
_ISA_SELECTION = (
    "test_forward_equals_torch or test_exact_gradient or test_derivative_matches_reference "
    "or test_fractional_blend or (test_elementwise_independence and 1000003 and offset1) "
    "or test_every_vector_length "
    "or test_kernel_isa_matches_request"
)


def test_kernel_isa_matches_request():
    """Run by test_other_cpu_kernel_builds: the requested build is the one in use."""
    want = os.environ.get("ARTDERIV_TEST_EXPECT_ISA")
    if not want:
        pytest.skip("only meaningful inside test_other_cpu_kernel_builds")
    assert artderiv.cpu_kernel_isa() == want


@pytest.mark.parametrize("isa", ["default", "avx2", "avx512"])
def test_other_cpu_kernel_builds(isa):
    """The suite's numerics tests pass on the lower-ISA kernel builds too
    (ATEN_CPU_CAPABILITY; ARTDERIV_AVX512BF16=0 for the plain AVX512 build on
    a CPU that would run the AVX512BF16 one)."""
    have = torch.backends.cpu.get_cpu_capability()
    if have not in _ISA_ORDER or _ISA_ORDER.index(have) < _ISA_ORDER.index(isa.upper()):
        pytest.skip(f"this CPU does not support {isa}")
    if isa == "avx512" and artderiv.cpu_kernel_isa() == "AVX512":
        pytest.skip("the AVX512 build is the one the whole suite runs here")
    env = dict(os.environ, ATEN_CPU_CAPABILITY=isa, ARTDERIV_AVX512BF16="0", ARTDERIV_TEST_EXPECT_ISA=isa.upper())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", _ISA_SELECTION,
         os.path.join(ROOT, "tests", "test_forward_backward.py"), os.path.join(ROOT, "tests", "test_op_contract.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-500:]
