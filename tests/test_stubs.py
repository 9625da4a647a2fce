"""The type stubs (artderiv/*.pyi) of the modules made from the catalog at
import: current, truthful about the functions they describe, and what a type
checker (mypy) reads in a user's code."""

import inspect
import os
import textwrap

import pytest

import artderiv
from artderiv import stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stubs_are_current():
    for name, text in stubs.rendered().items():
        with open(os.path.join(ROOT, "artderiv", name)) as f:
            assert f.read() == text, f"artderiv/{name} is stale: run `make stubs`"
    assert os.path.exists(os.path.join(ROOT, "artderiv", "py.typed"))


def _header_params(fn):
    """(name, kind, default) of what the function's code really takes, not
    its __signature__ (which the stubs and help() show)."""
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    defaults = dict(zip(names[code.co_argcount - len(fn.__defaults__ or ()): code.co_argcount], fn.__defaults__ or ()))
    defaults.update(fn.__kwdefaults__ or {})
    return [(n, i >= code.co_argcount, defaults.get(n, inspect.Parameter.empty)) for i, n in enumerate(names)]


@pytest.mark.parametrize("name", [n for n in artderiv.functional.__all__ if n not in ("activation", "gelu")])
def test_function_signatures_are_the_functions_own(name):
    """The signature the stubs show for a generated function is the one its code takes."""
    fn = getattr(artderiv.functional, name)
    shown = [(p.name, p.kind is p.KEYWORD_ONLY, p.default) for p in inspect.signature(fn).parameters.values()]
    assert shown == _header_params(fn)


def test_mypy_reads_the_stubs(tmp_path, monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy is in requirements-dev.txt")
    good = tmp_path / "good.py"
    good.write_text(textwrap.dedent("""\
        import torch
        import artderiv
        from artderiv import derivatives as D

        x = torch.randn(4, requires_grad=True)
        y: torch.Tensor = artderiv.relu(x, derivative=D.sigmoid(beta=4.0))
        y = artderiv.leaky_relu(x, 0.2, "atan", blend=0.3)
        y = artderiv.step(x, threshold=0.5, derivative=D.atan(alpha=2.0), blend=torch.tensor(0.1))
        y = artderiv.gelu(x, approximate="tanh")
        y = artderiv.activation(x, "elu", [0.5], D.like("elu", alpha=0.5))
        d: artderiv.Derivative = D.table([-1, 0, 1], [0, 1, 0])
        m = artderiv.nn.LeakyReLU(0.1, derivative="atan")
        m.negative_slope = 0.2
        slope: float = m.negative_slope
        m.set_blend(0.5)
        name: str = m.derivative.name
        g = artderiv.nn.GELU(approximate="tanh", derivative=D.exact())
        torch_module: torch.nn.Module = m.to_torch()
        leaky: artderiv.nn.LeakyReLU = artderiv.nn.LeakyReLU.from_torch(torch.nn.LeakyReLU(0.1))
        slope = leaky.negative_slope
        made: artderiv.nn.Activation = artderiv.nn.module_class("leaky_relu")(0.1, derivative="atan")
        model = artderiv.convert(torch.nn.Sequential(torch.nn.ReLU()), derivative=D.like("elu"))
        schedule = artderiv.BlendSchedule(model, steps=100)
        """))
    bad = tmp_path / "bad.py"
    bad_lines = {
        'artderiv.relu(x, beta=2.0)': 'Unexpected keyword argument "beta" for "relu"',
        'artderiv.leaky_relu(x, slope=0.2)': 'Unexpected keyword argument "slope" for "leaky_relu"',
        'artderiv.softplus(x, 1.0, 20.0, "atan", 0.5)': 'Too many positional arguments for "softplus"',
        'D.sigmoid(gamma=1.0)': 'Unexpected keyword argument "gamma" for "sigmoid"',
        'artderiv.nn.LeakyReLU(0.1, derivative=3)': 'Argument "derivative" to "LeakyReLU" has incompatible type "int"',
        'artderiv.nn.Sigmoid(0.5)': 'Too many positional arguments for "Sigmoid"',
        'artderiv.relu2(x)': 'has no attribute "relu2"',
        'text: str = artderiv.nn.ELU().alpha': 'expression has type "float", variable has type "str"',
    }
    bad.write_text("import torch\nimport artderiv\nfrom artderiv import derivatives as D\n\nx = torch.randn(4)\n"
                   + "".join(line + "\n" for line in bad_lines))
    monkeypatch.setenv("MYPYPATH", ROOT)  # this checkout's artderiv, with its stubs
    out, err, _ = api.run(["--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
                           "--no-error-summary", str(good), str(bad)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert not [e for e in errors if "good.py" in e], out + err
    # --strict too (no implicit re-exports: artderiv's __all__ must be readable)
    out_strict, err_strict, _ = api.run(["--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
                                         "--no-error-summary", str(good)])
    assert ": error:" not in out_strict, out_strict + err_strict
    first_bad_line = 6
    for number, (line, message) in enumerate(bad_lines.items(), start=first_bad_line):
        found = [e for e in errors if f"bad.py:{number}:" in e]
        assert found and message in found[0], (line, message, found, out + err)


def test_mypy_checks_the_package_itself(tmp_path, monkeypatch):
    """artderiv's own modules type-check against the stubs of the generated
    ones (convert and demo import from them) and torch's annotations."""
    api = pytest.importorskip("mypy.api", reason="mypy is in requirements-dev.txt")
    monkeypatch.setenv("MYPYPATH", ROOT)
    out, err, status = api.run(["--cache-dir", str(tmp_path / "cache"), "-p", "artderiv"])
    assert status == 0, out + err
