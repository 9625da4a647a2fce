"""Functional API: the activation's normal forward, an artificial derivative backward.

One function per catalog activation, with the activation's parameters (torch's
names and defaults), then ``derivative``: None (the activation's default), a
name such as ``"sigmoid"`` (default parameters) or an ``artderiv.derivatives``
object such as ``derivatives.sigmoid(beta=4.0)``; and ``blend`` in [0, 1]: the
backward uses ``(1 - blend) * artificial + blend * exact``. ``blend`` may be a
float or a one-element tensor (a tensor can change every step without
recompiling a compiled model)::

    artderiv.relu(x)                                  # backward: sigma(x)
    artderiv.leaky_relu(x, 0.2, "atan")
    artderiv.step(x, threshold=0.5, derivative=D.fast_sigmoid(slope=10))
    artderiv.gelu(x, approximate="tanh", derivative="exact_plus")

The functions are made from the C++ catalog (csrc/formulas.h), so a new
activation there appears here by itself.
"""

import inspect
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from ._library import boxed_ops, catalog
from .derivatives import DerivativeLike, _float_argument, _number_text, resolve

__all__ = ["activation"]

BlendLike = Union[None, float, Tensor]


def _direct_call(overload):
    """The C++ callable behind an op overload: what ``overload(...)`` runs
    after one Python frame (benchmarks/RESULTS.md, item 3). Dynamo cannot
    trace that builtin, so it is told to trace the overload in its place."""
    substitute = getattr(torch.compiler, "substitute_in_graph", None)
    if substitute is None:  # older torch: keep the traceable overload
        return overload

    @substitute(overload._op, skip_signature_check=True)
    def _traced(*args, **kwargs):
        return overload(*args, **kwargs)

    return overload._op


_op = _direct_call(torch.ops.artderiv.activation.default)


def _number(op: str, arg: str, value) -> float:
    """value as a float, or a TypeError naming the function and the argument."""
    return _float_argument(f"artderiv.{op}", arg, value)


def _number_list(op: str, arg: str, values) -> List[float]:
    """A sequence of numbers (None: empty) as floats; 0 is a value like any other."""
    if values is None:
        return []
    if values.__class__ in (list, tuple):  # the usual case, without a call per value
        try:
            return [float(v) for v in values]
        except (TypeError, ValueError, OverflowError, RuntimeError):
            pass  # below, with the message
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or getattr(values, "ndim", 1) == 0:
        raise TypeError(f"artderiv.{op}: argument {arg!r} must be a list of numbers, got {values!r}")
    return [_number(op, arg, v) for v in values]


def _blend_value(op: str, blend) -> Tensor:
    """A number blend as the op takes it, checked here too: under torch.compile
    with no gradient the op's own check (in its backward) would not run."""
    b = _number(op, "blend", blend)
    if not 0.0 <= b <= 1.0:
        # from None: raised again by _explain_bad_arguments in the handlers, it shows once
        raise ValueError(f"artderiv.{op}: argument 'blend' must be in [0, 1], got {_number_text(b)}") from None
    return torch.tensor(b, dtype=torch.float64)


def _explain_bad_arguments(op: str, params: dict, blend) -> None:
    """Called when a function's fast path raised: a clear error for a bad
    parameter or blend; returns (and the caller re-raises) otherwise."""
    for arg, value in params.items():
        _number(op, arg, value)
    if blend is not None and not isinstance(blend, Tensor):
        _blend_value(op, blend)


def activation(
    x: Tensor,
    name: str,
    activation_params: Optional[Sequence[float]] = None,
    derivative: DerivativeLike = None,
    blend: BlendLike = None,
) -> Tensor:
    """Any catalog activation by name, e.g. ``activation(x, "leaky_relu", [0.2], "atan")``."""
    deriv_name, deriv_params = resolve(derivative)
    if blend is not None and not isinstance(blend, Tensor):
        blend = _blend_value(name, blend)
    return _op(x, name, _number_list(name, "activation_params", activation_params), deriv_name, deriv_params, blend,
               "auto")


def gelu(
    x: Tensor, approximate: str = "none", derivative: DerivativeLike = None, *, blend: BlendLike = None
) -> Tensor:
    """GELU forward (``approximate="none"`` or ``"tanh"``, as torch); backward default ``exact``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"artderiv.gelu: argument 'approximate' is {approximate!r}; allowed: 'none', 'tanh'")
    return activation(x, "gelu" if approximate == "none" else "gelu_tanh", None, derivative, blend)


def _make_function(spec: dict):
    """A plain Python function with the activation's real signature
    (x, *params, derivative=None, *, blend=None): compiled from a template,
    since signature binding per call would cost microseconds."""
    name, pspecs = spec["name"], spec["params"]
    params = [p["name"] for p in pspecs]
    # Each default is one object, bound by name, so that a call that leaves
    # every parameter at its default is recognised with `is` (below).
    default_name = {p: f"_default_{p}" for p in params}
    defaults = {default_name[p["name"]]: float(p["default"]) for p in pspecs}
    header = ", ".join(["x"] + [f"{p}={default_name[p]}" for p in params] + ["derivative=None", "*", "blend=None"])
    # The common calls (no blend; the default or a named derivative) go
    # straight to the op with the fewest arguments: each argument the op
    # parses costs a fraction of a microsecond, a sizable part of a small call.
    param_list = f"[{', '.join(f'float({p})' for p in params)}]"
    act_args = f"{name!r}, {param_list}" if params else repr(name)

    def op_call(derivative):  # derivative: its expression, None: the default
        # (positional after the parameter list, a keyword without one)
        deriv_arg = "" if derivative is None else f", {derivative}" if params else f", derivative={derivative}"
        return f"_op(x, {act_args}{deriv_arg}, save='auto')"

    def common_calls(call, indent="        "):  # call(derivative expression or None) -> the call's text
        return (
            f"{indent}if derivative is None:\n"
            f"{indent}    return {call(None)}\n"
            f"{indent}if derivative.__class__ is str:\n"
            f"{indent}    return {call('derivative')}\n"
        )

    # A bad parameter or blend fails in the body (float('atan')): the handler
    # names the function and the argument (free until something raises).
    explain = f"_explain_bad_arguments({name!r}, {{{', '.join(f'{p!r}: {p}' for p in params)}}}, blend)"

    def compiled(body, **names):
        body = "".join(f"    {line}\n" for line in body.splitlines())
        text = (f"def {name}({header}):\n    try:\n{body}"
                f"    except (TypeError, ValueError, OverflowError, RuntimeError):\n        {explain}\n        raise\n")
        namespace = {"activation": activation, "_explain_bad_arguments": _explain_bad_arguments, **defaults, **names}
        exec(compile(text, f"<artderiv.functional.{name}>", "exec"), namespace)
        return namespace[name]

    # The op overload (_op, with its substitute for dynamo): what dynamo
    # traces, and what runs for tensor subclasses and torch function modes.
    traceable = compiled(
        "    if blend is None:\n" + common_calls(op_call)
        + f"    return activation(x, {name!r}, [{', '.join(params)}], derivative, blend)\n",
        _op=_op,
    )
    if boxed_ops is None:
        function = traceable
    else:
        # Eager calls on a plain tensor: the boxed call of the op's `plain`
        # overload (x, activation, derivative, activation_params: nothing it
        # does not need to parse); anything else falls through to the
        # traceable function, which dynamo traces in this one's place.
        trailing_params = f", {param_list}" if params else ""

        def boxed_call(derivative, trailing=trailing_params):
            return f"_boxed(_plain, x, {name!r}, {derivative or repr('default')}{trailing})"

        forward_args = ", ".join(["x"] + params + ["derivative", "blend=blend"])
        # Parameters left at their defaults are not passed at all: building
        # and parsing the list costs about a microsecond (step at 2^10).
        eager = common_calls(boxed_call)
        if params:
            at_defaults = " and ".join(f"{p} is {default_name[p]}" for p in params)
            eager = (
                f"        if {at_defaults}:\n"
                + common_calls(lambda d: boxed_call(d, trailing=""), indent="            ")
                + eager
            )
        function = compiled(
            "    if blend is None and not _has_torch_function_unary(x):\n"
            + eager
            + f"    return _traceable({forward_args})\n",
            _boxed=boxed_ops.call, _plain=boxed_ops.plain,
            _traceable=traceable, _has_torch_function_unary=torch._C._has_torch_function_unary,
        )
        torch.compiler.substitute_in_graph(function)(traceable)
    # What help(), IDEs and the type stubs (artderiv/functional.pyi) show.
    P = inspect.Parameter
    function.__signature__ = inspect.Signature(
        [P("x", P.POSITIONAL_OR_KEYWORD, annotation=Tensor)]
        + [P(p["name"], P.POSITIONAL_OR_KEYWORD, default=float(p["default"]), annotation=float) for p in pspecs]
        + [P("derivative", P.POSITIONAL_OR_KEYWORD, default=None, annotation=DerivativeLike),
           P("blend", P.KEYWORD_ONLY, default=None, annotation=BlendLike)],
        return_annotation=Tensor,
    )
    described = ", ".join(f"{p['name']}={p['default']:g}" for p in pspecs)
    function.__module__ = __name__
    function.__doc__ = (
        f"``{name}`` forward{f' ({described})' if described else ''}; backward: the chosen derivative "
        f"(default ``{spec['default_derivative']}``)."
    )
    return function


for _spec in catalog()["activations"]:
    if _spec["name"] != "gelu_tanh":  # reached through gelu(approximate="tanh")
        if _spec["name"] != "gelu":
            globals()[_spec["name"]] = _make_function(_spec)
        __all__.append(_spec["name"])
del _spec
