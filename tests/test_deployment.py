"""Deployment: TorchScript (script, trace, save, load in a fresh process, with and
without the Python package), torch.compile, torch.export, inference_mode.

Reference values are the in-process eager ones, and (where a derivative
changes) the documented formula written with torch ops in float64.
"""

import copy
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import Tensor, nn

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import artderiv  # noqa: E402
from layer_refs import SPECS, factor64, make_parallel, rand  # noqa: E402
import artderiv.nn as ann  # noqa: E402
from artderiv import derivatives as D  # noqa: E402

_nn_mod = sys.modules["artderiv.nn"]

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:FutureWarning",
    "ignore:`torch.jit.trace` is deprecated:FutureWarning",
    "ignore:`torch.jit.trace_method` is deprecated:FutureWarning",
    "ignore:`torch.jit.save` is deprecated:FutureWarning",
    "ignore:`torch.jit.load` is deprecated:FutureWarning",
    "ignore::DeprecationWarning",
)

# ---------------------------------------------------------------------------
# float64 reference of the documented formulas
# ---------------------------------------------------------------------------


def run_fb(fn, x, g, *args):
    """Forward and input-gradient of fn(x, *args) for a fresh leaf copy of x."""
    leaf = x.detach().clone().requires_grad_(True)
    y = fn(leaf, *args)
    y.backward(g)
    return y.detach(), leaf.grad


def f32(v):
    """A blend value as the float32 buffer holds it."""
    return float(torch.tensor(v, dtype=torch.float32))


# ---------------------------------------------------------------------------
# Models (module level: torch.jit.script needs their source)
# ---------------------------------------------------------------------------


class DeployNet(nn.Module):
    """Several activations and derivatives; blend nonzero on one."""

    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(5, 16)
        self.act1 = ann.ReLU(derivative=D.sigmoid(beta=4.0))
        self.lin2 = nn.Linear(16, 16)
        self.act2 = ann.LeakyReLU(0.2, derivative=D.atan(alpha=3.0))
        self.act2.set_blend(0.3)
        self.squash = ann.Tanh(derivative="exact_plus")
        self.gate = ann.Sigmoid(derivative=D.exact_plus(c=0.3))
        self.lin3 = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.lin1(x))
        h = self.act2(self.lin2(h))
        h = self.squash(h) * self.gate(h)
        return self.lin3(h)


def make_deploy_net():
    torch.manual_seed(0)
    return DeployNet()


def torch_twin(model: DeployNet) -> DeployNet:
    """The same network with torch.nn activations (exact gradients)."""
    twin = make_deploy_net()
    twin.load_state_dict(model.state_dict())
    return artderiv.restore(twin)


DEFAULTS = [("sigmoid", [1.0]), ("sigmoid", [1.0]), ("exact_plus", [0.05]), ("exact_plus", [0.05])]


def parallel_expected(xs, g, derivs, blends=(0.0, 0.0, 0.0, 0.0)):
    rows = []
    for i, (act, p) in enumerate(SPECS):
        name, params = derivs[i]
        rows.append(g[i].double() * factor64(act, p, name, params, xs[i], blend=blends[i]))
    return torch.stack(rows).to(g.dtype)


def scripted_fn(x: Tensor, blend: Tensor) -> Tensor:
    """The op called directly, as a TorchScript user writes it."""
    a = torch.ops.artderiv.activation(x, "leaky_relu", [0.1], "atan", [3.0], blend, "input")
    return torch.ops.artderiv.activation(a, "tanh", [], "sigmoid", [2.0], None, "input")


def functional_fn(x, blend):
    """The public functional API (traced)."""
    a = artderiv.leaky_relu(x, 0.1, D.atan(alpha=3.0), blend=blend)
    return artderiv.tanh(a, D.sigmoid(beta=2.0))


def functional_expected(x, g, blend):
    x = x.double()
    a = torch.nn.functional.leaky_relu(x, 0.1)
    return g.double() * factor64("tanh", [], "sigmoid", [2.0], a) * factor64(
        "leaky_relu", [0.1], "atan", [3.0], x, blend=blend
    )


# ---------------------------------------------------------------------------
# TorchScript: script, trace, graphs
# ---------------------------------------------------------------------------


def test_script_and_trace_match_eager():
    model = make_deploy_net()
    x = rand(7, 5, dtype=torch.float32, seed=1)
    g = rand(7, 3, dtype=torch.float32, seed=2, scale=1.0)
    y0, g0 = run_fb(model, x, g)
    # sanity: the eager gradient is not torch's (the comparison below means something)
    _, g_torch = run_fb(torch_twin(model), x, g)
    assert not torch.allclose(g0, g_torch, rtol=1e-3, atol=1e-4)

    scripted = torch.jit.script(model)
    assert isinstance(scripted, torch.jit.ScriptModule)
    graph = str(scripted.inlined_graph)
    assert graph.count("artderiv::activation") == 4
    traced = torch.jit.trace(model, (x,))
    tgraph = str(traced.inlined_graph)
    assert tgraph.count("artderiv::activation") == 4
    for text in ('"relu"', '"leaky_relu"', '"tanh"', '"sigmoid"', '"atan"', '"exact_plus"'):
        assert text in tgraph  # the trace bakes the configuration in
    for m in (scripted, traced):
        y, gx = run_fb(m, x, g)
        torch.testing.assert_close(y, y0, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(gx, g0, rtol=1e-6, atol=1e-7)


def test_script_and_trace_functional():
    x = rand(64, dtype=torch.float64, seed=3)
    g = rand(64, dtype=torch.float64, seed=4, scale=1.0)
    blend = torch.tensor(0.25, dtype=torch.float64)
    expected = functional_expected(x, g, 0.25)
    y0, g0 = run_fb(functional_fn, x, g, blend)
    torch.testing.assert_close(g0, expected, rtol=1e-10, atol=1e-12)
    s = torch.jit.script(scripted_fn)
    assert str(s.graph).count("artderiv::activation") == 2
    t = torch.jit.trace(functional_fn, (x, blend))
    assert str(t.graph).count("artderiv::activation") == 2
    for fn in (scripted_fn, s, t):
        y, gx = run_fb(fn, x, g, blend)
        torch.testing.assert_close(y, y0, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(gx, expected, rtol=1e-10, atol=1e-12)
    # the scripted function reads blend at run time
    blend1 = torch.tensor(0.75, dtype=torch.float64)
    _, gx = run_fb(s, x, g, blend1)
    torch.testing.assert_close(gx, functional_expected(x, g, 0.75), rtol=1e-10, atol=1e-12)


def test_script_with_inplace_module(monkeypatch):
    monkeypatch.setattr(_nn_mod, "_warned_inplace", True)
    model = nn.Sequential(nn.Linear(4, 4), ann.LeakyReLU(0.2, True, derivative="atan"))
    s = torch.jit.script(model)
    x = rand(3, 4, dtype=torch.float32, seed=5)
    g = torch.ones(3, 4)
    y0, g0 = run_fb(model, x, g)
    y1, g1 = run_fb(s, x, g)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    torch.testing.assert_close(g1, g0, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# set_derivative / set_blend on a ScriptModule
# ---------------------------------------------------------------------------


def test_set_derivative_on_script_module():
    scripted = torch.jit.script(make_parallel())
    xs = rand(4, 40, seed=6)
    g = rand(4, 40, seed=7, scale=1.0)
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, DEFAULTS), rtol=1e-12, atol=1e-14)

    out = artderiv.set_derivative(scripted, D.atan(alpha=3.0))
    assert out is scripted
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("atan", [3.0])] * 4), rtol=1e-12, atol=1e-14)

    artderiv.set_derivative(scripted, D.sigmoid(beta=5.0))
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("sigmoid", [5.0])] * 4), rtol=1e-12, atol=1e-14)

    artderiv.set_derivative(scripted, "exact")
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("exact", [])] * 4), rtol=1e-12, atol=1e-14)

    artderiv.set_derivative(scripted, None)  # each activation's default again
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, DEFAULTS), rtol=1e-12, atol=1e-14)

    with pytest.raises(ValueError, match="nope"):
        artderiv.set_derivative(scripted, "nope")

    artderiv.set_derivative(scripted, D.atan(alpha=2.0))
    artderiv.set_blend(scripted, 0.5)
    _, grad = run_fb(scripted, xs, g)
    torch.testing.assert_close(
        grad, parallel_expected(xs, g, [("atan", [2.0])] * 4, [0.5] * 4), rtol=1e-7, atol=1e-9
    )
    with pytest.raises(ValueError, match="blend"):
        artderiv.set_blend(scripted, 1.5)


def test_set_blend_on_traced_model():
    xs = rand(4, 30, dtype=torch.float64, seed=8)
    g = torch.ones_like(xs)
    traced = torch.jit.trace(make_parallel(), (xs,))
    artderiv.set_blend(traced, 1.0)
    _, grad = run_fb(traced, xs, g)
    torch.testing.assert_close(grad, parallel_expected(xs, g, [("exact", [])] * 4), rtol=1e-10, atol=1e-12)


def test_set_derivative_on_traced_model_is_not_silent():
    xs = rand(4, 30, dtype=torch.float64, seed=8)
    g = torch.ones_like(xs)
    traced = torch.jit.trace(make_parallel(), (xs,))
    _, before = run_fb(traced, xs, g)
    try:
        artderiv.set_derivative(traced, D.atan(alpha=3.0))
    except (RuntimeError, TypeError, ValueError):
        return  # a clear error is fine
    _, after = run_fb(traced, xs, g)
    torch.testing.assert_close(after, parallel_expected(xs, g, [("atan", [3.0])] * 4), rtol=1e-10, atol=1e-12,
                               msg="set_derivative on a traced model neither took effect nor raised")


# ---------------------------------------------------------------------------
# Save, then load in a fresh process (with the package / with the library only)
# ---------------------------------------------------------------------------

LOADER = textwrap.dedent(
    r"""
    import sys
    import torch

    mode, d = sys.argv[1], sys.argv[2]
    if mode == "package":
        import artderiv
    else:
        torch.ops.load_library(sys.argv[3])
    inp = torch.load(d + "/inputs.pt")
    out = {}

    def fb(m, x, g, *args):
        leaf = x.clone().requires_grad_(True)
        y = m(leaf, *args)
        y.backward(g)
        return y.detach(), leaf.grad

    for name in ("scripted", "traced"):
        m = torch.jit.load(d + "/" + name + ".pt")
        out[name] = fb(m, inp["x"], inp["g"])
    for name in ("fn_scripted", "fn_traced"):
        m = torch.jit.load(d + "/" + name + ".pt")
        out[name] = fb(m, inp["fx"], inp["fg"], inp["blend"])
    out["graph"] = str(torch.jit.load(d + "/scripted.pt").inlined_graph)
    if mode == "package":
        m = torch.jit.load(d + "/scripted.pt")
        artderiv.set_derivative(m, artderiv.derivatives.atan(alpha=3.0))
        out["scripted_atan"] = fb(m, inp["x"], inp["g"])
    out["artderiv_imported"] = "artderiv" in sys.modules
    torch.save(out, d + "/out_" + mode + ".pt")
    print("ok")
    """
)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Saves the models once; returns the folder and the in-process eager values."""
    d = tmp_path_factory.mktemp("saved")
    model = make_deploy_net()
    x = rand(7, 5, dtype=torch.float32, seed=9)
    g = rand(7, 3, dtype=torch.float32, seed=10, scale=1.0)
    fx = rand(33, dtype=torch.float64, seed=11)
    fg = rand(33, dtype=torch.float64, seed=12, scale=1.0)
    blend = torch.tensor(0.4, dtype=torch.float64)
    torch.jit.script(model).save(str(d / "scripted.pt"))
    torch.jit.trace(model, (x,)).save(str(d / "traced.pt"))
    torch.jit.script(scripted_fn).save(str(d / "fn_scripted.pt"))
    torch.jit.trace(functional_fn, (fx, blend)).save(str(d / "fn_traced.pt"))
    torch.save({"x": x, "g": g, "fx": fx, "fg": fg, "blend": blend}, str(d / "inputs.pt"))
    (d / "loader.py").write_text(LOADER)
    expected = {
        "model": run_fb(model, x, g),
        "fn": run_fb(functional_fn, fx, fg, blend),
        "fn_formula": functional_expected(fx, fg, 0.4),
    }
    artderiv.set_derivative(model, D.atan(alpha=3.0))
    expected["model_atan"] = run_fb(model, x, g)
    assert not torch.allclose(expected["model_atan"][1], expected["model"][1])
    return d, expected


@pytest.mark.parametrize("mode", ["package", "library_only"])
def test_load_in_fresh_process(saved_models, mode):
    d, expected = saved_models
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if mode == "package":
        env["PYTHONPATH"] = _ROOT  # the checkout, where artderiv is built in place
    cmd = [sys.executable, str(d / "loader.py"), mode, str(d)]
    if mode == "library_only":
        cmd.append(artderiv.library_path())
    proc = subprocess.run(cmd, cwd=str(d), env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = torch.load(str(d / f"out_{mode}.pt"))
    assert out["artderiv_imported"] is (mode == "package")
    assert "artderiv::activation" in out["graph"]
    y0, g0 = expected["model"]
    for name in ("scripted", "traced"):
        y, gx = out[name]
        torch.testing.assert_close(y, y0, rtol=1e-6, atol=1e-7, msg=f"{name} output")
        torch.testing.assert_close(gx, g0, rtol=1e-6, atol=1e-7, msg=f"{name} input gradient")
    fy0, fg0 = expected["fn"]
    torch.testing.assert_close(fg0, expected["fn_formula"], rtol=1e-10, atol=1e-12)
    for name in ("fn_scripted", "fn_traced"):
        y, gx = out[name]
        torch.testing.assert_close(y, fy0, rtol=1e-12, atol=1e-14, msg=f"{name} output")
        torch.testing.assert_close(gx, fg0, rtol=1e-10, atol=1e-12, msg=f"{name} input gradient")
    if mode == "package":
        y, gx = out["scripted_atan"]
        ya, ga = expected["model_atan"]
        torch.testing.assert_close(y, ya, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(gx, ga, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# torch.compile
# ---------------------------------------------------------------------------


@pytest.fixture
def dynamo_reset():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_torch_compile_follows_derivative_and_blend(dynamo_reset):
    model = make_parallel()
    model.acts[3].set_blend(0.5)
    compiled = torch.compile(model, fullgraph=True)
    xs = rand(4, 48, dtype=torch.float32, seed=13)
    g = rand(4, 48, dtype=torch.float32, seed=14, scale=1.0)

    def check(derivs, blends):
        y_e, g_e = run_fb(model, xs, g)
        y_c, g_c = run_fb(compiled, xs, g)
        torch.testing.assert_close(y_c, y_e, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(g_c, g_e, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(g_c, parallel_expected(xs, g, derivs, [f32(b) for b in blends]),
                                   rtol=1e-5, atol=1e-6)

    # compile 1
    check(DEFAULTS, [0, 0, 0, 0.5])
    # the same shape, a new parameter (compile 2: the parameter is a guarded constant)
    model.acts[0].set_derivative(D.sigmoid(beta=4.0))
    check([("sigmoid", [4.0])] + DEFAULTS[1:], [0, 0, 0, 0.5])
    # new shapes everywhere, through the compiled wrapper (compile 3)
    artderiv.set_derivative(compiled, D.atan(alpha=3.0))
    check([("atan", [3.0])] * 4, [0, 0, 0, 0.5])
    # blend is a tensor: takes effect without a recompile
    artderiv.set_blend(model, 0.25)
    check([("atan", [3.0])] * 4, [0.25] * 4)
    artderiv.set_blend(model, 1.0)
    check([("atan", [3.0])] * 4, [1.0] * 4)


def test_torch_compile_fullgraph_builds_derivatives_and_modules(dynamo_reset):
    """A derivative object or a module made inside the compiled function: the
    catalog they read is Python data, not the op that returns its JSON text
    (which dynamo cannot trace, so fullgraph=True raised)."""

    def fn(x):
        y = artderiv.relu(x, derivative=D.sigmoid(beta=2.0))
        y = y + artderiv.relu(x, derivative=D.table([-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]))
        return y + ann.LeakyReLU(0.2, derivative="atan")(x)

    x = rand(6, 5, dtype=torch.float32, seed=21)
    g = rand(6, 5, dtype=torch.float32, seed=22, scale=1.0)
    y_e, g_e = run_fb(fn, x, g)
    y_c, g_c = run_fb(torch.compile(fn, fullgraph=True, backend="eager"), x, g)
    torch.testing.assert_close(y_c, y_e, rtol=0, atol=0)
    torch.testing.assert_close(g_c, g_e, rtol=0, atol=0)
    atan = 2.0 / 2 / (1 + (math.pi / 2 * 2.0 * x) ** 2)
    triangle = (1 - x.abs()).clamp(min=0)
    torch.testing.assert_close(g_e, g * (torch.sigmoid(2.0 * x) + triangle + atan), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# torch.export
# ---------------------------------------------------------------------------


def test_torch_export():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 8),
        ann.ReLU(derivative=D.atan(alpha=3.0)),
        nn.Linear(8, 8),
        ann.Tanh(derivative=D.sigmoid(beta=2.0)),
    )
    model[3].set_blend(0.3)
    x = rand(5, 4, dtype=torch.float32, seed=15)
    g = rand(5, 8, dtype=torch.float32, seed=16, scale=1.0)
    ep = torch.export.export(model, (x,))
    calls = [n for n in ep.graph.nodes if n.op == "call_function" and "artderiv" in str(n.target)]
    assert [str(n.target) for n in calls] == ["artderiv.activation.default"] * 2
    assert [tuple(n.args[1:5]) for n in calls] == [("relu", [], "atan", [3.0]), ("tanh", [], "sigmoid", [2.0])]
    assert "torch.ops.artderiv.activation" in ep.graph_module.code
    y0, g0 = run_fb(model, x, g)
    exported = ep.module()
    y1 = exported(x)
    torch.testing.assert_close(y1, y0, rtol=1e-6, atol=1e-7)
    # the exported program keeps the artificial backward and the blend
    y1, g1 = run_fb(exported, x, g)
    torch.testing.assert_close(g1, g0, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# inference_mode / no_grad
# ---------------------------------------------------------------------------


def test_inference_mode_forward_of_converted_model(monkeypatch):
    monkeypatch.setattr(_nn_mod, "_warned_inplace", True)
    torch.manual_seed(0)
    original = nn.Sequential(
        nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.LeakyReLU(0.2, True), nn.Linear(8, 4), nn.Sigmoid()
    )
    model = artderiv.convert(copy.deepcopy(original), derivative="atan")
    assert type(model[1]) is ann.ReLU and type(model[3]) is ann.LeakyReLU and type(model[5]) is nn.Sigmoid
    x = rand(5, 6, dtype=torch.float32, seed=17)
    with torch.no_grad():
        expected = original(x)
    with torch.inference_mode():
        y = model(x)
        xi = torch.randn(3, 6)  # an inference tensor as input
        yi = model(xi)
        zi = ann.Tanh(derivative="atan")(xi)
    assert y.is_inference() and not y.requires_grad
    assert yi.is_inference() and yi.shape == (3, 4)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    torch.testing.assert_close(zi, torch.tanh(xi))
    with torch.no_grad():
        y2 = model(x)
    assert not y2.requires_grad
    torch.testing.assert_close(y2, expected, rtol=0, atol=0)
    # and the model still trains afterwards
    _, grad = run_fb(model, x, torch.ones(5, 4))
    assert grad is not None and torch.isfinite(grad).all()


def test_inference_mode_scripted_model():
    model = make_deploy_net()
    scripted = torch.jit.script(model)
    x = rand(4, 5, dtype=torch.float32, seed=18)
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():
        y = scripted(x)
    assert y.is_inference()
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(platform.system() != "Linux" or shutil.which("readelf") is None, reason="needs Linux and readelf")
def test_library_uses_the_shared_cpp_runtime():
    """The library links libstdc++ dynamically, so std::string and the streams
    it shares with torch come from one C++ runtime. A compiler that links it
    statically (the GPU machine's /opt/gcc wrapper did) gives the library its
    own copy: there, artderiv.catalog() crashed the process in an ostringstream."""
    dynamic = subprocess.run(["readelf", "-d", artderiv.library_path()], capture_output=True, text=True,
                             check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert any(lib.startswith("libstdc++.so") for lib in needed), needed
