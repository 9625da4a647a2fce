"""The ``artderiv`` command line: list, plot, docs, demo.

    artderiv list                                   # activations and derivatives, with defaults
    artderiv plot relu --derivative sigmoid -o relu.png
    artderiv plot step --derivative atan:alpha=4 -o step.png
    artderiv docs docs/                             # regenerate docs/derivatives.md and its pictures
    artderiv demo [--quick|--full] [--out DIR]      # the main job (see artderiv/demo.py)
"""

import argparse
import sys
from typing import List, Optional

import torch

from . import derivatives as D
from ._library import catalog
from .functional import activation


def parse_derivative(text: str) -> D.Derivative:
    """'sigmoid', 'sigmoid:beta=4', 'like:elu:alpha=0.5', 'table:knots=-1/0/1,values=0/1/0'."""
    if text.startswith("like:"):
        _, other, *rest = text.split(":")
        if len(rest) > 1:
            raise ValueError(f"--derivative {text!r}: like:<activation> takes its parameters after one more ':', "
                             "e.g. like:elu:alpha=0.5")
        name = f"like:{other}"
        text_params = rest[0] if rest else ""
    else:
        name, _, text_params = text.partition(":")
    params = {}
    for item in filter(None, text_params.split(",")):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"--derivative {text!r}: {item!r} is not name=value")
        try:
            params[key] = [float(v) for v in value.split("/")] if "/" in value else float(value)
        except ValueError:
            raise ValueError(f"--derivative {text!r}: {key!r} must be a number (or numbers a/b/c), got {value!r}") from None
    if name == "table":
        unknown = sorted(set(params) - {"knots", "values"})
        if unknown:
            raise ValueError(f"--derivative {text!r}: table takes knots=a/b/... and values=a/b/...; got {unknown}")
        as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731 (one number: a list of one)
        return D.table(as_list(params.get("knots", [])), as_list(params.get("values", [])))
    # A list (beta=1/2) where a shape takes one number is refused by the shape's check, by name.
    return D.Derivative(name, **params)  # type: ignore[arg-type]


def parse_activation_params(items: List[str]) -> List[float]:
    try:
        return [float(v) for v in items]
    except ValueError:
        raise ValueError(f"activation parameters must be numbers, got {' '.join(items)!r}") from None


def curves(name: str, params: List[float], derivative: D.Derivative, lo=-4.0, hi=4.0, n=801):
    """x, f(x), f'(x) and the artificial derivative, all from the library's kernels."""
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    ones = torch.ones_like(x)
    f = activation(x, name, params, "exact")
    grads = []
    for d in ("exact", derivative):
        xr = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(activation(xr, name, params, d), xr, ones)
        grads.append(g)
    return x, f, grads[0], grads[1]


def plot(name: str, params: List[float], derivative: D.Derivative, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, f, exact, artificial = curves(name, params, derivative)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    label = name + (f"({', '.join(f'{p:g}' for p in params)})" if params else "")
    ax.plot(x, f, color="black", label=f"{label}: forward f(x)")
    ax.plot(x, exact, color="tab:blue", linestyle="--", label="exact derivative f'(x)")
    ax.plot(x, artificial, color="tab:red", label=f"artificial derivative: {derivative!r}")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"artderiv: {label} with {derivative!r}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cmd_list(_args) -> int:
    cat = catalog()
    print("activations (name, parameters, default derivative):")
    for a in cat["activations"]:
        params = ", ".join(f"{p['name']}={p['default']:g}" for p in a["params"])
        print(f"  {a['name']:<12} {params:<28} {a['default_derivative']}")
    print("\nderivatives (name, parameters, formula, source):")
    for d in cat["derivatives"]:
        params = ", ".join(f"{p['name']}={p['default']:g}" for p in d["params"])
        if d["name"] == "table":
            params = f"knots, values (2 to {cat['max_table_knots']})"
        if d["name"] == "like":
            params = "<activation>, its params"
        print(f"  {d['name']:<16} {params:<28} {d['formula']}   [{d['source']}]")
    return 0


class UsageError(Exception):
    """What the user typed is wrong: reported as a message, not a traceback."""


def cmd_plot(args) -> int:
    try:
        derivative = parse_derivative(args.derivative) if args.derivative else None
        params = parse_activation_params(args.params)
    except (ValueError, TypeError) as e:  # the derivative objects' and number checks
        raise UsageError(e) from None
    if derivative is None:
        default = {a["name"]: a["default_derivative"] for a in catalog()["activations"]}
        derivative = D.Derivative(default[args.activation])
    out = args.output or f"{args.activation}_{derivative.name.replace(':', '_')}.png"
    try:
        path = plot(args.activation, params, derivative, out)
    except ValueError as e:  # the op's argument checks, e.g. too many parameters
        raise UsageError(e) from None
    except OSError as e:  # -o into a folder that is not there, or not writable
        raise UsageError(f"cannot write {out!r}: {e.strerror}") from None
    print(path)
    return 0


def cmd_docs(args) -> int:
    from .docs import write_derivative_docs

    print(write_derivative_docs(args.folder))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "demo":  # its own options: artderiv demo --help
        from .demo import main as demo_main

        return demo_main(argv[1:])
    parser = argparse.ArgumentParser(prog="artderiv", description="Artificial derivatives for PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list activations and derivatives").set_defaults(fn=cmd_list)
    p = sub.add_parser("plot", help="draw an activation, its exact and an artificial derivative")
    p.add_argument("activation", choices=[a["name"] for a in catalog()["activations"]])
    p.add_argument("params", nargs="*", help="activation parameters, e.g. 0.2 for leaky_relu")
    p.add_argument("--derivative", "-d", help="e.g. sigmoid, sigmoid:beta=4, like:elu, atan:alpha=3")
    p.add_argument("-o", "--output", help="PNG path")
    p.set_defaults(fn=cmd_plot)
    p = sub.add_parser("docs", help="regenerate docs/derivatives.md and its pictures")
    p.add_argument("folder", nargs="?", default="docs")
    p.set_defaults(fn=cmd_docs)
    sub.add_parser("demo", help="train with exact vs artificial derivatives (the main job; see artderiv demo --help)")
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except UsageError as e:
        parser.exit(2, f"artderiv {args.command}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
